"""Multi-label classification: any number of labels per text (or pair), a sigmoid per label.

Labels come from one column holding several (`a|b`, or a JSON list) or from one 0/1 column per
label. Validation fits one temperature per label (sigmoid NLL) and then tunes one threshold per
label for the best F1 on the calibrated probabilities; both are saved with the model, so
`eval` and `predict` apply them and never tune on the data they score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bertcli.data.load import Example
from bertcli.errors import DataError
from bertcli.tasks.base import require_labels
from bertcli.tasks.classification import ClassificationTask

if TYPE_CHECKING:
    from bertcli.config import DataConfig, MultiLabelConfig, RunConfig
    from bertcli.data.load import Record, Split

_TRUE = {"1", "1.0", "true", "yes"}
_FALSE = {"0", "0.0", "false", "no", ""}


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow warnings for large |x|


@dataclass
class MultiLabelTask(ClassificationTask):
    """Classification's reading, windows and pooling; a sigmoid per label instead of one softmax."""

    separator: str = "|"
    label_columns: list[str] = field(default_factory=list)
    # Per label, in label order; None while fine-tuning until validation tunes them.
    thresholds: np.ndarray | None = None
    temperatures: np.ndarray | None = None

    name = "multilabel"
    attention_pooling = False
    section = "multilabel"
    main_metric = "macro_f1"  # GoEmotions and most multi-label papers report macro-F1
    output_formats = ("jsonl", "tsv")
    saved_extras = ("long_inputs",)

    @classmethod
    def build(
        cls,
        label_names: list[str],
        max_length: int,
        settings: dict[str, Any],
        overrides: dict[str, Any] | None = None,
        model_dir: Any = None,
    ) -> MultiLabelTask:
        """From the `multilabel` settings plus `long_inputs`; a saved model's settings also hold
        the tuned `thresholds` and `temperatures` (by label name)."""
        from bertcli.config import MultiLabelConfig, build

        settings = dict(settings)
        long_inputs = settings.pop("long_inputs", None) or {}
        saved = "thresholds" in settings  # a saved model, not a recipe
        thresholds, temperatures = (
            settings.pop("thresholds", None),
            settings.pop("temperatures", None),
        )
        checked: MultiLabelConfig = build(MultiLabelConfig, settings, "multilabel.")
        task = super().build(label_names, max_length, long_inputs, overrides, model_dir)
        task.separator, task.label_columns = checked.separator, list(checked.label_columns)
        fixed = checked.threshold
        if saved:
            task.thresholds = _by_name(thresholds, label_names, fixed or 0.5)
            task.temperatures = _by_name(temperatures, label_names, 1.0)
        elif fixed is not None:
            task.thresholds = np.full(len(label_names), fixed)
        return task

    def saved_settings(self, config: RunConfig, metrics: dict[str, Any]) -> dict[str, Any]:
        per_label = metrics.get("per_label") or {}
        tuned = {
            key: {name: per_label[name][key] for name in self.label_names}
            if per_label
            else _named(getattr(self, f"{key}s"), self.label_names)
            for key in ("threshold", "temperature")
        }
        return {
            self.section: asdict(config.multilabel)
            | {"thresholds": tuned["threshold"], "temperatures": tuned["temperature"]},
            "long_inputs": asdict(config.long_inputs.fitted(config.train.max_length)),
        }

    # ------------------------------------------------------------------ data
    @classmethod
    def label_set(cls, config: RunConfig, records: Sequence[Record], split: Split) -> list[str]:
        from bertcli.data.load import infer_label_names, label_column

        settings = config.multilabel
        if settings.label_columns:
            if records:
                _check_columns(records[0], settings.label_columns)
            return require_labels(list(settings.label_columns), split.origin, config)
        column = label_column(records, config.data) if records else ""
        tokens = [
            token
            for _, record in records
            for token in _tokens(record.get(column), settings.separator)
        ]
        names = infer_label_names(tokens, config.data.label_names, split.label_names)
        return require_labels(names, split.origin, config)

    @classmethod
    def to_examples(
        cls, config: RunConfig, split: Split, records: Sequence[Record], names: list[str]
    ) -> list[Any]:
        return labelled_examples(records, config.data, config.multilabel, names)

    @classmethod
    def check_training(
        cls, config: RunConfig, split: Split, train: list[Any], names: list[str]
    ) -> None:
        if not any(e.label for e in train):
            raise DataError(f"{split.origin}: no training row has any label; nothing to learn")

    @classmethod
    def label_counts(cls, train: Sequence[Any], n_labels: int) -> None:
        return None  # each label is its own binary problem: no class weights across labels

    def read_file(  # type: ignore[override]
        self,
        path: str | Path,
        data: DataConfig,
        label_names: Sequence[str] | None,
        *,
        with_labels: bool = True,
        limit: int | None = None,
    ) -> list[Any]:
        """Labelled files need the model's separator or label columns: an instance's method."""
        from bertcli.config import MultiLabelConfig
        from bertcli.data.readers import iter_records

        if not with_labels:
            return super().read_file(path, data, None, with_labels=False, limit=limit)
        records = list(islice(iter_records(path), limit))
        settings = MultiLabelConfig(separator=self.separator, label_columns=self.label_columns)
        return labelled_examples(records, data, settings, list(label_names or self.label_names))

    # ------------------------------------------------------------------ head
    @classmethod
    def head_config(cls, label_names: Sequence[str]) -> dict[str, Any]:
        # transformers' own pipeline then applies a sigmoid to this model's scores as well.
        return super().head_config(label_names) | {"problem_type": "multi_label_classification"}

    @staticmethod
    def loss(model: Any, logits: Any, labels: Any) -> Any:
        import torch.nn.functional as F

        return F.binary_cross_entropy_with_logits(logits.float(), labels.float())

    def target(self, label: Any) -> np.ndarray:
        hot = np.zeros(len(self.label_names), dtype=np.float32)
        hot[list(label)] = 1.0
        return hot

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        temperatures = self.temperatures if self.temperatures is not None else 1.0
        return sigmoid(logits / temperatures)

    @staticmethod
    def decisions(logits: Any) -> np.ndarray:
        """Which labels each window's logits put above 0.5."""
        return (np.asarray(logits) > 0).ravel()

    # ------------------------------------------------------------------ metrics and output
    def metrics(self, predictions: Any, examples: Sequence[Example]) -> dict[str, Any]:
        """Scores at the tuned thresholds; while fine-tuning, validation fits the temperatures
        and then tunes the thresholds on the calibrated probabilities."""
        from bertcli.calibration import expected_calibration_error, fit_label_temperatures
        from bertcli.metrics.multilabel import multilabel_metrics, tune_thresholds

        targets = np.stack([self.target(e.label) for e in examples])
        logits = predictions.logits
        temperatures = self.temperatures
        if temperatures is None:
            temperatures = fit_label_temperatures(logits, targets)
        probs = sigmoid(logits / temperatures)
        thresholds = self.thresholds
        if thresholds is None:
            thresholds = tune_thresholds(probs, targets)
        metrics = multilabel_metrics(probs >= thresholds, targets, self.label_names)
        for j, name in enumerate(self.label_names):
            metrics["per_label"][name] |= {
                "threshold": round(float(thresholds[j]), 4),
                "temperature": float(temperatures[j]),
            }
        return metrics | {
            "ece": expected_calibration_error(sigmoid(logits), targets),
            "ece_calibrated": expected_calibration_error(probs, targets),
        }

    def adopt(self, metrics: dict[str, Any]) -> None:
        """Keep validation's thresholds and temperatures for the test split and the model."""
        per_label = metrics["per_label"]
        if self.thresholds is None:
            self.thresholds = np.array([per_label[n]["threshold"] for n in self.label_names])
        if self.temperatures is None:
            self.temperatures = np.array([per_label[n]["temperature"] for n in self.label_names])

    def report(self, metrics: dict[str, Any], title: str) -> Any:
        from bertcli.metrics.report import render_multilabel_report

        return render_multilabel_report(metrics, title)

    def chosen(self, row: np.ndarray) -> list[str]:
        thresholds = self.thresholds if self.thresholds is not None else 0.5
        return [n for n, keep in zip(self.label_names, row >= thresholds, strict=True) if keep]

    def format(self, predictions: Any, index: int, example: Any = None) -> dict[str, Any]:
        row = predictions.probs[index]
        return {
            "labels": self.chosen(row),
            "scores": {n: round(float(p), 6) for n, p in zip(self.label_names, row, strict=True)},
            "windows": predictions.windows[index],
        }

    def text_row(self, output_format: str, predictions: Any, index: int, example: Any) -> str:
        """tsv: the labels joined by the separator, then the windows."""
        if output_format != "tsv":
            return super().text_row(output_format, predictions, index, example)
        row = self.format(predictions, index, example)
        return f"{self.separator.join(row['labels'])}\t{row['windows']}\n"


def _by_name(saved: dict[str, float] | None, names: Sequence[str], default: float) -> np.ndarray:
    saved = saved or {}
    return np.array([float(saved.get(name, default)) for name in names])


def _named(values: np.ndarray | None, names: Sequence[str]) -> dict[str, float] | None:
    if values is None:
        return None
    return {name: round(float(v), 4) for name, v in zip(names, values, strict=True)}


def _check_columns(first: Record, columns: Sequence[str]) -> None:
    location, record = first
    missing = [c for c in columns if c not in record]
    if missing:
        raise DataError(
            f"{location}: no column {missing[0]!r} (multilabel.label_columns)",
            f"columns here: {', '.join(map(str, record))}",
        )


def _tokens(value: Any, separator: str) -> list[Any]:
    """The labels in one cell: a list (JSON, hub) or a string split at `separator`."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [v for v in value if v is not None and str(v).strip()]
    return [t.strip() for t in str(value).split(separator) if t.strip()]


def _label_ids(
    value: Any, names: Sequence[str], separator: str, location: str, column: str
) -> tuple[int, ...]:
    from bertcli.data.load import _int_like

    ids = set()
    for token in _tokens(value, separator):
        text = str(token).strip()
        index = names.index(text) if text in names else _int_like(token)
        if index is None or not 0 <= index < len(names):
            raise DataError(
                f"{location}: label {text!r} in field {column!r} was not seen in training "
                f"(labels: {', '.join(names)})",
                f"labels in one cell are separated by {separator!r} (multilabel.separator)",
            )
        ids.add(index)
    return tuple(sorted(ids))


def _flag(value: Any, location: str, column: str) -> bool:
    text = str(value).strip().lower() if value is not None else ""
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise DataError(
        f"{location}: field {column!r} is {value!r}, not 0 or 1",
        "each column of multilabel.label_columns says whether its label applies: 0 or 1",
    )


def labelled_examples(
    records: Sequence[Record],
    data: DataConfig,
    settings: MultiLabelConfig,
    names: list[str],
) -> list[Example]:
    """Records with a text (and pair) and their labels as sorted label ids."""
    from bertcli.data.load import label_column, labelled_records

    if not records:
        return []
    columns = settings.label_columns
    if columns:
        _check_columns(records[0], columns)

        def from_columns(location: str, record: dict[str, Any]) -> tuple[int, ...]:
            return tuple(names.index(c) for c in columns if _flag(record.get(c), location, c))

        return labelled_records(records, data, from_columns)
    column = label_column(records, data)

    def from_cell(location: str, record: dict[str, Any]) -> tuple[int, ...]:
        return _label_ids(record.get(column), names, settings.separator, location, column)

    return labelled_records(records, data, from_cell)
