"""The Task protocol every task module implements, and the helpers the tasks share.

A task is a class: its class-level methods (`@classmethod`/`@staticmethod`) answer questions that
come before any settings are known (how to read files, which transformers head, which loss); an
instance, made by `build` from a recipe's or a saved model's settings, turns examples into windows
and window logits into predictions, metrics and output rows. Nothing outside `bertcli.tasks`
compares task names: the pipeline asks the task instead, so a new task is one new module plus one
`register` line in `bertcli/tasks/__init__.py`. Task classes subclass `Task` explicitly to inherit
the defaults below; everything without a default is theirs to write.

Window logits are one (windows, labels) array for window-level tasks and, for token-level ones
(`token_level`), one (positions, labels) array per window.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from bertcli.data.load import Record, pick_column
from bertcli.errors import DataError, ModelError

if TYPE_CHECKING:
    from bertcli.config import DataConfig, RunConfig
    from bertcli.data.load import Split
    from bertcli.data.windows import Windows

HEAD_FILE = "bertcli_head.safetensors"


class Task(Protocol):
    """What finetune, eval, predict, export and the model loader need to know about a task."""

    # ------------------------------------------------------------- identity (class attributes)
    name: ClassVar[str]  # registry key; saved as bertcli.json's "task"
    section: ClassVar[str]  # config section (and bertcli.json key) holding the task's settings
    main_metric: ClassVar[str]  # validation metric that picks the best checkpoint by default
    token_level: ClassVar[bool]  # logits per position: padded when gathered, dynamic ONNX axes
    auto_class: ClassVar[str]  # transformers Auto class whose head the model carries
    head_lr_factor: ClassVar[float] = 1  # default head learning rate = factor x train.lr
    output_formats: ClassVar[tuple[str, ...]] = ("jsonl",)  # what `predict --format` may write
    # Reads `long_inputs` (strategy, aggregate...): pools its windows' outputs per example. Tasks
    # with windows of their own refuse those settings instead of ignoring them.
    pools_windows: ClassVar[bool] = False
    # The saved folder keeps the source's base-model weights that this head does not use (a
    # masked-LM model has no pooler; a classifier fine-tuned from it should get the source's).
    carries_base_weights: ClassVar[bool] = False
    exports_onnx: ClassVar[bool] = True  # `export --format onnx` applies
    activity: ClassVar[str] = "fine-tuning"  # what the progress bar says training is
    # bertcli.json keys beside `section` that `build` reads, passed in `settings` under their
    # own names: other recipe sections (from the recipe, then the saved model), or what
    # validation tuned (absent while fine-tuning: the task tunes it; read back from a model).
    saved_extras: ClassVar[tuple[str, ...]] = ()

    # ------------------------------------------------------------- config and saved settings
    @classmethod
    def config_problems(cls, config: RunConfig) -> list[str]:
        """Checks of a recipe that span sections (e.g. a stride against train.max_length)."""
        return []

    @classmethod
    def build(
        cls,
        label_names: list[str],
        max_length: int,
        settings: dict[str, Any],
        overrides: dict[str, Any] | None = None,
        model_dir: Any = None,
    ) -> Task:
        """The task from its `section` settings (a recipe's or a saved model's), with non-None
        eval/predict `overrides` applied and checked; `model_dir` holds saved extras."""
        ...

    def saved_settings(self, config: RunConfig, metrics: dict[str, Any]) -> dict[str, Any]:
        """bertcli.json sections this task writes (read back by `build` as `settings`)."""
        return {self.section: asdict(getattr(config, self.section))}

    # ------------------------------------------------------------- training data
    @classmethod
    def read_records(cls, config: RunConfig, path: str) -> Iterable[Record]:
        """A local file of a training split as (location, record) pairs."""
        ...

    @classmethod
    def label_set(cls, config: RunConfig, records: Sequence[Record], split: Split) -> list[str]:
        """The label names of a training split (checked: e.g. at least two)."""
        ...

    @classmethod
    def to_examples(
        cls, config: RunConfig, split: Split, records: Sequence[Record], names: list[str]
    ) -> list[Any]:
        """A split's records (file or hub rows) as examples with label ids."""
        ...

    @classmethod
    def check_training(
        cls, config: RunConfig, split: Split, train: list[Any], names: list[str]
    ) -> None:
        """Refuse training examples the recipe cannot learn from (before validation is carved)."""

    @classmethod
    def label_counts(cls, train: Sequence[Any], n_labels: int) -> np.ndarray | None:
        """How often each label occurs in training (what `train.class_weights: auto` weighs);
        None: the task takes no class weights."""
        return None

    @classmethod
    def augment_training(cls, config: RunConfig, train: list[Any]) -> list[Any]:
        """Training examples to add once validation is carved out (e.g. QA negatives)."""
        return train

    # ------------------------------------------------------------- eval files and predict inputs
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
        """Examples of one data file for `eval` and the export self-check (first `limit` only)."""
        ...

    @classmethod
    def read_inputs(
        cls, records: Iterator[Record], request: InputRequest, passthrough: deque[dict[str, Any]]
    ) -> Iterator[Any]:
        """`predict`: records to examples, lazily; fields that pass through go to `passthrough`."""
        ...

    @classmethod
    def question_example(cls, question: str, context: str, model_dir: Any) -> Any:
        """`predict --question`: one question about one document, for tasks that answer them."""
        raise DataError(f"{model_dir}: --question needs a QA model, this one does {cls.name}")

    # ------------------------------------------------------------- model head
    @classmethod
    def head_config(cls, label_names: Sequence[str]) -> dict[str, Any]:
        """Model config keys for `from_pretrained` (the head's size and label names)."""
        id2label = dict(enumerate(label_names))
        return {
            "num_labels": len(label_names),
            "id2label": id2label,
            "label2id": {v: k for k, v in id2label.items()},
        }

    @classmethod
    def head_options(cls, pooling: str, settings: dict[str, Any]) -> dict[str, Any]:
        """`TaskModel` options (passed on to `head_modules`) from model.pooling and the settings."""
        return {}

    @classmethod
    def head_modules(cls, hf_config: Any, **options: Any) -> tuple[Any, Any]:
        """bertcli's own modules beside the transformers head, saved in bertcli_head.safetensors:
        (a head that replaces it, scoring (hidden, mask); a CRF over its logits), or None each."""
        return None, None

    @classmethod
    def window_scorer(cls, hf_config: Any, **options: Any) -> Any:
        """A module scoring each window from its hidden states, (batch, seq, hidden) + mask ->
        (batch, 1), whose score the model appends to the logits as their last channel (saved
        in bertcli_head.safetensors); None: the task pools or ranks no windows by score."""
        return None

    @staticmethod
    def logits(outputs: Any) -> Any:
        """The head's scores from the transformers model's output."""
        return outputs.logits

    @staticmethod
    def loss(model: Any, logits: Any, labels: Any) -> Any:
        """Training loss of `logits` against the windows' labels (model: for its extras)."""
        ...

    @staticmethod
    def sparse_logits(hf_model: Any, labels: Any) -> AbstractContextManager[None]:
        """A context for the model's forward in which it computes only the logits the loss
        reads (masked-LM: the masked positions'); `labels` None (evaluation): all of them."""
        return nullcontext()

    @staticmethod
    def kept_outputs(logits: Any, labels: Any) -> Any:
        """What evaluation and prediction keep of a batch's logits, computed where they are (on
        the device) before they are gathered; `labels`: the batch's, or None when unlabelled."""
        return logits

    def training_groups(self, windows: Windows) -> tuple[list[list[int]], int] | None:
        """Windows that must train in the same batch, because the loss reads them together
        (a document's, in order), and the most of one group a step takes (0: all; a longer
        group is trained on a seeded random choice of that many, drawn again each epoch).
        None: every window is an example of its own."""
        return None

    def batch_transform(self, windows: Windows) -> Callable[[dict, int], dict] | None:
        """A change to every training batch of `windows`, given (batch, epoch): e.g. masked-LM's
        fresh masks each epoch. None: batches train as the windows are."""
        return None

    # ------------------------------------------------------------- windows and decoding
    def windows(self, tokenizer: Any, examples: Sequence[Any]) -> Windows:
        """Examples as model windows: the one windowing of training, eval and predict."""
        ...

    def bind(self, model: Any) -> None:
        """Read what decoding needs from the (possibly still training) model, e.g. a CRF."""

    def predict(self, window_logits: Any, windows: Windows, examples: Sequence[Any]) -> Any:
        """Window logits -> one prediction per example (the one aggregation)."""
        ...

    @staticmethod
    def decisions(logits: Any) -> np.ndarray:
        """What a runtime decides from window logits, flat: compared by the export self-check."""
        ...

    # ------------------------------------------------------------- metrics and output
    def metrics(self, predictions: Any, examples: Sequence[Any]) -> dict[str, Any]: ...

    def adopt(self, metrics: dict[str, Any]) -> None:
        """Keep what validation tuned (e.g. QA's null threshold) for test scores and saving."""

    def report(self, metrics: dict[str, Any], title: str) -> Any:
        """A rich renderable of `metrics`."""
        ...

    def format(self, predictions: Any, index: int, example: Any) -> dict[str, Any]:
        """One prediction as the fields of a JSON output line."""
        ...

    def text_row(self, output_format: str, predictions: Any, index: int, example: Any) -> str:
        """One prediction in a non-JSON format of `output_formats`, newline included."""
        raise DataError(f"--format {output_format} does not apply to a {self.name} model")


# The long-input settings that only window-pooling tasks read, and the flags that set them.
POOLED_WINDOW_FLAGS = {
    "strategy": "--long-inputs",
    "aggregate": "--aggregate",
    "max_windows": "--max-windows",
    "head_tokens": "long_inputs.head_tokens",
}


def unused_long_inputs(task: str, config: RunConfig | None, overrides: dict | None) -> list[str]:
    """Problems for long-input settings that a task with windows of its own would silently
    ignore (a tagger reads every sentence whole, QA every context): set in the recipe
    (`config`) or as eval/predict flags (`overrides`)."""
    from bertcli.config import LongInputsConfig

    default = asdict(LongInputsConfig())
    given = asdict(config.long_inputs) if config is not None else {}
    problems = [
        f"long_inputs.{key}: {value!r} does not apply to a {task} task, which reads long inputs "
        "whole in windows sharing its own stride; remove it"
        for key, value in given.items()
        if key in POOLED_WINDOW_FLAGS and value != default[key]
    ]
    problems += [
        f"{POOLED_WINDOW_FLAGS[key]} applies to classification models; a {task} model reads long "
        "inputs whole in windows sharing --stride tokens"
        for key, value in (overrides or {}).items()
        if key in POOLED_WINDOW_FLAGS and value is not None
    ]
    return problems


@dataclass
class InputRequest:
    """What `predict` was asked to read: format and origin of the input, and named columns."""

    source: str
    fmt: str
    meta: dict[str, Any]
    text_column: str | None = None
    pair_column: str | None = None

    @property
    def clean(self) -> list[str]:
        return list(self.meta.get("clean", []))

    def columns(self) -> tuple[str, str | None]:
        """Text and pair column: "text" for plain text lines, else as named or as in training."""
        from bertcli.predictor import input_columns

        if self.fmt == "text":
            if self.pair_column:
                raise DataError("--pair-column needs CSV, TSV, JSON(L) or Parquet input")
            return "text", None
        columns = input_columns(self.meta, self.text_column, self.pair_column)
        return columns.text_column, columns.pair_column


def column_examples(
    records: Iterator[Record],
    text_column: str,
    pair_column: str | None,
    passthrough: deque[dict[str, Any]],
    make: Callable[[Any, Any, str], Any],
) -> Iterator[Any]:
    """Lazily map records to `make(text, pair, location)`; the other fields wait in
    `passthrough`. Columns are picked on the first record (alternatives `a|b` allowed)."""
    columns: tuple[str | None, str | None] | None = None
    for location, record in records:
        if columns is None:
            text_col = pick_column(text_column, record, location, "data.text_column")
            pair_col = pick_column(pair_column, record, location, "data.pair_column")
            columns = (text_col, pair_col)
        text_col, pair_col = columns
        text, pair = record.get(text_col), record.get(pair_col) if pair_col else None  # type: ignore[arg-type]
        if text is None:
            raise DataError(f"{location}: field {text_col!r} is missing or empty")
        passthrough.append({k: v for k, v in record.items() if k not in (text_col, pair_col)})
        yield make(text, pair, location)


def require_labels(names: list[str], origin: str, config: RunConfig) -> list[str]:
    """A labelling task learns nothing from fewer than two labels."""
    if len(names) < 2:
        raise DataError(
            f"{origin}: found {len(names)} label(s) ({', '.join(names)}); need at least 2",
            f"check data.label_column ({config.data.label_column!r})",
        )
    return names


def head_file(model_dir: Any, what: str) -> Path:
    """bertcli_head.safetensors of a saved model, which must exist."""
    path = Path(model_dir) / HEAD_FILE
    if not path.is_file():
        raise ModelError(f"{model_dir}: {HEAD_FILE} is missing ({what})")
    return path
