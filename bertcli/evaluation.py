"""Score a model on labelled examples or files: the same windows and aggregation as prediction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bertcli.console import console
from bertcli.data.load import Example
from bertcli.data.windows import Windows
from bertcli.predictor import input_columns, open_predictor
from bertcli.tasks import Task


def evaluate_examples(
    logits_fn: Callable[[Windows], np.ndarray],
    tokenizer: Any,
    task: Task,
    examples: Sequence[Example],
    *,
    title: str,
    show: bool = True,
    on_predictions: Callable[[Any], None] | None = None,
) -> dict[str, Any]:
    """Metrics of `logits_fn` (window logits of any runtime) on labelled examples;
    `on_predictions` also gets the predictions (for an error table)."""
    windows = task.windows(tokenizer, examples)
    predictions = task.predict(logits_fn(windows), windows, examples)
    if on_predictions is not None:
        on_predictions(predictions)
    metrics = task.metrics(predictions, examples)
    if show:
        console.print(task.report(metrics, title))
    return metrics


def evaluate_model(
    model_dir: str | Path,
    files: Sequence[str],
    *,
    text_column: str | None = None,
    pair_column: str | None = None,
    label_column: str | None = None,
    precision: str = "auto",
    batch_size: int | None = None,
    long_inputs: dict[str, Any] | None = None,
    on_predictions: Callable[[str, Task, Sequence[Any], Any], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Metrics of a saved model (PyTorch or exported ONNX) on each labelled file, by file name;
    `on_predictions(file, task, examples, predictions)` also gets each file's predictions."""
    predictor = open_predictor(
        model_dir, precision=precision, batch_size=batch_size, long_inputs=long_inputs
    )
    data = input_columns(predictor.meta, text_column, pair_column, label_column)
    results = {}
    task = predictor.task
    for path in files:
        examples = task.read_file(path, data, getattr(task, "label_names", None))
        results[str(path)] = evaluate_examples(
            predictor.window_logits,
            predictor.tokenizer,
            predictor.task,
            examples,
            title=f"{Path(model_dir).name} on {path}",
            on_predictions=partial(on_predictions, str(path), task, examples)
            if on_predictions
            else None,
        )
    return results
