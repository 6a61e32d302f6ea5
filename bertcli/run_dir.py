"""The output folder of a fine-tuning run: one owner at a time, and nothing a user owns deleted.

A run folder is locked by its process (`.bertcli.lock` holds the pid), inspected before anything is
loaded (resume, start over, or refuse), and cleared only after the config, the data and the model
have all been checked - and only if bertcli wrote it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bertcli.console import notice
from bertcli.errors import ConfigError

LOCK_FILE = ".bertcli.lock"
MARKER_FILE = ".bertcli-run"  # written when a run starts: this folder is bertcli's to replace
CONFIG_FILE = "config.yaml"
META_FILE = "bertcli.json"
# Left behind by a process killed while saving: a model, a checkpoint, or a JSON file.
# Settings a resumed run may change: where it is written and where its metrics are also sent.
RESUMABLE_CHANGES = ("train.output_dir", "train.report_to")
STALE_PATTERNS = (".saving-*", ".*.tmp", "checkpoints/.tmp-step-*", "checkpoints/best/.saving-*")


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs on this machine (someone else's counts too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def is_run_dir(path: Path) -> bool:
    """Whether bertcli wrote this folder: its marker, or (runs from before the marker) a
    bertcli.json, or a config.yaml beside a training log or checkpoints."""
    if (path / MARKER_FILE).is_file() or (path / META_FILE).is_file():
        return True
    return (path / CONFIG_FILE).is_file() and any(
        (path / name).exists() for name in ("train_log.jsonl", "checkpoints")
    )


@dataclass
class RunPlan:
    """What to do with the output folder once every input has been checked."""

    resume: bool
    clear: bool = False  # remove what an earlier run left (only ever a bertcli run folder)
    reason: str = ""


class RunDir:
    """`with RunDir(path) as run:` holds the folder's lock for the duration of a run."""

    def __init__(self, path: Path, *, owner: bool = True) -> None:
        self.path = Path(path)
        self.owner = owner  # under `accelerate launch` only rank 0 locks, plans and clears
        self._created = False
        self._locked = False

    # ---------------------------------------------------------------------------- lock

    def __enter__(self) -> RunDir:
        if self.owner:
            self._prepare_folder()
            self._lock()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._locked:
            (self.path / LOCK_FILE).unlink(missing_ok=True)
        # A run that failed its checks before writing anything leaves no empty folder behind.
        if self._created and self.path.is_dir() and not any(self.path.iterdir()):
            self.path.rmdir()

    def _prepare_folder(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(
                f"{self.path}: is a file, not a folder", "choose another --output-dir"
            )
        try:
            self._created = not self.path.exists()
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"{self.path}: cannot create the output folder ({exc.strerror})",
                "choose another --output-dir",
            ) from None
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise ConfigError(
                f"{self.path}: the output folder is not writable", "choose another --output-dir"
            )

    def _lock(self) -> None:
        lock = self.path / LOCK_FILE
        mine = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()})
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._take_over_if_stale(lock)
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(mine)
            self._locked = True
            return
        raise ConfigError(f"{lock}: could not take the lock of the output folder")

    def _take_over_if_stale(self, lock: Path) -> None:
        try:
            held = json.loads(lock.read_text())
            pid, host = int(held["pid"]), str(held.get("host", ""))
        except (OSError, ValueError, KeyError, TypeError):
            pid, host = -1, ""
        if pid > 0 and host == socket.gethostname() and pid_alive(pid):
            since = time.strftime("%H:%M:%S", time.localtime(float(held.get("since", 0))))
            raise ConfigError(
                f"{self.path} is in use by another bertcli run (pid {pid}, since {since})",
                "wait for it to finish, or choose another --output-dir",
            )
        if host and host != socket.gethostname():
            raise ConfigError(
                f"{self.path} is locked by a run on host {host} (pid {pid})",
                f"if that run is gone, delete {lock}",
            )
        notice(f"{self.path}: taking over the lock left by a process that is gone (pid {pid})")
        lock.unlink(missing_ok=True)

    # ---------------------------------------------------------------------------- plan

    def plan(self, config: Any, resume: bool | None, overwrite: bool) -> RunPlan:
        """Decide between resuming, starting fresh and refusing; deletes nothing."""
        from bertcli.train import checkpoint_dirs

        path = self.path
        if not self.owner:
            has = bool(checkpoint_dirs(path))
            return RunPlan(resume=resume is not False and not overwrite and has)
        entries = [p.name for p in path.iterdir() if p.name != LOCK_FILE] if path.is_dir() else []
        if not entries:
            if resume:
                raise ConfigError(f"--resume: no checkpoint under {path}/checkpoints")
            return RunPlan(resume=False)
        if not is_run_dir(path):
            shown = ", ".join(sorted(entries)[:3]) + (", ..." if len(entries) > 3 else "")
            raise ConfigError(
                f"{path} is not empty ({shown}) and was not written by bertcli; "
                f"refusing to {'replace' if overwrite else 'write into'} it",
                "choose another --output-dir (--overwrite only replaces bertcli run folders)",
            )
        if overwrite:
            return RunPlan(resume=False, clear=True, reason="--overwrite")
        has_checkpoint = bool(checkpoint_dirs(path))
        if resume is False or (resume and not has_checkpoint):
            raise ConfigError(
                f"{path} holds an earlier run"
                + ("" if has_checkpoint else " but no checkpoint to resume"),
                "pass --overwrite to start over, or choose another --output-dir",
            )
        if not has_checkpoint:
            if (path / META_FILE).is_file():
                raise ConfigError(
                    f"{path} holds a finished model (and no checkpoint to resume)",
                    "pass --overwrite to replace it, or choose another --output-dir",
                )
            return RunPlan(
                resume=False,
                clear=True,
                reason="it holds an unfinished run that never reached a checkpoint",
            )
        self._check_same_config(config)
        return RunPlan(resume=True)

    def _check_same_config(self, config: Any) -> None:
        from bertcli.config import RunConfig, build

        saved = self.path / CONFIG_FILE
        if not saved.is_file():
            return
        try:
            previous = build(RunConfig, yaml.safe_load(saved.read_text(encoding="utf-8")) or {})
        except (yaml.YAMLError, OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"{saved}: unreadable ({exc})", "start over with --overwrite"
            ) from None
        mine, theirs = config.to_dict(), previous.to_dict()
        changed = [
            f"{section}.{key}"
            for section in mine
            if isinstance(mine[section], dict)
            for key in mine[section]
            if mine[section][key] != theirs.get(section, {}).get(key)
            and f"{section}.{key}" not in RESUMABLE_CHANGES
        ]
        if changed:
            raise ConfigError(
                f"{self.path} holds a run with a different config ({', '.join(changed)})",
                "re-run with the same settings to resume, --overwrite to start over, "
                "or choose another --output-dir",
            )

    # --------------------------------------------------------------------------- write

    def start(self, plan: RunPlan, config_text: str) -> None:
        """After every check passed: clear what the plan says, sweep stale temporary files,
        mark the folder as bertcli's and record the run's config."""
        if not self.owner:
            return
        if plan.clear:
            if plan.reason != "--overwrite":
                notice(f"{self.path}: {plan.reason}; starting over")
            for item in self.path.iterdir():
                if item.name == LOCK_FILE:
                    continue
                if item.is_dir() and not item.is_symlink():
                    shutil.rmtree(item)
                else:
                    item.unlink()
        self.sweep()
        (self.path / MARKER_FILE).write_text("written by bertcli finetune\n")
        (self.path / CONFIG_FILE).write_text(config_text, encoding="utf-8")

    def sweep(self) -> None:
        """Remove temporary files a killed process left while saving (we hold the lock)."""
        for pattern in STALE_PATTERNS:
            for item in self.path.glob(pattern):
                if item.is_dir() and not item.is_symlink():
                    shutil.rmtree(item, ignore_errors=True)
                else:
                    item.unlink(missing_ok=True)
