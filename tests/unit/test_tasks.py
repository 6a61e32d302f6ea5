"""Tasks as plug-ins: the registry, and no task-name switches outside bertcli/tasks/."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from bertcli.config import RunConfig, load_config
from bertcli.errors import ConfigError, ModelError
from bertcli.tasks import (
    ClassificationTask,
    get_task,
    register,
    task_from_meta,
    task_names,
    unregister,
)

PACKAGE = Path(__file__).resolve().parents[2] / "bertcli"
TASK_NAME = re.compile(r"""["'](qa|tagging|classification)["']""")
# Task names may appear in the tasks package and in the recipe schema (config.py's dataclasses,
# defaults and help text); anywhere else a name is a switch that belongs to a task module.
ALLOWED = {PACKAGE / "config.py"}


def test_no_task_names_outside_the_tasks_package() -> None:
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path not in ALLOWED and (PACKAGE / "tasks") not in path.parents
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if TASK_NAME.search(line)
    ]
    assert not found, "ask the task instead of comparing its name:\n" + "\n".join(found)


def test_every_task_names_its_config_section_and_head() -> None:
    sections = {f.name for f in fields(RunConfig)}
    import transformers

    for name in task_names():
        task = get_task(name)
        assert task.name == name
        assert task.section in sections, f"{name}: no config section {task.section!r}"
        assert hasattr(transformers, task.auto_class)
        assert "jsonl" in task.output_formats


TASKS = "classification, multilabel, regression, tagging, qa, masked_lm"


def test_unknown_task_names_the_valid_ones() -> None:
    with pytest.raises(
        ConfigError,
        match=f"'poetry' is not one of {TASKS}",
    ):
        load_config(None, {"task": "poetry"})
    with pytest.raises(
        ConfigError, match="classification, multilabel, regression, tagging, qa, masked_lm"
    ):
        get_task("poetry")
    with pytest.raises(
        ModelError,
        match=r"task 'poetry'.*classification, multilabel, regression, tagging, qa, masked_lm",
    ):
        task_from_meta({"task": "poetry", "max_length": 32}, None, "some/model")


class ToyTask(ClassificationTask):
    """Sentiment under another name, with its own JSON rows and only JSON output."""

    name = "toy-sentiment"
    output_formats = ("jsonl",)

    def format(self, predictions: Any, index: int, example: Any = None) -> dict[str, Any]:
        return {"toy": True, **super().format(predictions, index, example)}


@pytest.fixture
def toy_task():
    register(ToyTask)
    yield ToyTask
    unregister(ToyTask.name)


def test_a_registered_toy_task_is_usable_by_name(
    toy_task, tiny_model_dir: Path, sentiment_csv: Path, tmp_path: Path, run_config
) -> None:
    from bertcli.console import configure
    from bertcli.evaluation import evaluate_model
    from bertcli.finetune import finetune
    from bertcli.predict import predict_records

    out = tmp_path / "toy"
    config = run_config(
        tiny_model_dir, sentiment_csv, out, {"task": "toy-sentiment", "train.max_steps": 10}
    )
    configure(quiet=True)
    try:
        finetune(config)
        scores = evaluate_model(out, [str(sentiment_csv)], precision="no")
    finally:
        configure(quiet=False)
    meta = json.loads((out / "bertcli.json").read_text())
    assert meta["task"] == "toy-sentiment" and meta["labels"] == ["neg", "pos"]
    assert "accuracy" in scores[str(sentiment_csv)]
    source = tmp_path / "in.txt"
    source.write_text("a good movie\nan awful film\n")
    rows = [json.loads(line) for line in predict_records(source, out, precision="no")]
    assert [row["toy"] for row in rows] == [True, True]
    assert {row["label"] for row in rows} <= {"neg", "pos"}
    with pytest.raises(Exception, match="does not apply to a toy-sentiment model"):
        list(predict_records(source, out, output_format="tsv", precision="no"))


def test_an_unregistered_task_is_refused_by_name(toy_task) -> None:
    assert "toy-sentiment" in task_names()
    assert load_config(None, {"task": "toy-sentiment"}).task == "toy-sentiment"
    unregister("toy-sentiment")
    with pytest.raises(ConfigError, match="'toy-sentiment' is not one of classification"):
        load_config(None, {"task": "toy-sentiment"})
