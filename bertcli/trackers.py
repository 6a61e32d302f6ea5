"""Experiment trackers (TensorBoard, Weights & Biases, MLflow) through accelerate's trackers.

Each is an optional extra: asking for one that is not installed is a ConfigError naming the
extra. Nothing here is imported unless `train.report_to` names a tracker.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from bertcli.errors import ConfigError

# tracker -> the module it needs (accelerate's name for the tracker is the same)
TRACKERS = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}


def tracker_names(report_to: str | None) -> list[str]:
    """`tensorboard,wandb` -> ["tensorboard", "wandb"]; unknown names are a ConfigError."""
    names = [n.strip().lower() for n in (report_to or "").split(",") if n.strip()]
    names = [n for n in names if n != "none"]
    unknown = [n for n in names if n not in TRACKERS]
    if unknown:
        raise ConfigError(
            f"train.report_to: {', '.join(unknown)} is not a tracker",
            f"choose from {', '.join(TRACKERS)} (comma-separated)",
        )
    return list(dict.fromkeys(names))


def check_installed(names: list[str]) -> None:
    for name in names:
        if importlib.util.find_spec(TRACKERS[name]) is None:
            raise ConfigError(
                f"--report-to {name}: {TRACKERS[name]} is not installed",
                f"pip install 'bertcli[{name}]'",
            )


def accelerator_options(report_to: str | None, out_dir: Path) -> dict[str, Any]:
    """Keyword arguments for Accelerator(): the trackers to log with and where TensorBoard writes.

    Offline where the tracker allows it: W&B without an API key runs offline (sync later with
    `wandb sync`), MLflow without a tracking server writes to a local mlruns folder.
    """
    names = tracker_names(report_to)
    if not names:
        return {}
    check_installed(names)
    if "wandb" in names and not os.environ.get("WANDB_API_KEY"):
        os.environ.setdefault("WANDB_MODE", "offline")
    if "wandb" in names:
        os.environ.setdefault("WANDB_DIR", str(out_dir))
    if "mlflow" in names:
        os.environ.setdefault("MLFLOW_TRACKING_URI", (out_dir / "mlruns").resolve().as_uri())
    return {"log_with": names, "project_dir": str(out_dir / "logs")}


def start(accelerator: Any, run_name: str, hyper: dict[str, Any]) -> None:
    """Open the trackers with the run's flattened config as hyper-parameters."""
    if not getattr(accelerator, "log_with", None):
        return
    flat = {
        f"{section}.{key}": value if isinstance(value, int | float | str | bool) else str(value)
        for section, values in hyper.items()
        if isinstance(values, dict)
        for key, value in values.items()
    }
    accelerator.init_trackers(run_name, config=flat)


def values(record: dict[str, Any]) -> dict[str, float]:
    """A train_log.jsonl record as tracker scalars: train/loss, train/lr, eval/accuracy, ..."""
    out = {
        f"train/{k}": v
        for k, v in record.items()
        if k not in ("step", "eval") and isinstance(v, int | float)
    }
    for key, value in (record.get("eval") or {}).items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[f"eval/{key}"] = value
    return out
