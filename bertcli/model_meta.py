"""bertcli.json of a fine-tuned model: everything eval/predict need to rebuild its task."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from bertcli import __version__
from bertcli.config import RunConfig
from bertcli.hub import ModelSource
from bertcli.tasks import Task, get_task, task_names


def _versions() -> dict[str, str]:
    import accelerate
    import torch
    import transformers

    return {
        "bertcli": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "accelerate": accelerate.__version__,
    }


def model_meta(
    config: RunConfig,
    source: ModelSource,
    task: Task,
    labels: list[str],
    metrics: dict[str, Any],
) -> dict[str, Any]:
    """bertcli.json: the model's task and windows, every task's settings section (null for
    other tasks' sections), where the base model came from, its metrics and the full config."""
    meta: dict[str, Any] = {
        "format": 1,
        "task": config.task,
        "labels": labels,
        "max_length": config.train.max_length,
        "pooling": config.model.pooling,
        "clean": config.data.clean,
        "text_column": config.data.text_column,
        "pair_column": config.data.pair_column,
        # Every model keeps its long-input settings, whatever its task's own section.
        "long_inputs": asdict(config.long_inputs),
    }
    for name in task_names():
        meta.setdefault(get_task(name).section, None)
    meta.update(task.saved_settings(config, metrics))
    meta.update(
        {
            "recipe": config.name,
            "base_model": {
                "requested": source.requested,
                "origin": source.origin,
                "path": source.path,
            },
            "metrics": metrics,
            "config": config.to_dict(),
            "versions": _versions(),
        }
    )
    return meta
