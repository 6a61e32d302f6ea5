"""Regression: one score per text or pair (e.g. STS-B similarity 0-5), MSE on the [CLS] head."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bertcli.aggregate import pool_windows
from bertcli.data.load import Example
from bertcli.data.windows import Windows
from bertcli.errors import DataError
from bertcli.tasks.classification import ClassificationTask

if TYPE_CHECKING:
    from bertcli.config import DataConfig, RunConfig
    from bertcli.data.load import Record, Split


@dataclass
class RegressionTask(ClassificationTask):
    """A number per text (or pair). Reading, pairs and predict inputs are classification's; the
    head has one output trained with MSE on targets scaled to [0, 1] when a range is given."""

    min: float | None = None
    max: float | None = None

    name = "regression"
    attention_pooling = False
    section = "regression"
    main_metric = "pearson"
    pools_windows = False  # one window per text: the long_inputs settings are not read
    saved_extras = ()  # a score has no temperature
    output_formats = ("jsonl", "tsv")

    @classmethod
    def build(
        cls,
        label_names: list[str],
        max_length: int,
        settings: dict[str, Any],
        overrides: dict[str, Any] | None = None,
        model_dir: Any = None,
    ) -> RegressionTask:
        from bertcli.config import RegressionConfig, build

        checked = build(RegressionConfig, dict(settings), "regression.")
        return cls(list(label_names), int(max_length), min=checked.min, max=checked.max)

    # ------------------------------------------------------------------ data
    @classmethod
    def label_set(cls, config: RunConfig, records: Sequence[Record], split: Split) -> list[str]:
        return ["score"]

    @classmethod
    def to_examples(
        cls, config: RunConfig, split: Split, records: Sequence[Record], names: list[str]
    ) -> list[Any]:
        return scored_examples(records, config.data)

    @classmethod
    def check_training(
        cls, config: RunConfig, split: Split, train: list[Any], names: list[str]
    ) -> None:
        if len({e.label for e in train}) < 2:
            raise DataError(f"{split.origin}: every training score is the same; nothing to learn")

    @classmethod
    def label_counts(cls, train: Sequence[Any], n_labels: int) -> None:
        return None  # no classes to weigh

    @classmethod
    def read_file(
        cls,
        path: str | Path,
        data: DataConfig,
        label_names: Sequence[str] | None,
        *,
        with_labels: bool = True,
        limit: int | None = None,
    ) -> list[Any]:
        from itertools import islice

        from bertcli.data.readers import iter_records

        records = list(islice(iter_records(path), limit))
        if with_labels:
            return scored_examples(records, data)
        return super().read_file(path, data, None, with_labels=False, limit=limit)

    def saved_settings(self, config: RunConfig, metrics: dict[str, Any]) -> dict[str, Any]:
        return {self.section: asdict(config.regression)}  # the target range, to unscale

    def adopt(self, metrics: dict[str, Any]) -> None:
        """Nothing is tuned on validation."""

    # ------------------------------------------------------------------ head
    @classmethod
    def head_config(cls, label_names: Sequence[str]) -> dict[str, Any]:
        return {"num_labels": 1, "id2label": {0: "score"}, "label2id": {"score": 0}}

    @staticmethod
    def loss(model: Any, logits: Any, labels: Any) -> Any:
        import torch.nn.functional as F

        return F.mse_loss(logits.float().squeeze(-1), labels.float())  # (batch,) vs (batch,)

    # ------------------------------------------------------------------ windows and decoding
    def _scale(self, value: float) -> float:
        if self.min is None or self.max is None:
            return value
        return (value - self.min) / (self.max - self.min)

    def _unscale(self, value: np.ndarray) -> np.ndarray:
        if self.min is None or self.max is None:
            return value
        return value * (self.max - self.min) + self.min

    def target(self, label: Any) -> float:
        return self._scale(label)

    def predict(self, window_logits: np.ndarray, windows: Windows, examples: Sequence[Any]) -> Any:
        n = len(examples)
        pooled = pool_windows(np.asarray(window_logits), windows.example_index, n, "mean")
        return self._unscale(pooled[:, 0]), windows.windows_per_example(n)

    @staticmethod
    def decisions(logits: Any) -> np.ndarray:
        """Scores to two decimals: what a runtime should agree on."""
        return np.round(np.asarray(logits)[:, 0], 2)

    # ------------------------------------------------------------------ metrics and output
    def metrics(self, predictions: Any, examples: Sequence[Example]) -> dict[str, Any]:
        from bertcli.metrics.correlation import regression_metrics

        scores, _ = predictions
        return regression_metrics(scores.tolist(), [e.label for e in examples])

    def report(self, metrics: dict[str, Any], title: str) -> Any:
        from rich.table import Table

        table = Table(title=title)
        keys = ("pearson", "spearman", "mse", "count")
        for key in keys:
            table.add_column(key, justify="right")
        table.add_row(*(str(metrics[key]) for key in keys))
        return table

    def format(self, predictions: Any, index: int, example: Any = None) -> dict[str, Any]:
        scores, counts = predictions
        return {"score": round(float(scores[index]), 6), "windows": counts[index]}

    def text_row(self, output_format: str, predictions: Any, index: int, example: Any) -> str:
        row = self.format(predictions, index, example)
        return f"{row['score']:.6f}\t{row['windows']}\n"


def scored_examples(records: Sequence[Record], data: DataConfig) -> list[Example]:
    """Records with a text (and pair) and a numeric score in data.label_column."""
    from bertcli.data.load import label_column, labelled_records

    column = label_column(records, data) if records else ""

    def score_of(location: str, record: dict[str, Any]) -> float:
        raw = record.get(column)
        try:
            score = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            score = math.nan
        if not math.isfinite(score):
            raise DataError(
                f"{location}: field {column!r} is {raw!r}, not a number",
                "a regression target is a number per row (e.g. 3.8)",
            )
        return score

    return labelled_records(records, data, score_of)
