"""Typed run configuration: recipe YAML + dotted overrides -> validated dataclasses."""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from bertcli.errors import ConfigError

# The task of a recipe that names none, and of models saved before bertcli.json named one.
DEFAULT_TASK = "classification"
ON_MISMATCH = ("error", "skip")
TAGGING_HEADS = ("linear", "crf", "globalpointer")
TEXT_FORMATS = ("lines", "paragraphs")
PRECISIONS = ("auto", "bf16", "fp16", "no")
POOLINGS = ("cls", "mean")
CLEANERS = ("html", "whitespace")
LONG_INPUT_STRATEGIES = ("head", "tail", "head+tail", "chunk")
AGGREGATIONS = ("mean", "max", "attention")


def raise_all(problems: list[str]) -> None:
    """Report every problem of a section at once, not one per run."""
    if problems:
        raise ConfigError("; ".join(problems))


def _f(default: Any = dataclasses.MISSING, help: str = "", **kw: Any) -> Any:
    """A dataclass field whose help text feeds `bertcli recipes keys`."""
    if isinstance(default, list | dict):
        value = default
        return field(default_factory=lambda: type(value)(value), metadata={"help": help}, **kw)
    return field(default=default, metadata={"help": help}, **kw)


@dataclass
class DataConfig:
    dataset: str | None = _f(None, "Hub dataset name, e.g. stanfordnlp/imdb")
    subset: str | None = _f(None, "Hub dataset configuration, e.g. mrpc for glue")
    train: str | None = _f(None, "Training data: a local file or a hub split name")
    validation: str | None = _f(None, "Validation data: file or split; none = carve from train")
    test: str | None = _f(None, "Test data: file or split, evaluated after training")
    text_column: str = _f("text", "Column holding the text (alternatives: a|b)")
    pair_column: str | None = _f(None, "Column holding the second text of a pair")
    label_column: str = _f("label", "Column holding the label (string or integer)")
    label_names: list[str] | None = _f(None, "Names for integer labels 0..N-1")
    validation_fraction: float = _f(0.1, "Fraction of train held out when no validation split")
    clean: list[str] = _f([], "Text cleaning steps: html (strip <br /> tags), whitespace")
    max_train_samples: int | None = _f(None, "Use only the first N training examples")
    max_eval_samples: int | None = _f(None, "Use only the first N validation/test examples")

    def __post_init__(self) -> None:
        problems: list[str] = []
        bad = [c for c in self.clean if c not in CLEANERS]
        if bad:
            problems.append(f"data.clean: unknown step {bad[0]!r} (valid: {', '.join(CLEANERS)})")
        if not 0.0 < self.validation_fraction < 1.0:
            problems.append(
                f"data.validation_fraction: {self.validation_fraction} is not between 0 and 1"
            )
        raise_all(problems)


@dataclass
class ModelConfig:
    name: str = _f(
        "bert-base-uncased", "Hub model name, local directory, or 'minilm' (embedded model)"
    )
    offline_fallback: bool = _f(
        False,
        "When the hub is unreachable and this model is not cached, use the embedded MiniLM "
        "instead (shipped recipes set it for their default model; --model turns it off)",
    )
    pooling: str = _f("cls", "Sentence vector for classification: cls or mean")
    dropout: float | None = _f(None, "Classifier dropout (default: the model's)")
    attention_dropout: float | None = _f(
        0.0,
        "Dropout on attention probabilities during training; 0 lets PyTorch use its fused "
        "attention kernel (2.5x faster steps on CPU); null keeps the model's own value",
    )

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.pooling not in POOLINGS:
            problems.append(f"model.pooling: {self.pooling!r} is not one of {', '.join(POOLINGS)}")
        for name in ("dropout", "attention_dropout"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value < 1.0:
                problems.append(f"model.{name}: must be in [0, 1), got {value}")
        raise_all(problems)


@dataclass
class TrainConfig:
    output_dir: str | None = _f(None, "Where the model is written (default runs/<recipe>)")
    epochs: float = _f(3.0, "Training epochs (ignored when max_steps is set)")
    max_steps: int | None = _f(None, "Stop after this many optimizer steps")
    batch_size: int = _f(16, "Examples per device per step")
    eval_batch_size: int = _f(64, "Examples per device per evaluation step")
    grad_accum: int = _f(1, "Gradient accumulation steps")
    lr: float = _f(5e-5, "Peak learning rate")
    weight_decay: float = _f(0.01, "AdamW weight decay (never on biases and LayerNorm)")
    warmup_ratio: float = _f(0.1, "Fraction of steps spent warming up the learning rate")
    max_grad_norm: float = _f(1.0, "Gradient clipping norm (0 disables)")
    max_length: int = _f(256, "Tokens per window, including [CLS] and [SEP]")
    seed: int = _f(42, "Random seed (data order, dropout, head initialisation)")
    precision: str = _f("auto", "auto, bf16, fp16 or no (fp32); auto picks bf16 where it is fast")
    group_by_length: bool = _f(True, "Batch examples of similar length together (less padding)")
    eval_steps: int | None = _f(None, "Evaluate every N steps (default: every epoch)")
    save_steps: int = _f(100, "Checkpoint every N steps")
    keep_checkpoints: int = _f(2, "How many step checkpoints to keep")
    metric: str | None = _f(
        None, "Validation metric that picks the best checkpoint (default: the task's main one)"
    )
    head_lr: float | None = _f(
        None,
        "Learning rate of the task head (and CRF); null: 20 x lr for tagging, lr otherwise "
        "(CRF transition scores learn too slowly at an encoder's rate)",
    )
    layer_lr_decay: float = _f(
        1.0,
        "Layer-wise learning-rate decay: each encoder layer learns at this times the rate of the "
        "one above it, the embeddings lowest (Sun et al. 2019: 0.95); 1 = one rate for all",
    )
    early_stopping_patience: int | None = _f(None, "Stop after N evaluations without improvement")
    log_steps: int = _f(10, "Write a training-log line (and read the loss) every N steps")
    compile: bool | Literal["auto"] = _f(
        "auto",
        "torch.compile the model for training and evaluation: true, false, or auto (on where "
        "it measured faster; so far nowhere: see benchmarks/RESULTS.md). The first steps of "
        "each new batch shape are slow while it compiles",
    )
    byte_dropout: bool = _f(
        True,
        "On a CPU, draw dropout masks from bulk random bytes (4x faster than torch's Bernoulli "
        "sampler: 6-11% more samples/s for MiniLM; each rate rounded to a multiple of 1/256); "
        "false: torch's own dropout. Ignored on GPUs and when compiling",
    )
    fp32_attention: bool = _f(
        True,
        "On a CPU in bf16, run attention in fp32 while training: PyTorch's bf16 flash-attention "
        "backward is the slower one there (MiniLM at 128 tokens: 0.44 -> 0.34 s per step); "
        "false: attention in bf16 too. Ignored on GPUs and when compiling",
    )
    gradient_checkpointing: bool = _f(
        False,
        "Recompute activations in the backward pass instead of keeping them: about a third "
        "slower, much less memory (long documents trained whole, large batches)",
    )
    pad_to_multiple_of: int | None = _f(
        None,
        "Pad each batch's length up to a multiple of N (never past max_length): fewer shapes to "
        "compile, tensor-core friendly; null: 64 when compiling, 8 on a GPU, 1 otherwise",
    )
    report_to: str | None = _f(
        None, "Experiment trackers, comma-separated: tensorboard, wandb, mlflow (optional extras)"
    )
    class_weights: list[float] | Literal["auto"] | None = _f(
        None,
        "Loss weight per label, in label order, or auto (inverse label frequency in train); "
        "classification and linear tagging heads",
    )

    def __post_init__(self) -> None:
        problems: list[str] = []
        positive = ("batch_size", "eval_batch_size", "grad_accum", "save_steps", "log_steps")
        if self.pad_to_multiple_of is not None:
            positive += ("pad_to_multiple_of",)
        for name in positive:
            if getattr(self, name) < 1:
                problems.append(f"train.{name}: must be at least 1, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps < 1:
            problems.append(f"train.max_steps: must be at least 1, got {self.max_steps}")
        if self.epochs <= 0:
            problems.append(f"train.epochs: must be positive, got {self.epochs}")
        for name in ("lr", "head_lr"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                problems.append(f"train.{name}: must be positive, got {value}")
        if not 8 <= self.max_length <= 8192:
            problems.append(f"train.max_length: must be between 8 and 8192, got {self.max_length}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            problems.append(f"train.warmup_ratio: must be in [0, 1), got {self.warmup_ratio}")
        if isinstance(self.class_weights, list) and not all(
            math.isfinite(w) and w > 0 for w in self.class_weights
        ):
            problems.append(
                f"train.class_weights: every weight must be a positive number, got "
                f"{self.class_weights}"
            )
        if not 0.0 < self.layer_lr_decay <= 1.0:
            problems.append(
                f"train.layer_lr_decay: must be in (0, 1] (e.g. 0.95), got {self.layer_lr_decay}"
            )
        if self.precision not in PRECISIONS:
            problems.append(
                f"train.precision: {self.precision!r} is not one of {', '.join(PRECISIONS)}"
            )
        from bertcli.trackers import TRACKERS  # light: names only

        for name in (self.report_to or "").replace(" ", "").split(","):
            if name and name != "none" and name not in TRACKERS:
                problems.append(f"train.report_to: {name!r} is not one of {', '.join(TRACKERS)}")
        raise_all(problems)


@dataclass
class LongInputsConfig:
    strategy: str = _f(
        "head", "Texts longer than max_length: head, tail, head+tail (truncation) or chunk"
    )
    head_tokens: int = _f(128, "head+tail: tokens kept from the start (the rest from the end)")
    stride: int = _f(128, "chunk: tokens shared by consecutive windows")
    max_windows: int = _f(
        0,
        "chunk: at most this many windows per text (0: no limit). attention: eval and predict "
        "read every window, and a training step takes at most this many of one text, a random "
        "choice in text order drawn again each epoch",
    )
    aggregate: str = _f(
        "mean",
        "chunk: pool window logits per text by mean, max, or attention (learned weights over "
        "the windows' [CLS] vectors, trained with the text as one example)",
    )

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.strategy not in LONG_INPUT_STRATEGIES:
            problems.append(
                f"long_inputs.strategy: {self.strategy!r} is not one of "
                + ", ".join(LONG_INPUT_STRATEGIES)
            )
        if self.aggregate not in AGGREGATIONS:
            problems.append(
                f"long_inputs.aggregate: {self.aggregate!r} is not one of {', '.join(AGGREGATIONS)}"
            )
        for name in ("head_tokens", "stride", "max_windows"):
            if getattr(self, name) < 0:
                problems.append(f"long_inputs.{name}: must be >= 0, got {getattr(self, name)}")
        raise_all(problems)

    def fitted(self, max_length: int) -> LongInputsConfig:
        """These settings with a stride that windows of `max_length` accept: what a model saves,
        so that `predict --long-inputs chunk` works on a model trained with another strategy."""
        if self.problems_for(max_length) or self.stride < max_length - 3:
            return self
        return dataclasses.replace(self, stride=max_length // 4)

    def problems_for(self, max_length: int) -> list[str]:
        """Checks that need the window length (the recipe's, or a saved model's)."""
        if self.aggregate == "attention" and self.strategy != "chunk":
            return [
                f"long_inputs.aggregate: attention pools the windows of long_inputs.strategy: "
                f"chunk, not {self.strategy} (one window per text); set --long-inputs chunk"
            ]
        if self.strategy == "chunk" and self.stride >= max_length - 3:
            return [
                f"long_inputs.stride: {self.stride} leaves no new tokens in windows of "
                f"{max_length}; use a stride below max_length / 2"
            ]
        return []


@dataclass
class TaggingConfig:
    head: str = _f(
        "linear",
        "Tagging head: linear (softmax per word), crf (linear-chain CRF) or globalpointer "
        "(a score per span and type: nested entities)",
    )
    bio_constraints: bool = _f(True, "crf: forbid I-X after anything but B-X/I-X")
    label_all_subwords: bool = _f(
        False, "Train on every sub-word of a word (continuations as I-X), not only the first"
    )
    stride: int | None = _f(
        None,
        "Tokens shared by consecutive windows of a sentence longer than max_length "
        "(default: a quarter of max_length)",
    )

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.head not in TAGGING_HEADS:
            problems.append(f"tagging.head: {self.head!r} is not one of {', '.join(TAGGING_HEADS)}")
        if self.head != "linear" and self.label_all_subwords:
            problems.append(
                f"tagging.label_all_subwords: the {self.head} head reads first sub-words only; "
                "use it with head: linear"
            )
        if self.stride is not None and self.stride < 0:
            problems.append(f"tagging.stride: must be >= 0, got {self.stride}")
        raise_all(problems)


@dataclass
class QAConfig:
    version_2: bool = _f(
        False,
        "SQuAD v2: questions may have no answer; a no-answer threshold is tuned on validation",
    )
    stride: int = _f(128, "Context tokens shared by consecutive windows (doc_stride)")
    max_question_tokens: int = _f(64, "Questions are cut to this many tokens")
    max_answer_length: int = _f(30, "Longest answer span, in tokens")
    n_best: int = _f(20, "Start and end candidates per window")
    on_mismatch: str = _f(
        "error",
        "An answer whose text is not at its answer_start: error, or skip it (counted)",
    )
    negatives: float = _f(
        0.0,
        "Also train this fraction of questions against another context, as unanswerable: "
        "teaches windows without the answer to say so (long documents). With global_norm "
        "other contexts are joined to the question's own instead (see join_contexts)",
    )
    join_contexts: int = _f(
        1,
        "With global_norm and negatives: join from 1 to this many other contexts to the "
        "question's own, its paragraph at a random place among them, so training sees answers "
        "deep inside documents of several windows",
    )
    global_norm: bool = _f(
        False,
        "Train every window of a question in one softmax over all their positions (Multi-"
        "passage BERT), so span scores compare across the windows of a long document",
    )
    ranker: bool = _f(
        False,
        "With global_norm: also learn which window holds the answer (from its [CLS]) and add "
        "that score to every span of the window",
    )

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.on_mismatch not in ON_MISMATCH:
            problems.append(
                f"qa.on_mismatch: {self.on_mismatch!r} is not one of {', '.join(ON_MISMATCH)}"
            )
        for name in ("max_question_tokens", "max_answer_length", "n_best", "join_contexts"):
            if getattr(self, name) < 1:
                problems.append(f"qa.{name}: must be at least 1, got {getattr(self, name)}")
        if self.stride < 0:
            problems.append(f"qa.stride: must be >= 0, got {self.stride}")
        if not 0.0 <= self.negatives <= 1.0:
            problems.append(f"qa.negatives: must be between 0 and 1, got {self.negatives}")
        if self.ranker and not self.global_norm:
            problems.append("qa.ranker: needs qa.global_norm: true (it ranks a question's windows)")
        if self.join_contexts > 1 and not self.global_norm:
            problems.append(
                "qa.join_contexts: needs qa.global_norm: true (per-window training takes "
                "negatives as separate contexts)"
            )
        raise_all(problems)


@dataclass
class RegressionConfig:
    min: float | None = _f(
        None, "Lowest possible score (e.g. 0): with max, targets train in [0, 1]"
    )
    max: float | None = _f(None, "Highest possible score (e.g. 5); saved with the model")

    def __post_init__(self) -> None:
        if (self.min is None) != (self.max is None):
            raise ConfigError("regression.min and regression.max: set both or neither")
        if self.min is not None and self.max is not None and not self.min < self.max:
            raise ConfigError(f"regression.min: {self.min} must be below max {self.max}")


@dataclass
class MultiLabelConfig:
    separator: str = _f("|", "Separator of the labels in one cell of data.label_column (a|b)")
    label_columns: list[str] = _f(
        [], "One 0/1 column per label, named as the label (instead of data.label_column)"
    )
    threshold: float | None = _f(
        None,
        "Probability above which every label is predicted; default: one threshold per label, "
        "tuned on validation for the best F1 and saved with the model",
    )

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not self.separator:
            problems.append("multilabel.separator: must not be empty")
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            problems.append(f"multilabel.threshold: must be between 0 and 1, got {self.threshold}")
        if len(set(self.label_columns)) != len(self.label_columns):
            problems.append("multilabel.label_columns: a column is listed twice")
        raise_all(problems)


@dataclass
class MaskedLMConfig:
    probability: float = _f(0.15, "Fraction of tokens chosen for prediction (BERT: 0.15)")
    mask: float = _f(0.8, "Of the chosen tokens, the fraction replaced by the mask token")
    random: float = _f(0.1, "Of the chosen tokens, the fraction replaced by a random token")
    whole_word: bool = _f(
        False,
        "Choose all pieces of a word together (BERT-wwm); in Chinese text a word is a character",
    )
    seed: int = _f(0, "Seed of the masks: the same text gets the same masks on every run")
    format: str = _f(
        "lines", "Plain-text files: a document per line, or per blank-line separated paragraph"
    )
    text_files: list[str] = _f([], "More text files to pre-train on, beside the training split")

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not 0.0 < self.probability < 1.0:
            problems.append(f"mlm.probability: must be between 0 and 1, got {self.probability}")
        for name in ("mask", "random"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"mlm.{name}: must be between 0 and 1, got {getattr(self, name)}")
        if self.mask + self.random > 1.0 + 1e-9:
            problems.append(
                f"mlm.mask + mlm.random: {self.mask} + {self.random} exceeds 1 (the rest of the "
                "chosen tokens stay unchanged)"
            )
        if self.format not in TEXT_FORMATS:
            problems.append(f"mlm.format: {self.format!r} is not one of {', '.join(TEXT_FORMATS)}")
        raise_all(problems)


@dataclass
class RunConfig:
    name: str = _f("custom", "Recipe name (used for the default output dir and data lookup)")
    task: str = _f(
        DEFAULT_TASK,
        "Task: classification, multilabel (any number of labels per text), regression (a "
        "score per text or pair), tagging (a label per "
        "word, e.g. NER), qa (extractive answers) or masked_lm (pre-training on unlabelled "
        "text, as `bertcli pretrain` sets it)",
    )
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    long_inputs: LongInputsConfig = field(default_factory=LongInputsConfig)
    tagging: TaggingConfig = field(default_factory=TaggingConfig)
    qa: QAConfig = field(default_factory=QAConfig)
    regression: RegressionConfig = field(default_factory=RegressionConfig)
    multilabel: MultiLabelConfig = field(default_factory=MultiLabelConfig)
    mlm: MaskedLMConfig = field(default_factory=MaskedLMConfig)

    def __post_init__(self) -> None:
        from bertcli.tasks import get_task, task_names
        from bertcli.tasks.base import unused_long_inputs

        problems: list[str] = []
        if self.task not in task_names():
            problems.append(f"task: {self.task!r} is not one of {', '.join(task_names())}")
        problems += self.long_inputs.problems_for(self.train.max_length)
        if self.task in task_names():
            task = get_task(self.task)
            if not task.pools_windows:
                problems += unused_long_inputs(task.name, self, None)
            problems += task.config_problems(self)
        raise_all(problems)

    @property
    def output_dir(self) -> Path:
        return Path(self.train.output_dir or f"runs/{self.name}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------- recipes


def recipe_dirs() -> list[Path]:
    here = Path(__file__).resolve().parent
    # Installed wheels carry recipes inside the package; a source checkout has them at the top.
    return [d for d in (here / "recipes", here.parent / "recipes") if d.is_dir()]


def list_recipes() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for directory in reversed(recipe_dirs()):
        for path in sorted(directory.glob("*.yaml")):
            found[path.stem] = path
    return dict(sorted(found.items()))


def find_recipe(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if path.is_dir():
            raise ConfigError(
                f"{name_or_path}: is a folder, expected a recipe YAML file",
                "pass a file such as recipes/imdb.yaml, or a shipped recipe name",
            )
        if not path.is_file():
            raise ConfigError(f"{name_or_path}: no such recipe file")
        return path
    recipes = list_recipes()
    if name_or_path not in recipes:
        known = ", ".join(recipes) or "none"
        raise ConfigError(
            f"unknown recipe {name_or_path!r} (shipped recipes: {known})",
            "pass a recipe name or a path to a YAML file; see `bertcli recipes list`",
        )
    return recipes[name_or_path]


def read_recipe(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{where}: invalid YAML ({problem})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read recipe ({exc})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe must be a YAML mapping, found {type(data).__name__}")
    data.setdefault("name", path.stem)
    return data


# ------------------------------------------------------------------ overrides and typing


def all_keys(cls: type = RunConfig, prefix: str = "") -> dict[str, str]:
    """Every dotted key a recipe or --set may use, with its help text."""
    keys: dict[str, str] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            keys.update(all_keys(hints[f.name], f"{prefix}{f.name}."))
        else:
            keys[f"{prefix}{f.name}"] = f.metadata.get("help", "")
    return keys


def parse_override(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected dotted.key=value, e.g. train.lr=3e-5")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    valid = all_keys()
    unknown = [key for key in overrides if key not in valid]
    if unknown:
        raise ConfigError(
            f"unknown config key {', '.join(map(repr, unknown))}",
            f"valid keys: {', '.join(sorted(valid))}",
        )
    for key, value in overrides.items():
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{key}: {part} must be a mapping")
        node[leaf] = value
    return data


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is list:
        (item,) = typing.get_args(hint)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(v, item, key) for v in value]
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise ConfigError(f"{key}: {value!r} is not one of {typing.get_args(hint)}")
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
        if not number.is_integer():
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return int(number)
    if hint is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return number
    if hint is str:
        if isinstance(value, dict | list):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    return value


def build(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Validate a mapping into dataclass `cls`, collecting every problem into one error."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'recipe'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    problems: list[str] = []
    unknown = sorted(set(data) - names)
    if unknown:
        valid = ", ".join(k for k in all_keys() if k.startswith(prefix))
        keys = ", ".join(repr(f"{prefix}{key}") for key in unknown)
        problems.append(f"unknown key {keys} (valid keys: {valid})")
    kwargs: dict[str, Any] = {}
    for name in names & set(data):
        hint, value, key = hints[name], data[name], f"{prefix}{name}"
        try:
            if dataclasses.is_dataclass(hint):
                kwargs[name] = build(hint, value or {}, f"{key}.")
            else:
                kwargs[name] = _coerce(value, hint, key)
        except ConfigError as exc:
            problems.append(exc.message)
    # Construct even when some fields failed, so their siblings' checks run and report too.
    try:
        instance = cls(**kwargs)
    except ConfigError as exc:
        problems.append(exc.message)
    raise_all(problems)
    return instance


def _flat_keys(data: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        keys += _flat_keys(value, f"{dotted}.") if isinstance(value, dict) else [dotted]
    return keys


def _key_line(path: Path, dotted: str) -> int | None:
    """The line of `dotted` in a recipe file (for error messages), if YAML says where it is."""
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, OSError, UnicodeDecodeError):
        return None
    line = None
    for part in dotted.split("."):
        if not isinstance(node, yaml.MappingNode):
            return line
        match = next(((k, v) for k, v in node.value if k.value == part), None)
        if match is None:
            return line
        line, node = match[0].start_mark.line + 1, match[1]
    return line


def check_recipe_keys(path: Path, data: dict[str, Any]) -> None:
    """An unknown key in a recipe file is reported with the file and line it sits on."""
    valid = all_keys()
    sections = {key.split(".")[0] for key in valid}
    problems = []
    for key in _flat_keys(data):
        if key in valid or key in sections:  # a section that is not a mapping: build() says so
            continue
        line = _key_line(path, key)
        where = f"{path}:line {line}" if line else str(path)
        section = key.rsplit(".", 1)[0] + "." if "." in key else ""
        siblings = [k for k in valid if k.startswith(section) and "." not in k[len(section) :]]
        close = difflib.get_close_matches(key, siblings, n=1, cutoff=0.75)
        guess = f"did you mean {close[0]!r}? " if close else ""
        problems.append(f"{where}: unknown key {key!r} ({guess}valid keys: {', '.join(siblings)})")
    if problems:
        raise ConfigError("; ".join(problems))


def task_of(recipe: str | None, sets: list[str] | None = None) -> str:
    """The task a recipe (and its --set overrides) asks for, before anything is validated."""
    data = read_recipe(find_recipe(recipe)) if recipe else {}
    for text in sets or []:
        key, value = parse_override(text)
        if key == "task":
            data["task"] = value
    return str(data.get("task") or DEFAULT_TASK)


def load_config(
    recipe: str | None, overrides: dict[str, Any] | None = None, sets: list[str] | None = None
) -> RunConfig:
    """Resolve a recipe name or path plus overrides into a validated RunConfig."""
    path = find_recipe(recipe) if recipe else None
    data = read_recipe(path) if path else {}
    if path:
        check_recipe_keys(path, data)
    merged = dict(overrides or {})
    for text in sets or []:
        key, value = parse_override(text)
        merged[key] = value
    apply_overrides(data, merged)
    return build(RunConfig, data)


def dump_config(config: RunConfig) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True)
