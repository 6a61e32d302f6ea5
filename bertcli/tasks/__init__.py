"""Tasks as plug-ins: the registry of task classes, by name.

A new task is one module implementing `Task` (see `base.py`) plus one `register` call below (or
from any code that runs before the task is used, e.g. a test).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bertcli.config import DEFAULT_TASK
from bertcli.errors import ConfigError, ModelError
from bertcli.tasks.base import HEAD_FILE, InputRequest, Task, head_file
from bertcli.tasks.classification import ClassificationTask
from bertcli.tasks.masked_lm import MaskedLMTask
from bertcli.tasks.multilabel import MultiLabelTask
from bertcli.tasks.qa import QATask
from bertcli.tasks.regression import RegressionTask
from bertcli.tasks.tagging import TaggedWords, TaggingTask

if TYPE_CHECKING:
    from bertcli.config import RunConfig

_TASKS: dict[str, type[Task]] = {}


def register(task: type[Task]) -> type[Task]:
    """Make `task` usable by its `name` (in recipes, saved models and every command)."""
    _TASKS[task.name] = task
    return task


def unregister(name: str) -> None:
    _TASKS.pop(name, None)


def task_names() -> list[str]:
    return list(_TASKS)


def get_task(name: str) -> type[Task]:
    """The task class registered as `name`."""
    if name not in _TASKS:
        raise ConfigError(
            f"task: {name!r} is not one of {', '.join(_TASKS)}",
            "set `task:` in the recipe to one of those",
        )
    return _TASKS[name]


def output_formats() -> tuple[str, ...]:
    """Every format some task writes, in registration order."""
    return tuple(dict.fromkeys(f for task in _TASKS.values() for f in task.output_formats))


def saved_task(meta: dict[str, Any], model_dir: str | Path | None = None) -> type[Task]:
    """The task a saved model's bertcli.json names (models from before it did: the default)."""
    name = meta.get("task") or DEFAULT_TASK
    if name not in _TASKS:
        raise ModelError(
            f"{model_dir or 'model'}: trained for task {name!r}, which this bertcli does not "
            f"know (tasks: {', '.join(_TASKS)})",
            "upgrade bertcli, or install the package that registers that task",
        )
    return _TASKS[name]


def task_from_config(config: RunConfig, label_names: list[str]) -> Task:
    """The task of a recipe, built from its own config section (and the extra sections it
    reads; extras tuned on validation are not in a recipe, so the task tunes them)."""
    task = get_task(config.task)
    settings = asdict(getattr(config, task.section))
    settings.update(
        {k: asdict(getattr(config, k)) for k in task.saved_extras if hasattr(config, k)}
    )
    return task.build(label_names, config.train.max_length, settings)


def task_from_meta(
    meta: dict[str, Any], overrides: dict[str, Any] | None, model_dir: str | Path | None = None
) -> Task:
    """The task a saved model was trained for, with eval/predict overrides checked against it."""
    from bertcli.config import raise_all
    from bertcli.tasks.base import unused_long_inputs

    task = saved_task(meta, model_dir)
    if not task.pools_windows:
        raise_all(unused_long_inputs(task.name, None, overrides))
    settings = dict(meta.get(task.section) or {})
    settings.update({key: meta.get(key) for key in task.saved_extras})
    return task.build(
        meta.get("labels", []), int(meta["max_length"]), settings, overrides, model_dir
    )


for _task in (
    ClassificationTask,
    MultiLabelTask,
    RegressionTask,
    TaggingTask,
    QATask,
    MaskedLMTask,
):
    register(_task)

__all__ = [
    "HEAD_FILE",
    "ClassificationTask",
    "InputRequest",
    "MaskedLMTask",
    "MultiLabelTask",
    "QATask",
    "RegressionTask",
    "TaggedWords",
    "TaggingTask",
    "Task",
    "get_task",
    "head_file",
    "output_formats",
    "register",
    "saved_task",
    "task_from_config",
    "task_from_meta",
    "task_names",
    "unregister",
]
