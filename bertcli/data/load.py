"""Load a recipe's splits from local files, $BERTCLI_DATA_DIR or the hub, as labelled examples."""

from __future__ import annotations

import html
import os
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bertcli.config import DataConfig, RunConfig
from bertcli.data.readers import iter_records, require_columns
from bertcli.errors import DataError

SPLIT_ALIASES = {
    "train": ("train",),
    "validation": ("validation", "valid", "dev", "val"),
    "test": ("test",),
}
LOCAL_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet", ".txt")
DATA_DIR_ENV = "BERTCLI_DATA_DIR"
# Where tagging data keeps its tags when the configured label column is absent (CoNLL reader, hub).
TAG_COLUMNS = ("tags", "ner_tags")

Record = tuple[str, dict[str, Any]]


@dataclass
class Example:
    """One input: a text (and optional pair), its label id, and where it came from.

    Tagging examples also carry their `words`, each word's character span in `text`, one tag id
    per word, and their `entities` as (type, first word, last word): what the tags say, or, for
    span files, every span given (nested or overlapping ones too; the tags then hold a
    non-overlapping subset).
    """

    text: str
    pair: str | None = None
    label: int | None = None
    location: str = ""
    words: list[str] | None = None
    spans: list[tuple[int, int]] | None = None
    tags: list[int] | None = None
    entities: list[tuple[str, int, int]] | None = None


@dataclass
class Split:
    """The records of one split plus the label names a hub dataset declares, if any."""

    records: list[Record]
    origin: str
    label_names: list[str] | None = None


def looks_like_file(value: str) -> bool:
    return Path(value).suffix.lower() in LOCAL_SUFFIXES or os.sep in value or Path(value).is_file()


def _data_dir_file(recipe: str, split: str) -> Path | None:
    root = os.environ.get(DATA_DIR_ENV)
    if not root:
        return None
    folder = Path(root).expanduser() / recipe
    for alias in SPLIT_ALIASES[split]:
        for suffix in LOCAL_SUFFIXES:
            candidate = folder / f"{alias}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def load_split(
    config: RunConfig, split: str, reader: Callable[[str], Iterable[Record]] = iter_records
) -> Split | None:
    """Resolve one split. Order: an explicit file, $BERTCLI_DATA_DIR/<recipe>/<split>.*, the hub."""
    value = getattr(config.data, split)
    if value and looks_like_file(value):
        return Split(list(reader(value)), value)
    local = _data_dir_file(config.name, split)
    if local is not None:
        return Split(list(reader(str(local))), str(local))
    if value and config.data.dataset:
        return _load_hub_split(config, split, value)
    return None


def _load_hub_split(config: RunConfig, split: str, hub_split: str) -> Split:
    from bertcli.hub import hub_reachable

    dataset, subset = config.data.dataset, config.data.subset
    assert dataset is not None
    online = hub_reachable()
    try:
        import datasets

        ds = datasets.load_dataset(dataset, subset, split=hub_split)
    except Exception as exc:
        where = os.environ.get(DATA_DIR_ENV)
        looked = (
            f"no {split} file under {where}/{config.name}/"
            if where
            else f"{DATA_DIR_ENV} is not set"
        )
        reason = "the hub is unreachable" if not online else f"loading failed ({exc})"
        raise DataError(
            f"{config.name}: cannot load {split} split of hub dataset {dataset!r}: "
            f"{reason}, and {looked}",
            f"set {DATA_DIR_ENV} to a folder holding {config.name}/{split}.csv "
            f"(e.g. {DATA_DIR_ENV}=../shared/data) or pass --{split} FILE",
        ) from None
    names = None
    # The configured label column, else the tag columns a tagging reader falls back to.
    candidates = [*config.data.label_column.split("|"), *TAG_COLUMNS]
    column = next((c for c in candidates if c in ds.features), "")
    feature = ds.features.get(column)
    # Tag columns are sequences of class labels: the names sit on the inner feature.
    feature = getattr(feature, "feature", feature)
    if feature is not None and hasattr(feature, "names"):
        names = list(feature.names)
    label = f"{dataset}[{hub_split}]"
    records = [(f"{label}:row {i}", row) for i, row in enumerate(ds)]
    return Split(records, label, names)


# ------------------------------------------------------------------------- examples


def clean_text(text: str, steps: Sequence[str]) -> str:
    if "html" in steps:
        text = re.sub(r"<br\s*/?>", " ", text, flags=re.IGNORECASE)
        text = html.unescape(re.sub(r"</?(?:i|b|em|strong|p|span)>", "", text, flags=re.IGNORECASE))
    if "whitespace" in steps or "html" in steps:
        text = " ".join(text.split())
    return text


def pick_column(
    spec: str | None, record: dict[str, Any], location: str, setting: str
) -> str | None:
    """`spec` may list alternatives (`sentence1|#1 String`): hub and local files differ."""
    if not spec:
        return None
    options = [s for s in spec.split("|") if s]
    for option in options:
        if option in record:
            return option
    require_columns(record, location, options[:1], setting=setting)
    return None


def _text(record: dict[str, Any], column: str, location: str) -> str:
    value = record.get(column)
    if value is None:
        raise DataError(f"{location}: field {column!r} is empty", "every row needs a text")
    return value if isinstance(value, str) else str(value)


def _int_like(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


def infer_label_names(
    raw_labels: Iterable[Any], configured: list[str] | None, declared: list[str] | None
) -> list[str]:
    """Label names: the recipe's, else the hub's ClassLabel names, else from the training data."""
    if configured:
        return list(configured)
    if declared:
        return list(declared)
    values = [v for v in raw_labels if v is not None and v != ""]
    ints = [_int_like(v) for v in values]
    if values and all(i is not None and i >= 0 for i in ints):
        return [str(i) for i in range(max(ints) + 1)]  # type: ignore[type-var]
    return sorted({str(v) for v in values})


def _label_id(value: Any, names: list[str], location: str, column: str) -> int:
    if value is None or value == "":
        raise DataError(
            f"{location}: field {column!r} is empty", "every labelled row needs a label"
        )
    text = str(value).strip()
    if text in names:
        return names.index(text)
    index = _int_like(value)
    if index is not None and 0 <= index < len(names):
        return index
    raise DataError(
        f"{location}: label {value!r} in field {column!r} was not seen in training "
        f"(labels: {', '.join(names)})"
    )


# A label reader: (location, record) -> the example's label.
LabelOf = Callable[[str, dict[str, Any]], Any]


def labelled_records(
    records: Sequence[Record], data: DataConfig, label_of: LabelOf | None
) -> list[Example]:
    """Records as Examples: text (and pair) columns picked on the first record, cleaned; each
    label read by the task's `label_of` (None: unlabelled)."""
    if not records:
        return []
    location, first = records[0]
    text_col = pick_column(data.text_column, first, location, "data.text_column")
    pair_col = pick_column(data.pair_column, first, location, "data.pair_column")
    examples = []
    for location, record in records:
        text = clean_text(_text(record, text_col, location), data.clean)  # type: ignore[arg-type]
        pair = clean_text(_text(record, pair_col, location), data.clean) if pair_col else None
        label = label_of(location, record) if label_of is not None else None
        examples.append(Example(text, pair, label, location))
    return examples


def label_column(records: Sequence[Record], data: DataConfig) -> str:
    """data.label_column as the first record names it (alternatives `a|b`)."""
    location, first = records[0]
    return pick_column(data.label_column, first, location, "data.label_column") or ""


def to_examples(
    records: Sequence[Record],
    data: DataConfig,
    label_names: list[str] | None,
    *,
    with_labels: bool = True,
) -> list[Example]:
    """Map raw records to Examples: pick columns, clean text, map labels to ids."""
    if not records or not with_labels:
        return labelled_records(records, data, None)
    column, names = label_column(records, data), label_names or []

    def label_of(location: str, record: dict[str, Any]) -> int:
        if column not in record:
            require_columns(record, location, [column], setting="data.label_column")
        return _label_id(record[column], names, location, column)

    return labelled_records(records, data, label_of)


def raw_labels(records: Sequence[Record], data: DataConfig) -> list[Any]:
    """The label column's values; a column that mixes ids and names is refused (the ids could
    be meant as the names' positions, or as names of their own: bertcli will not guess)."""
    if not records:
        return []
    location, first = records[0]
    column = pick_column(data.label_column, first, location, "data.label_column")
    values = [record.get(column) for _, record in records]  # type: ignore[arg-type]
    if not data.label_names:
        kinds: dict[bool, str] = {}
        for (where, _), value in zip(records, values, strict=True):
            if value is not None and value != "":
                kinds.setdefault(_int_like(value) is not None, f"{where}: {value!r}")
        if len(kinds) == 2:
            raise DataError(
                f"field {column!r} mixes label ids and label names ({kinds[True]}; {kinds[False]})",
                "use names everywhere, or ids everywhere with data.label_names naming them",
            )
    return values


def check_label_spread(examples: Sequence[Example], names: Sequence[str], origin: str) -> None:
    """A classifier trained on one class learns nothing; say so instead of training it."""
    labels = [getattr(e, "label", None) for e in examples]  # QA examples have answers instead
    used = {label for label in labels if label is not None}
    if labels and labels[0] is not None and len(used) < 2:
        only = names[next(iter(used))] if used else "?"
        raise DataError(
            f"{origin}: every training row has the label {only!r}; a classifier needs at least "
            "2 classes in its training data",
            "check the file (a slice of sorted data?) and data.label_column",
        )


def carve_validation(
    examples: list[Example], fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """A seeded, reproducible hold-out so resumed and multi-process runs agree on it."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_valid = max(1, round(len(examples) * fraction))
    held = set(order[:n_valid])
    train = [e for i, e in enumerate(examples) if i not in held]
    valid = [examples[i] for i in sorted(held)]
    return train, valid
