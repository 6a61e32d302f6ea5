"""Sequence classification of single texts or pairs; long texts' windows pooled per example."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np

from bertcli.aggregate import attention_pool, pool_windows, softmax
from bertcli.data.load import Example, Record, clean_text
from bertcli.data.windows import Windows, make_windows
from bertcli.errors import ConfigError
from bertcli.tasks.base import InputRequest, Task, column_examples, require_labels

if TYPE_CHECKING:
    from bertcli.config import DataConfig, RunConfig
    from bertcli.data.load import Split

CALIBRATION = "calibration"  # bertcli.json key of the fitted temperature


class Scored(NamedTuple):
    """Classification predictions: calibrated probabilities, windows per example, raw logits,
    and with attention pooling each example's window weights (in window order)."""

    probs: np.ndarray
    windows: list[int]
    logits: np.ndarray
    weights: list[list[float]] | None = None


@dataclass
class ClassificationTask(Task):
    """One label per text (or pair); texts longer than a window follow `long_inputs`.

    `temperature` divides the pooled logits before the softmax: None until validation fits it
    (fine-tuning), then saved; a model saved before calibration existed reads as T = 1.
    """

    label_names: list[str]
    max_length: int
    strategy: str = "head"
    head_tokens: int = 128
    stride: int = 128
    max_windows: int = 0
    aggregate: str = "mean"
    temperature: float | None = None

    name = "classification"
    section = "long_inputs"
    main_metric = "accuracy"
    token_level = False
    auto_class = "AutoModelForSequenceClassification"
    output_formats = ("jsonl", "tsv")
    pools_windows = True
    saved_extras = (CALIBRATION,)
    # `long_inputs.aggregate: attention` trains its loss on whole documents (this task's loss).
    attention_pooling: ClassVar[bool] = True

    @classmethod
    def config_problems(cls, config: RunConfig) -> list[str]:
        if config.long_inputs.aggregate == "attention" and not cls.attention_pooling:
            return [
                f"long_inputs.aggregate: attention is for single-label classification; a "
                f"{cls.name} model pools windows by mean or max"
            ]
        return []

    @property
    def attention(self) -> bool:
        return self.aggregate == "attention"

    @classmethod
    def build(
        cls,
        label_names: list[str],
        max_length: int,
        settings: dict[str, Any],
        overrides: dict[str, Any] | None = None,
        model_dir: Any = None,
    ) -> ClassificationTask:
        """From the `long_inputs` settings (a recipe's or a saved model's), checked, with any
        non-None `overrides` (eval/predict flags) applied."""
        from bertcli.config import LongInputsConfig, build, raise_all

        changed = {k: v for k, v in (overrides or {}).items() if v is not None}
        settings = dict(settings)
        temperature = saved_temperature(settings)
        saved = build(LongInputsConfig, dict(settings), "long_inputs.")
        if "stride" not in changed:
            # Models saved before strides were fitted to their window kept a stride (128) that
            # their own windows refuse; the user never chose it, so fit it instead of failing.
            settings = asdict(saved.fitted(int(max_length)))
        checked = build(LongInputsConfig, {**settings, **changed}, "long_inputs.")
        raise_all(checked.problems_for(int(max_length)))
        if model_dir is not None and (checked.aggregate == "attention") != (
            saved.aggregate == "attention"
        ):
            # The attention weights are part of the model: neither added nor dropped afterwards.
            raise ConfigError(
                f"--aggregate {checked.aggregate}: {model_dir} was trained with "
                f"--aggregate {saved.aggregate}, and attention pooling is learned in training",
                "leave --aggregate out, or fine-tune a model with --aggregate attention",
            )
        return cls(list(label_names), int(max_length), **asdict(checked), temperature=temperature)

    # ------------------------------------------------------------------ data
    @classmethod
    def read_records(cls, config: RunConfig, path: str) -> Iterable[Record]:
        from bertcli.data.readers import iter_records

        return iter_records(path)

    @classmethod
    def label_set(cls, config: RunConfig, records: Sequence[Record], split: Split) -> list[str]:
        from bertcli.data.load import infer_label_names, raw_labels

        names = infer_label_names(
            raw_labels(records, config.data), config.data.label_names, split.label_names
        )
        return require_labels(names, split.origin, config)

    @classmethod
    def to_examples(
        cls, config: RunConfig, split: Split, records: Sequence[Record], names: list[str]
    ) -> list[Any]:
        from bertcli.data.load import to_examples

        return to_examples(records, config.data, names)

    @classmethod
    def check_training(
        cls, config: RunConfig, split: Split, train: list[Any], names: list[str]
    ) -> None:
        from bertcli.data.load import check_label_spread

        check_label_spread(train, names, split.origin)

    @classmethod
    def label_counts(cls, train: Sequence[Any], n_labels: int) -> np.ndarray:
        return np.bincount([e.label for e in train], minlength=n_labels)

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
        """CSV, TSV, JSON(L), Parquet or text lines."""
        from bertcli.data.load import to_examples
        from bertcli.data.readers import iter_records, read_records

        names = list(label_names or []) if with_labels else None
        records = read_records(path) if limit is None else list(islice(iter_records(path), limit))
        return to_examples(records, data, names, with_labels=with_labels)

    @classmethod
    def read_inputs(
        cls, records: Iterator[Record], request: InputRequest, passthrough: deque[dict[str, Any]]
    ) -> Iterator[Any]:
        """Texts (and pairs) from a column, cleaned as in training."""
        text_col, pair_col = request.columns()
        clean = request.clean

        def make(text: Any, pair: Any, location: str) -> Example:
            return Example(
                clean_text(str(text), clean),
                clean_text(str(pair), clean) if pair is not None else None,
                None,
                location,
            )

        return column_examples(records, text_col, pair_col, passthrough, make)

    # ------------------------------------------------------------------ head
    def saved_settings(self, config: RunConfig, metrics: dict[str, Any]) -> dict[str, Any]:
        # The chunk stride as it fits the trained window, so the model's own predict accepts it.
        return {
            self.section: asdict(config.long_inputs.fitted(config.train.max_length)),
            CALIBRATION: {"temperature": metrics.get("temperature", self.temperature)},
        }

    @classmethod
    def head_options(cls, pooling: str, settings: dict[str, Any]) -> dict[str, Any]:
        return {"pooling": pooling, "attention": settings.get("aggregate") == "attention"}

    @classmethod
    def window_scorer(
        cls, hf_config: Any, pooling: str = "cls", attention: bool = False, **_: Any
    ) -> Any:
        """Attention pooling scores each window from the vector the classifier reads."""
        if not attention:
            return None
        from bertcli.modeling.heads import window_scorer

        return window_scorer(hf_config, pooling)

    @classmethod
    def head_modules(cls, hf_config: Any, pooling: str = "cls", **_: Any) -> tuple[Any, Any]:
        """[CLS] pooling is the transformers head itself; mean pooling replaces it."""
        if pooling != "mean":
            return None, None
        from bertcli.modeling.heads import mean_pool_head

        return mean_pool_head(hf_config), None

    @staticmethod
    def loss(model: Any, logits: Any, labels: Any) -> Any:
        from bertcli.modeling.heads import attention_pooled, sequence_loss

        if model.scorer is None:
            return sequence_loss(logits, labels, model.class_weights)
        # Attention pooling, labels = (label, example id): the document's pooled logits learn
        # its label, and so does each window on its own, as with mean pooling. Without the
        # windows' own loss the encoder learns only through the windows the pooling favours,
        # which cost 3 points of accuracy at the same budget (benchmarks/RESULTS.md).
        pooled, group = attention_pooled(logits, labels[:, 1])
        documents = labels.new_zeros(pooled.shape[0]).scatter(0, group, labels[:, 0])
        windows = sequence_loss(logits[:, :-1], labels[:, 0], model.class_weights)
        return sequence_loss(pooled, documents, model.class_weights) + windows

    # ------------------------------------------------------------------ windows and decoding
    def windows(self, tokenizer: Any, examples: Sequence[Example]) -> Windows:
        has_pairs = bool(examples) and examples[0].pair is not None
        windows = make_windows(
            tokenizer,
            [e.text for e in examples],
            [e.pair or "" for e in examples] if has_pairs else None,
            max_length=self.max_length,
            strategy=self.strategy,
            head_tokens=self.head_tokens,
            stride=self.stride,
            # Attention reads every window; training samples at most max_windows of them.
            max_windows=0 if self.attention else self.max_windows,
        )
        if examples and examples[0].label is not None:
            # Every window of a document learns the document's label; attention pooling learns
            # it once per document, whose windows the loss finds by example id.
            windows.labels = [
                (self.target(examples[i].label), i) if self.attention
                else self.target(examples[i].label)
                for i in windows.example_index
            ]  # fmt: skip
        return windows

    def training_groups(self, windows: Windows) -> tuple[list[list[int]], int] | None:
        return (windows.example_groups(), self.max_windows) if self.attention else None

    def target(self, label: Any) -> Any:
        """What the loss trains a window on, from its example's label."""
        return int(label)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Pooled (examples, labels) logits -> calibrated probabilities."""
        return softmax(logits / (self.temperature or 1.0))

    def predict(self, window_logits: np.ndarray, windows: Windows, examples: Sequence[Any]) -> Any:
        """(windows, labels) logits -> (examples, labels) calibrated probabilities."""
        n = len(examples)
        counts = windows.windows_per_example(n)
        if not self.attention:
            logits = pool_windows(window_logits, windows.example_index, n, self.aggregate)
            return Scored(self.probabilities(logits), counts, logits)
        logits, weights = attention_pool(window_logits, windows.example_index, n)
        per_example: list[list[float]] = [[] for _ in range(n)]
        for example, weight in zip(windows.example_index, weights.tolist(), strict=True):
            per_example[example].append(weight)
        return Scored(self.probabilities(logits), counts, logits, per_example)

    def decisions(self, logits: Any) -> np.ndarray:
        """The label of each window (without attention pooling's score column)."""
        logits = np.asarray(logits)
        return (logits[:, :-1] if self.attention else logits).argmax(-1)

    # ------------------------------------------------------------------ metrics and output
    def metrics(self, predictions: Any, examples: Sequence[Example]) -> dict[str, Any]:
        from bertcli.metrics import classification_metrics

        labels = np.asarray([e.label for e in examples], dtype=np.int64)
        metrics = classification_metrics(
            predictions.probs.argmax(-1).tolist(), labels.tolist(), self.label_names
        )
        return metrics | self._calibration(predictions.logits, labels)

    def _calibration(self, logits: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
        """ECE before (T = 1) and after temperature scaling; the temperature is fitted here
        when none is set yet (validation while fine-tuning), never on data a saved model scores."""
        from bertcli.calibration import expected_calibration_error, fit_temperature

        temperature = self.temperature
        if temperature is None:
            temperature = fit_temperature(logits, labels)

        def ece(t: float) -> float:
            probs = softmax(logits / t)
            return expected_calibration_error(probs.max(-1), probs.argmax(-1) == labels)

        return {"ece": ece(1.0), "ece_calibrated": ece(temperature), "temperature": temperature}

    def adopt(self, metrics: dict[str, Any]) -> None:
        """Keep validation's temperature for the test split and the saved model."""
        if self.temperature is None and "temperature" in metrics:
            self.temperature = metrics["temperature"]

    def report(self, metrics: dict[str, Any], title: str) -> Any:
        from bertcli.metrics import render_classification_report

        return render_classification_report(metrics, title)

    def format(
        self, predictions: Any, index: int, example: Example | None = None
    ) -> dict[str, Any]:
        row = predictions.probs[index]
        best = int(row.argmax())
        out = {
            "label": self.label_names[best],
            "score": round(float(row[best]), 6),
            "scores": {
                name: round(float(p), 6) for name, p in zip(self.label_names, row, strict=True)
            },
        }
        out["windows"] = predictions.windows[index]
        if predictions.weights is not None:
            out["window_weights"] = [round(w, 6) for w in predictions.weights[index]]
        return out

    def text_row(self, output_format: str, predictions: Any, index: int, example: Any) -> str:
        """tsv: label, score and windows, tab-separated."""
        if output_format != "tsv":
            return super().text_row(output_format, predictions, index, example)
        row = self.format(predictions, index, example)
        return f"{row['label']}\t{row['score']:.6f}\t{row['windows']}\n"


def saved_temperature(settings: dict[str, Any]) -> float | None:
    """The temperature in a saved model's settings (popped); None for a recipe's (to fit)."""
    if CALIBRATION not in settings:
        return None
    saved = settings.pop(CALIBRATION) or {}
    return float(saved.get("temperature") or 1.0)
