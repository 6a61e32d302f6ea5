"""What every runtime's predictor shares: the saved task settings, windows and streaming order.

A predictor only has to say how to compute window logits (`window_logits`); PyTorch (`infer.py`)
and ONNX Runtime (`onnx_runtime.py`) differ in nothing else, so their outputs are comparable line
for line. This module imports neither torch nor transformers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bertcli.config import DEFAULT_TASK, DataConfig
from bertcli.data.load import Example
from bertcli.data.windows import Windows
from bertcli.tasks import Task, task_from_meta, task_names

# Examples predicted together when streaming: length sorting within a larger group pads less
# (16-window batches over 128 reviews ran at 68/s, over 1,024 at 77/s); memory stays bounded.
STREAM_CHUNK = 1024
ONNX_FILE = "model.onnx"
META_FILE = "bertcli.json"


def read_meta(model_dir: str | Path) -> dict[str, Any]:
    """bertcli.json of a model or export directory; it is written last, so it marks completeness."""
    import json

    from bertcli.errors import ModelError

    path = Path(model_dir) / META_FILE
    if not Path(model_dir).is_dir():
        raise ModelError(f"{model_dir}: no such model directory")
    if not path.is_file():
        raise ModelError(
            f"{model_dir}: not a bertcli model (no {META_FILE}); the run or export may be "
            "incomplete",
            "train one with `bertcli finetune`, resume the run, or re-run `bertcli export`",
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ModelError(f"{path}: unreadable ({exc})") from None
    check_meta(meta, path)
    return meta


def check_meta(meta: Any, path: Path) -> None:
    """The fields every reader of bertcli.json relies on, checked once with the key named."""
    from bertcli.errors import ModelError

    if not isinstance(meta, dict):
        raise ModelError(f"{path}: expected a JSON object, found {type(meta).__name__}")
    task = meta.get("task", DEFAULT_TASK)
    if task not in task_names():
        raise ModelError(
            f"{path}: key 'task': unknown task {task!r} (known: {', '.join(task_names())})",
            "the model was written by a newer bertcli, or the file was edited",
        )
    labels = meta.get("labels", [])
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ModelError(f"{path}: key 'labels': expected a list of label names")
    length = meta.get("max_length")
    if isinstance(length, bool) or not isinstance(length, int) or length < 8:
        raise ModelError(f"{path}: key 'max_length': expected a window length, got {length!r}")


def input_columns(
    meta: dict[str, Any],
    text_column: str | None = None,
    pair_column: str | None = None,
    label_column: str | None = None,
) -> DataConfig:
    """Columns and cleaning for new data: as in training unless the caller names others."""
    trained = meta.get("config", {}).get("data", {})
    return DataConfig(
        text_column=text_column or meta.get("text_column") or "text",
        pair_column=pair_column or meta.get("pair_column"),
        label_column=label_column or trained.get("label_column") or "label",
        clean=list(meta.get("clean", [])),
    )


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class BasePredictor:
    """A saved model ready to predict; `predict_stream` keeps memory flat in input size."""

    tokenizer: Any
    batch_size: int

    def __init__(
        self,
        meta: dict[str, Any],
        long_inputs: dict[str, Any] | None,
        model_dir: str | Path | None = None,
    ) -> None:
        self.meta = meta
        self.task: Task = task_from_meta(meta, long_inputs, model_dir)

    @property
    def clean(self) -> list[str]:
        return list(self.meta.get("clean", []))

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id or 0

    def window_logits(self, windows: Windows) -> np.ndarray | list[np.ndarray]:
        """(windows, labels) float32 logits in window order; per window for token-level tasks."""
        raise NotImplementedError

    def predict_examples(self, examples: list[Example]) -> Any:
        windows = self.task.windows(self.tokenizer, examples)
        return self.task.predict(self.window_logits(windows), windows, examples)

    def predict_stream(
        self,
        examples: Iterable[Example],
        chunk: int | None = None,
        render: Callable[[Any, int, Example], Any] | None = None,
    ) -> Iterator[tuple[Example, Any]]:
        """Predict chunk by chunk (several batches, so length sorting pays), in input order.

        Each prediction is rendered by `render` (default: the task's JSON form).
        """
        render = render or self.task.format
        for group in batched(examples, chunk or max(STREAM_CHUNK, self.batch_size * 8)):
            predictions = self.predict_examples(group)
            for i, example in enumerate(group):
                yield example, render(predictions, i, example)


def open_predictor(model_dir: str | Path, **options: Any) -> BasePredictor:
    """The predictor for a model directory: ONNX Runtime for exported ONNX, else PyTorch."""
    from bertcli.errors import ModelError

    if options.get("batch_size") is None:
        options.pop("batch_size", None)  # each runtime has its own best default
    if read_meta(model_dir).get("runtime") == "onnx":
        if not (Path(model_dir) / ONNX_FILE).is_file():
            raise ModelError(
                f"{model_dir}: incomplete ONNX export ({ONNX_FILE} is missing)",
                "re-run `bertcli export`",
            )
        from bertcli.onnx_runtime import OnnxPredictor

        if options.pop("compile", False):
            from bertcli.errors import ConfigError

            raise ConfigError(
                f"--compile: {model_dir} is an ONNX export, which ONNX Runtime already optimises",
                "drop --compile, or predict with the PyTorch model folder",
            )
        options.pop("device", None)
        return OnnxPredictor(model_dir, **options)
    from bertcli.infer import Predictor

    return Predictor(model_dir, **options)
