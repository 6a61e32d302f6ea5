"""Tagging examples: tagged sentences from CoNLL, JSONL or the hub; raw text split into words.

Tags are normalised to IOB2 whatever scheme the training data uses (IOB1, IOB2/BIO, BIOES), so the
label set, the metrics and the CRF's BIO constraints all see one scheme.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bertcli.config import DataConfig
from bertcli.data.conll import Sentence, detect_scheme, iter_conll, label_set, to_iob2
from bertcli.data.load import TAG_COLUMNS, Example, Record, pick_column
from bertcli.data.readers import iter_records
from bertcli.errors import DataError
from bertcli.metrics.entities import Entity, get_entities

# The documented pre-tokenizer for raw text: dotted abbreviations (U.S.), runs of letters/digits
# joined by - . , / (1996-08-22, 3.5, 1,000), a clitic ('s), or any other single non-space
# character (punctuation). It matches CoNLL-2003's tokenisation on ordinary news text.
WORD = re.compile(r"(?:[^\W\d_]\.){2,}|\w+(?:[-.,/]\w+)*|'\w+|\S")

# Files that hold one record per sentence; anything else (.txt, .conll, .tsv, ...) is CoNLL columns.
_RECORD_SUFFIXES = (".jsonl", ".json", ".parquet")
# A record's entities as [[first word, last word, type], ...] (0-based, last word inclusive),
# instead of tags: spans may nest or overlap.
SPAN_COLUMN = "spans"


def split_words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Words of a raw text line and their (start, end) character offsets."""
    matches = list(WORD.finditer(text))
    return [m.group() for m in matches], [m.span() for m in matches]


def join_words(words: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """Pre-split tokens joined by single spaces, with each token's offsets in that string."""
    spans, pos = [], 0
    for word in words:
        spans.append((pos, pos + len(word)))
        pos += len(word) + 1
    return " ".join(words), spans


def iter_tagging_records(path: str | Path) -> Iterator[Record]:
    """Records {"tokens": [...], "tags": [...]} from a CoNLL column file, or any JSON-like file."""
    if Path(path).suffix.lower() in _RECORD_SUFFIXES:
        yield from iter_records(path)
        return
    for sentence in iter_conll(path):
        yield sentence.location, {"tokens": sentence.tokens, "tags": sentence.tags}


def _columns(data: DataConfig, records: Sequence[Record], with_labels: bool) -> tuple[str, str]:
    """The configured columns, falling back to the names CoNLL files and hub datasets use."""
    location, first = records[0]
    tokens = pick_column(f"{data.text_column}|tokens", first, location, "data.text_column")
    tags = (
        pick_column(
            "|".join([data.label_column, *TAG_COLUMNS, SPAN_COLUMN]),
            first,
            location,
            "data.label_column",
        )
        if with_labels
        else ""
    )
    return tokens or "tokens", tags or ""


def _string_tags(value: Any, location: str, column: str, declared: list[str] | None) -> list[str]:
    if not isinstance(value, list):
        raise DataError(f"{location}: field {column!r} must be a list of tags, got {value!r}")
    out = []
    for tag in value:
        if isinstance(tag, int) and not isinstance(tag, bool):
            if not declared or not 0 <= tag < len(declared):
                raise DataError(
                    f"{location}: field {column!r} holds tag id {tag} but no tag names are known",
                    "write tag names (B-PER), or set data.label_names to the names of ids 0..N-1",
                )
            out.append(declared[tag])
        else:
            out.append(str(tag))
    return out


def _entity_spans(value: Any, n_words: int, location: str) -> list[Entity]:
    """A record's `spans` as (type, first, last), checked against its words."""
    if not isinstance(value, list):
        raise DataError(f"{location}: field {SPAN_COLUMN!r} must be a list of [first, last, type]")
    entities = []
    for number, span in enumerate(value, start=1):
        ok = isinstance(span, list | tuple) and len(span) == 3
        first, last, kind = span if ok else (None, None, None)
        if not (
            ok
            and all(isinstance(i, int) and not isinstance(i, bool) for i in (first, last))
            and 0 <= first <= last < n_words  # type: ignore[operator]
            and isinstance(kind, str)
            and kind.strip()
        ):
            raise DataError(
                f"{location}: span {number} of {SPAN_COLUMN!r} is {span!r}",
                f"write [first word, last word, type]: 0-based, last included, below {n_words}",
            )
        entities.append((kind.strip(), int(first), int(last)))  # type: ignore[union-attr]
    return sorted(set(entities), key=lambda e: (e[1], -e[2], e[0]))


def spans_to_tags(entities: Sequence[Entity], n_words: int) -> list[str]:
    """IOB2 tags of the entities that do not overlap an earlier, longer one."""
    tags = ["O"] * n_words
    for kind, first, last in sorted(entities, key=lambda e: (-(e[2] - e[1]), e[1])):
        if all(tag == "O" for tag in tags[first : last + 1]):
            tags[first : last + 1] = [f"B-{kind}"] + [f"I-{kind}"] * (last - first)
    return tags


def _sentences(
    records: Sequence[Record], data: DataConfig, declared: list[str] | None, with_labels: bool
) -> list[tuple[Sentence, list[Entity] | None]]:
    """Sentences with their tags, and their given spans when the file has spans, not tags."""
    token_col, tag_col = _columns(data, records, with_labels)
    sentences = []
    for location, record in records:
        tokens = record.get(token_col)
        if not isinstance(tokens, list) or not tokens:
            raise DataError(f"{location}: field {token_col!r} must be a non-empty list of tokens")
        tags: list[str] = []
        entities = None
        if with_labels and tag_col == SPAN_COLUMN:
            entities = _entity_spans(record.get(tag_col), len(tokens), location)
            tags = spans_to_tags(entities, len(tokens))
        elif with_labels:
            tags = _string_tags(record.get(tag_col), location, tag_col, declared)
            if len(tags) != len(tokens):
                raise DataError(
                    f"{location}: {len(tokens)} tokens but {len(tags)} tags in {tag_col!r}",
                    "every token needs exactly one tag",
                )
        sentences.append((Sentence([str(t) for t in tokens], tags, location), entities))
    return sentences


def tag_names(records: Sequence[Record], data: DataConfig, declared: list[str] | None) -> list[str]:
    """The IOB2 label set of the training data: O first, then B-/I- per type (span files:
    every type of a span, nested ones included)."""
    pairs = _sentences(records, data, data.label_names or declared, True)
    sentences = [s for s, _ in pairs]
    scheme = detect_scheme([s.tags for s in sentences], [s.location for s in sentences])
    normalised = [
        Sentence(s.tokens, to_iob2(s.tags, scheme, location=s.location), s.location)
        for s in sentences
    ]
    kinds = {name[2:] for name in label_set(normalised) if name != "O"}
    kinds |= {kind for _, entities in pairs for kind, _, _ in entities or []}
    return ["O", *(f"{p}-{kind}" for kind in sorted(kinds) for p in "BI")]


def to_tagged_examples(
    records: Sequence[Record],
    data: DataConfig,
    label_names: list[str],
    *,
    declared: list[str] | None = None,
    with_labels: bool = True,
) -> list[Example]:
    """Examples whose `words` are the tokens (joined by spaces as `text`) and `tags` label ids.

    Each file's tag scheme is detected on its own: a test file may use IOB1 where train used IOB2.
    """
    if not records:
        return []
    index = {name: i for i, name in enumerate(label_names)}
    pairs = _sentences(records, data, data.label_names or declared, with_labels)
    scheme = (
        detect_scheme([s.tags for s, _ in pairs], [s.location for s, _ in pairs])
        if with_labels
        else "IOB2"
    )
    examples = []
    for sentence, given in pairs:
        text, spans = join_words(sentence.tokens)
        tags = entities = None
        if with_labels:
            tags = []
            iob2 = to_iob2(sentence.tags, scheme, location=sentence.location)
            entities = given if given is not None else get_entities(iob2)
            for kind, _, _ in entities:
                if f"B-{kind}" not in index:
                    raise DataError(
                        f"{sentence.location}: entity type {kind!r} was not seen in training "
                        f"(labels: {', '.join(label_names)})"
                    )
            for position, tag in enumerate(iob2, start=1):
                if tag not in index:
                    raise DataError(
                        f"{sentence.location}, token {position}: tag {tag!r} was not seen in "
                        f"training (labels: {', '.join(label_names)})"
                    )
                tags.append(index[tag])
        examples.append(
            Example(
                text,
                location=sentence.location,
                words=sentence.tokens,
                spans=spans,
                tags=tags,
                entities=entities,
            )
        )
    return examples


def text_example(text: str, location: str = "") -> Example:
    """An unlabelled example from a raw text line, split by the documented pre-tokenizer."""
    words, spans = split_words(text)
    return Example(text, location=location, words=words, spans=spans)


def token_example(tokens: Sequence[Any], location: str, column: str) -> Example:
    """An unlabelled example from pre-split tokens; offsets refer to the tokens joined by spaces."""
    if not isinstance(tokens, list) or not all(isinstance(t, str) and t for t in tokens):
        raise DataError(f"{location}: field {column!r} must be a list of non-empty strings")
    text, spans = join_words(tokens)
    return Example(text, location=location, words=list(tokens), spans=spans)
