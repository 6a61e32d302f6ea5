"""Training checkpoints as safetensors + JSON only: resuming a run never unpickles anything.

accelerate's `save_state`/`load_state` pickle the scheduler, the RNG states and any registered
object (`custom_checkpoint_*.pkl`, loaded with `weights_only=False`), so a file planted in a
checkpoint folder would run on the next re-run. Here every tensor goes through safetensors and
everything else through JSON, and a checkpoint holding any other file is refused.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from bertcli.errors import ModelError

MODEL_FILE = "model.safetensors"
OPTIMIZER_TENSORS = "optimizer.safetensors"
OPTIMIZER_GROUPS = "optimizer.json"
SCHEDULER_FILE = "scheduler.json"
SCALER_FILE = "scaler.json"
STATE_FILE = "trainer_state.json"
RNG_PREFIX = "rng-"  # one pair per process: rng-<rank>.json + rng-<rank>.safetensors


def allowed_file(name: str) -> bool:
    """Whether a checkpoint may hold a file of this name (nothing that deserialises code)."""
    fixed = {MODEL_FILE, OPTIMIZER_TENSORS, OPTIMIZER_GROUPS, SCHEDULER_FILE, SCALER_FILE}
    if name in fixed | {STATE_FILE}:
        return True
    stem, _, suffix = name.partition(".")
    return (
        stem.startswith(RNG_PREFIX)
        and stem[len(RNG_PREFIX) :].isdigit()
        and suffix in ("json", "safetensors")
    )


def check_contents(folder: Path) -> None:
    """Refuse a checkpoint folder holding files bertcli never writes (a pickle, a script...)."""
    for item in sorted(folder.iterdir()):
        if item.is_dir() or not allowed_file(item.name):
            raise ModelError(
                f"{item}: unexpected {'folder' if item.is_dir() else 'file'} in a checkpoint "
                "(bertcli checkpoints hold only safetensors and JSON); refusing to resume",
                "remove it if you put it there, or start over with --overwrite",
            )


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: unreadable checkpoint file ({exc})") from None


# ---------------------------------------------------------------------------- optimizer


def _optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimizer state dict split into named tensors and the JSON-able rest."""
    state = optimizer.state_dict()
    tensors = {
        f"{index}.{name}": value.detach().cpu().contiguous()
        for index, slots in state["state"].items()
        for name, value in slots.items()
        if isinstance(value, torch.Tensor)
    }
    scalars = {
        str(index): {k: v for k, v in slots.items() if not isinstance(v, torch.Tensor)}
        for index, slots in state["state"].items()
    }
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_restore(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], rest: dict
) -> None:
    slots: dict[int, dict[str, Any]] = {int(k): dict(v) for k, v in rest["scalars"].items()}
    for key, value in tensors.items():
        index, _, name = key.partition(".")
        slots.setdefault(int(index), {})[name] = value
    groups = rest["param_groups"]
    for group in groups:
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": slots, "param_groups": groups})


# ---------------------------------------------------------------------------- RNG


def rng_snapshot() -> dict[str, Any]:
    snap = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        snap["cuda"] = torch.cuda.get_rng_state_all()
    return snap


def rng_restore(snap: dict[str, Any]) -> None:
    random.setstate(snap["python"])
    np.random.set_state(snap["numpy"])
    torch.set_rng_state(snap["torch"])
    if "cuda" in snap and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(snap["cuda"])


def _save_rng(folder: Path, rank: int, snap: dict[str, Any]) -> None:
    version, internal, gauss = snap["python"]
    kind, keys, pos, has_gauss, cached = snap["numpy"]
    tensors = {"torch": snap["torch"]}
    tensors.update({f"cuda.{i}": state for i, state in enumerate(snap.get("cuda", []))})
    tensors["numpy"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    save_file(tensors, str(folder / f"{RNG_PREFIX}{rank}.safetensors"))
    _write_json(
        folder / f"{RNG_PREFIX}{rank}.json",
        {"python": [version, list(internal), gauss], "numpy": [kind, pos, has_gauss, cached]},
    )


def _load_rng(folder: Path, rank: int) -> dict[str, Any] | None:
    path = folder / f"{RNG_PREFIX}{rank}.safetensors"
    if not path.is_file():
        return None  # a run resumed with more processes than it was saved with
    tensors = load_file(str(path))
    rest = _read_json(folder / f"{RNG_PREFIX}{rank}.json")
    version, internal, gauss = rest["python"]
    kind, pos, has_gauss, cached = rest["numpy"]
    keys = tensors["numpy"].numpy().astype(np.uint32)
    snap: dict[str, Any] = {
        "python": (version, tuple(internal), gauss),
        "numpy": (kind, keys, pos, has_gauss, cached),
        "torch": tensors["torch"],
    }
    cuda = sorted((k for k in tensors if k.startswith("cuda.")), key=lambda k: int(k[5:]))
    if cuda:
        snap["cuda"] = [tensors[k] for k in cuda]
    return snap


# ---------------------------------------------------------------------------- whole state


def save_training_state(
    folder: Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    rng: dict[str, Any],
    rank: int,
    main: bool,
) -> None:
    """Write what a resumed run needs into `folder`: rank 0 the shared parts, every rank its RNG."""
    folder.mkdir(parents=True, exist_ok=True)
    if main:
        save_model(model, str(folder / MODEL_FILE))
        tensors, rest = _optimizer_state(optimizer)
        save_file(tensors, str(folder / OPTIMIZER_TENSORS))
        _write_json(folder / OPTIMIZER_GROUPS, rest)
        sched = {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}
        _write_json(folder / SCHEDULER_FILE, sched)
        if scaler is not None:
            _write_json(folder / SCALER_FILE, scaler.state_dict())
    _save_rng(folder, rank, rng)


def load_training_state(
    folder: Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    rank: int,
) -> None:
    """Restore a checkpoint written by `save_training_state`; refuses anything else."""
    check_contents(folder)
    for name in (MODEL_FILE, OPTIMIZER_TENSORS, OPTIMIZER_GROUPS, SCHEDULER_FILE):
        if not (folder / name).is_file():
            raise ModelError(
                f"{folder}: incomplete checkpoint ({name} is missing)",
                "start over with --overwrite",
            )
    try:
        missing, unexpected = load_model(model, str(folder / MODEL_FILE), strict=False)
        tensors = load_file(str(folder / OPTIMIZER_TENSORS))
    except Exception as exc:  # safetensors raises its own error type for damaged files
        raise ModelError(f"{folder}: damaged checkpoint ({exc})") from None
    if missing or unexpected:
        raise ModelError(f"{folder}/{MODEL_FILE}: does not match the model being trained")
    _optimizer_restore(optimizer, tensors, _read_json(folder / OPTIMIZER_GROUPS))
    # The schedule's function is code, not state: it is rebuilt from the config, never loaded.
    scheduler.load_state_dict({**scheduler.state_dict(), **_read_json(folder / SCHEDULER_FILE)})
    if scaler is not None and (folder / SCALER_FILE).is_file():
        scaler.load_state_dict(_read_json(folder / SCALER_FILE))
    snap = _load_rng(folder, rank)
    if snap is not None:
        rng_restore(snap)
