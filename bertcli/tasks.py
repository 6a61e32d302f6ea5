"""Task objects: how examples become windows, and windows' outputs predictions and metrics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from bertcli.aggregate import pool_windows, softmax
from bertcli.data.load import Example
from bertcli.data.windows import Windows, make_windows


class Task(Protocol):
    """What the training loop, evaluation and prediction need to know about a task."""

    name: str
    metric_names: tuple[str, ...]

    def windows(self, tokenizer: Any, examples: Sequence[Example]) -> Windows: ...

    def loss(self, logits: Any, batch: dict[str, Any]) -> Any: ...

    def predict(self, window_logits: np.ndarray, windows: Windows, n_examples: int) -> Any: ...

    def metrics(self, predictions: Any, examples: Sequence[Example]) -> dict[str, Any]: ...

    def format(self, prediction: Any, index: int) -> dict[str, Any]: ...


@dataclass
class ClassificationTask:
    """Sequence classification of single texts or pairs; windows pooled per example."""

    label_names: list[str]
    max_length: int
    strategy: str = "head"
    head_tokens: int = 128
    stride: int = 128
    max_windows: int = 0
    aggregate: str = "mean"

    @classmethod
    def from_settings(
        cls, label_names: list[str], max_length: int, long_inputs: dict[str, Any]
    ) -> ClassificationTask:
        return cls(list(label_names), int(max_length), **long_inputs)

    name = "classification"
    metric_names = ("accuracy", "macro_f1")

    def windows(self, tokenizer: Any, examples: Sequence[Example]) -> Windows:
        has_pairs = bool(examples) and examples[0].pair is not None
        labels = [e.label for e in examples] if examples and examples[0].label is not None else None
        return make_windows(
            tokenizer,
            [e.text for e in examples],
            [e.pair or "" for e in examples] if has_pairs else None,
            max_length=self.max_length,
            labels=labels,  # type: ignore[arg-type]
            strategy=self.strategy,
            head_tokens=self.head_tokens,
            stride=self.stride,
            max_windows=self.max_windows,
        )

    def loss(self, logits: Any, batch: dict[str, Any]) -> Any:
        import torch.nn.functional as F  # the torch-free ONNX path never trains

        return F.cross_entropy(logits.float(), batch["labels"])

    def predict(self, window_logits: np.ndarray, windows: Windows, n_examples: int) -> Any:
        """(windows, labels) logits -> (examples, labels) probabilities, and windows per example."""
        logits = pool_windows(window_logits, windows.example_index, n_examples, self.aggregate)
        return softmax(logits), windows.windows_per_example(n_examples)

    def metrics(self, predictions: Any, examples: Sequence[Example]) -> dict[str, Any]:
        from bertcli.metrics import classification_metrics

        probs, _ = predictions
        return classification_metrics(
            probs.argmax(-1).tolist(), [e.label for e in examples], self.label_names
        )

    def format(self, predictions: Any, index: int) -> dict[str, Any]:
        probs, counts = predictions
        row = probs[index]
        best = int(row.argmax())
        out = {
            "label": self.label_names[best],
            "score": round(float(row[best]), 6),
            "scores": {
                name: round(float(p), 6) for name, p in zip(self.label_names, row, strict=True)
            },
        }
        out["windows"] = counts[index]
        return out
