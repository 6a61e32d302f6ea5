"""What a run folder says about itself: its config, training log, evaluations and final scores.

Works on a finished run and on one still training (no final model yet: the best checkpoint's
scores stand in for the final ones).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bertcli.errors import DataError

LOG_FILE = "train_log.jsonl"
CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
ERRORS_FILE = "errors.json"


@dataclass
class Run:
    folder: Path
    config: dict[str, Any]
    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)  # {"step", "epoch", "eval": {...}}
    scores: dict[str, Any] = field(default_factory=dict)  # validation metrics, full
    final: dict[str, Any] | None = None  # metrics.json of a finished run
    mistakes: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return str(self.config.get("name") or self.folder.name)

    @property
    def task(self) -> str:
        from bertcli.config import DEFAULT_TASK

        return str(self.config.get("task") or DEFAULT_TASK)

    @property
    def metric(self) -> str:
        from bertcli.errors import BertcliError
        from bertcli.tasks import get_task

        chosen = (self.config.get("train") or {}).get("metric")
        try:
            return chosen or get_task(self.task).main_metric
        except BertcliError:  # a task this bertcli does not know: its first score
            return next(iter(self.scores), "accuracy")

    @property
    def finished(self) -> bool:
        return self.final is not None

    def best_eval(self) -> dict[str, Any] | None:
        """The evaluation the best checkpoint came from: the first highest value, as in training."""
        best = None
        for record in self.evals:
            value = record["eval"].get(self.metric)
            if value is not None and (best is None or value > best["eval"][self.metric]):
                best = record
        return best


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_run(folder: str | Path) -> Run:
    folder = Path(folder)
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        raise DataError(
            f"{folder}: not a run folder (no {CONFIG_FILE})",
            "pass the --output-dir of a `bertcli finetune` run",
        )
    run = Run(folder, yaml.safe_load(config_path.read_text(encoding="utf-8")) or {})
    log = folder / LOG_FILE
    lines = log.read_text(encoding="utf-8").splitlines() if log.is_file() else []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by a run still writing it
        if "eval" in record:
            run.evals.append(record)
        elif "loss" in record:
            run.steps.append(record["step"])
            run.loss.append(record["loss"])
            run.lr.append(record.get("lr", 0.0))
    run.final = _json(folder / METRICS_FILE)
    if run.final and isinstance(run.final.get("validation"), dict):
        run.scores = run.final["validation"]
    else:
        meta = _json(folder / "checkpoints" / "best" / "bertcli.json") or {}
        run.scores = meta.get("metrics") or {}
    run.mistakes = _json(folder / ERRORS_FILE)
    return run
