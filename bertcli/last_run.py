"""Which run `bertcli finetune` finished last, so `bertcli predict FILE` works without --model."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from bertcli.errors import ModelError

STATE_NAME = "last_run.json"


def state_dir() -> Path:
    """bertcli's state folder: $XDG_STATE_HOME/bertcli (default ~/.local/state/bertcli)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "bertcli"


def remember_last_run(out_dir: Path) -> None:
    """Record a finished run; never fails the run it records (a read-only home is fine)."""
    record = {"path": str(Path(out_dir).resolve()), "finished": time.time()}
    try:
        folder = state_dir()
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{STATE_NAME}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(record) + "\n", encoding="utf-8")
        os.replace(tmp, folder / STATE_NAME)
    except OSError:
        pass


def last_run() -> Path:
    """The folder of the last finished run, which must still hold a model."""
    path = state_dir() / STATE_NAME
    hint = "pass --model DIR (a folder written by `bertcli finetune`)"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        folder = Path(record["path"])
    except FileNotFoundError:
        raise ModelError(
            "no --model given and no finished `bertcli finetune` run yet", hint
        ) from None
    except (OSError, ValueError, KeyError, TypeError):
        raise ModelError(f"no --model given and {path} is unreadable", hint) from None
    if not (folder / "bertcli.json").is_file():
        raise ModelError(
            f"no --model given and the last run {folder} no longer holds a model", hint
        )
    return folder
