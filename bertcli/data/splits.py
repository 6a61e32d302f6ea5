"""A recipe's train, validation and test splits, read and checked the way its task reads them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bertcli.config import RunConfig
from bertcli.console import notice
from bertcli.data.load import Split, carve_validation, load_split, looks_like_file
from bertcli.errors import DataError
from bertcli.tasks import Task, get_task


@dataclass
class Prepared:
    label_names: list[str]
    train: list[Any]
    validation: list[Any]
    test: list[Any]
    sources: dict[str, str]


def load_data(config: RunConfig) -> Prepared:
    """All splits as examples; a validation split is carved from train when none is given."""
    task = get_task(config.task)
    train_split = load_split(config, "train", _reader(task, config))
    if train_split is None:
        raise DataError(
            f"{config.name}: no training data",
            "pass --train FILE, or set data.dataset and data.train in the recipe",
        )
    if not train_split.records:
        raise DataError(f"{train_split.origin}: no training rows")
    records = train_split.records
    if config.data.max_train_samples:
        records = records[: config.data.max_train_samples]
    names = task.label_set(config, records, train_split)
    train = task.to_examples(config, train_split, records, names)
    task.check_training(config, train_split, train, names)
    sources = {"train": train_split.origin}
    valid_split = _optional_split(config, task, "validation")
    if valid_split is not None:
        validation = _examples(config, task, valid_split, names)
        sources["validation"] = valid_split.origin
    else:
        train, validation = carve_validation(
            train, config.data.validation_fraction, config.train.seed
        )
        sources["validation"] = f"{config.data.validation_fraction:.0%} of train (seeded)"
    train = task.augment_training(config, train)
    test_split = _optional_split(config, task, "test")
    test = _examples(config, task, test_split, names) if test_split else []
    if test_split:
        sources["test"] = test_split.origin
    return Prepared(names, train, validation, test, sources)


def _reader(task: type[Task], config: RunConfig) -> Any:
    return lambda path: task.read_records(config, path)


def _examples(config: RunConfig, task: type[Task], split: Split, names: list[str]) -> list[Any]:
    """An evaluation split's examples, the first data.max_eval_samples only if set."""
    records = split.records
    if config.data.max_eval_samples:
        records = records[: config.data.max_eval_samples]
    return task.to_examples(config, split, records, names)


def _optional_split(config: RunConfig, task: type[Task], split: str) -> Split | None:
    """Validation and test may be skipped when only the hub has them and it is unreachable."""
    try:
        return load_split(config, split, _reader(task, config))
    except DataError as exc:
        if looks_like_file(getattr(config.data, split) or ""):
            raise
        what = "carving validation from train" if split == "validation" else "no test scores"
        notice(f"{split} split unavailable ({exc.message}); {what} (pass --{split} FILE)")
        return None
