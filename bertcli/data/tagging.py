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

# The documented pre-tokenizer for raw text: dotted abbreviations (U.S.), runs of letters/digits
# joined by - . , / (1996-08-22, 3.5, 1,000), a clitic ('s), or any other single non-space
# character (punctuation). It matches CoNLL-2003's tokenisation on ordinary news text.
WORD = re.compile(r"(?:[^\W\d_]\.){2,}|\w+(?:[-.,/]\w+)*|'\w+|\S")

# Files that hold one record per sentence; anything else (.txt, .conll, .tsv, ...) is CoNLL columns.
_RECORD_SUFFIXES = (".jsonl", ".json", ".parquet")


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
            "|".join([data.label_column, *TAG_COLUMNS]),
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


def _sentences(
    records: Sequence[Record], data: DataConfig, declared: list[str] | None, with_labels: bool
) -> list[Sentence]:
    token_col, tag_col = _columns(data, records, with_labels)
    sentences = []
    for location, record in records:
        tokens = record.get(token_col)
        if not isinstance(tokens, list) or not tokens:
            raise DataError(f"{location}: field {token_col!r} must be a non-empty list of tokens")
        tags: list[str] = []
        if with_labels:
            tags = _string_tags(record.get(tag_col), location, tag_col, declared)
            if len(tags) != len(tokens):
                raise DataError(
                    f"{location}: {len(tokens)} tokens but {len(tags)} tags in {tag_col!r}",
                    "every token needs exactly one tag",
                )
        sentences.append(Sentence([str(t) for t in tokens], tags, location))
    return sentences


def tag_names(records: Sequence[Record], data: DataConfig, declared: list[str] | None) -> list[str]:
    """The IOB2 label set of the training data: O first, then B-/I- per type."""
    sentences = _sentences(records, data, data.label_names or declared, True)
    scheme = detect_scheme([s.tags for s in sentences], [s.location for s in sentences])
    normalised = [
        Sentence(s.tokens, to_iob2(s.tags, scheme, location=s.location), s.location)
        for s in sentences
    ]
    return label_set(normalised)


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
    sentences = _sentences(records, data, data.label_names or declared, with_labels)
    scheme = (
        detect_scheme([s.tags for s in sentences], [s.location for s in sentences])
        if with_labels
        else "IOB2"
    )
    examples = []
    for sentence in sentences:
        text, spans = join_words(sentence.tokens)
        tags = None
        if with_labels:
            tags = []
            iob2 = to_iob2(sentence.tags, scheme, location=sentence.location)
            for position, tag in enumerate(iob2, start=1):
                if tag not in index:
                    raise DataError(
                        f"{sentence.location}, token {position}: tag {tag!r} was not seen in "
                        f"training (labels: {', '.join(label_names)})"
                    )
                tags.append(index[tag])
        examples.append(
            Example(text, location=sentence.location, words=sentence.tokens, spans=spans, tags=tags)
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
