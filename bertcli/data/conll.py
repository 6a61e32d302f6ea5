"""Token-tagging inputs: CoNLL column files, token JSONL, and IOB1/BIOES -> IOB2 tag schemes."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bertcli.data.readers import _decode, check_file, iter_records, require_columns
from bertcli.errors import ConfigError, DataError

Scheme = Literal["IOB1", "IOB2", "BIOES"]
SCHEMES: tuple[Scheme, ...] = ("IOB1", "IOB2", "BIOES")

_DOCSTART = "-DOCSTART-"
# Only ASCII blanks separate columns: str.split() would also split on U+3000 or NBSP,
# which are real tokens in Chinese and web text and would shift every column after them.
_COLUMN_SEP = re.compile(r"[ \t]+")
_PREFIXES: dict[str, str] = {"IOB1": "BI", "IOB2": "BI", "BIOES": "BIES"}
_TAG_HINT = "a tag is O or PREFIX-TYPE such as B-PER; prefixes are B and I, plus E and S in BIOES"


@dataclass(frozen=True)
class Sentence:
    """One tagged sentence; `location` is "file:line N" of its first token."""

    tokens: list[str]
    tags: list[str]
    location: str


def iter_conll(
    path: str | Path, *, token_column: int = 0, tag_column: int = -1
) -> Iterator[Sentence]:
    """Return a lazy iterator of sentences from a CoNLL column file, reading line by line.

    Columns are separated by spaces or tabs; blank lines end sentences; `-DOCSTART-` lines
    are document boundaries and yield nothing. Path problems raise here, at call time;
    problems inside the file raise when the offending line is reached.
    """
    name = str(path)
    if token_column == tag_column:
        raise ConfigError(f"token and tag column are both {token_column}: they must differ")
    check_file(name, "CoNLL", "expected one 'token ... tag' line per token")
    return _conll_sentences(name, token_column, tag_column)


def read_conll(path: str | Path, *, token_column: int = 0, tag_column: int = -1) -> list[Sentence]:
    """Read every sentence of a CoNLL column file; a file with no sentences is an error."""
    sentences = list(iter_conll(path, token_column=token_column, tag_column=tag_column))
    if not sentences:
        raise DataError(
            f"{path} has no sentences: expected one 'token ... tag' line per token",
            hint="separate sentences with blank lines",
        )
    return sentences


def read_token_jsonl(path: str | Path) -> list[Sentence]:
    """Read JSONL lines of {"tokens": [...], "tags": [...]} with equally long string lists."""
    sentences = []
    for location, record in iter_records(path, "jsonl"):
        require_columns(record, location, ("tokens", "tags"))
        tokens = _string_list(record["tokens"], "tokens", location)
        tags = _string_list(record["tags"], "tags", location)
        if len(tokens) != len(tags):
            raise DataError(
                f"{location}: {len(tokens)} tokens but {len(tags)} tags",
                hint="every token needs exactly one tag",
            )
        if not tokens:
            raise DataError(f"{location}: empty 'tokens' list", hint="drop empty sentences")
        if any(not token.strip() for token in tokens):
            raise DataError(f"{location}: empty or blank token in 'tokens'")
        sentences.append(Sentence(tokens, tags, location))
    if not sentences:
        raise DataError(f"{path} has no records: expected one JSON object per line")
    return sentences


def detect_scheme(
    tag_sequences: Iterable[Sequence[str]], locations: Sequence[str] | None = None
) -> Scheme:
    """Name the tag scheme of gold data: BIOES if E-/S- occur, IOB1 if an I- starts an entity.

    Data with neither is IOB2; IOB1 data in which no I- starts an entity reads the same
    as IOB2, so that answer is never wrong.
    """
    scheme: Scheme = "IOB2"
    for index, tags in enumerate(tag_sequences, start=1):
        previous = "O"
        for position, tag in enumerate(tags, start=1):
            where = (
                _at(locations[index - 1], position)
                if locations
                else f"sentence {index}, token {position}"
            )
            prefix, kind = _split_tag(tag, "BIES", where)
            if prefix in "ES":
                return "BIOES"
            if prefix == "I" and not _continues(previous, kind):
                scheme = "IOB1"
            previous = tag
    return scheme


def to_iob2(tags: Sequence[str], scheme: str, *, location: str | None = None) -> list[str]:
    """Rewrite one sentence's tags into IOB2; `location` prefixes error messages.

    IOB1: an I-X that does not continue an X entity starts one, so it becomes B-X (a B-X
    already marks a new entity after an adjacent X). BIOES: S-X -> B-X and E-X -> I-X.
    IOB2 tags are checked and returned unchanged.
    """
    if scheme not in _PREFIXES:
        raise ConfigError(f"unknown tag scheme '{scheme}' (known: {', '.join(SCHEMES)})")
    hint = "the tags use another scheme: find it with detect_scheme"
    out = []
    previous = "O"
    for position, tag in enumerate(tags, start=1):
        prefix, kind = _split_tag(tag, _PREFIXES[scheme], _at(location, position), scheme, hint)
        if prefix == "S" or (scheme == "IOB1" and prefix == "I" and not _continues(previous, kind)):
            out.append(f"B-{kind}")
        elif prefix == "E":
            out.append(f"I-{kind}")
        else:
            out.append(tag)
        previous = tag
    return out


def label_set(sentences: Iterable[Sentence]) -> list[str]:
    """IOB2 labels in a fixed order: O, then B-X, I-X per type sorted by name.

    The order depends only on which types occur, so the same data always gets the same ids.
    """
    kinds = set()
    for sentence in sentences:
        for position, tag in enumerate(sentence.tags, start=1):
            where = _at(sentence.location, position)
            kind = _split_tag(tag, "BI", where, "IOB2", hint="convert with to_iob2 first")[1]
            if kind:
                kinds.add(kind)
    return ["O", *(f"{p}-{kind}" for kind in sorted(kinds) for p in "BI")]


def _conll_sentences(name: str, token_column: int, tag_column: int) -> Iterator[Sentence]:
    needed = _columns_needed(token_column, tag_column)
    tokens: list[str] = []
    tags: list[str] = []
    start = 0
    for lineno, line in _lines(name):
        fields = _COLUMN_SEP.split(line.strip(" \t\r\n"))
        if fields == [""] or fields[0] == _DOCSTART:
            if tokens:
                yield Sentence(tokens, tags, f"{name}:line {start}")
            tokens, tags = [], []
            continue
        if len(fields) < needed:
            raise DataError(
                f"{name}:line {lineno}: expected at least {needed} columns, found {len(fields)}",
                hint="each line is 'token ... tag' separated by spaces or tabs",
            )
        token = fields[token_column]
        if not token.strip():
            raise DataError(f"{name}:line {lineno}: empty token in column {token_column}")
        if not tokens:
            start = lineno
        tokens.append(token)
        tags.append(fields[tag_column])
    if tokens:
        yield Sentence(tokens, tags, f"{name}:line {start}")


def _columns_needed(token_column: int, tag_column: int) -> int:
    """Fewest columns on which both indexes exist and name different columns."""
    needed = max(2, *(c + 1 if c >= 0 else -c for c in (token_column, tag_column)))
    # 1 and -1 coincide on 2 columns; one more column always separates them.
    low, high = sorted((token_column, tag_column))
    return needed + 1 if low < 0 <= high and needed + low == high else needed


def _lines(name: str) -> Iterator[tuple[int, str]]:
    with open(name, "rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            yield lineno, _decode(raw, name, lineno)


def _split_tag(
    tag: str, prefixes: str, where: str, scheme: str | None = None, hint: str = _TAG_HINT
) -> tuple[str, str]:
    """Split 'B-PER' into ('B', 'PER') and 'O' into ('O', ''); anything else is a DataError."""
    if tag == "O":
        return "O", ""
    shaped = isinstance(tag, str) and len(tag) > 2 and tag[1] == "-"
    if shaped and tag[0] in prefixes:
        return tag[0], tag[2:]
    if shaped and scheme and tag[0] in "BIES":
        raise DataError(f"{where}: tag {tag!r} is not valid {scheme}", hint=hint)
    raise DataError(f"{where}: unknown tag {tag!r}", hint=_TAG_HINT)


def _at(location: str | None, position: int) -> str:
    return f"{location}, token {position}" if location else f"token {position}"


def _continues(previous: str, kind: str) -> bool:
    """Whether an I-`kind` after `previous` extends the same entity."""
    return len(previous) > 2 and previous[0] in "BI" and previous[2:] == kind


def _string_list(value: object, key: str, location: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise DataError(
            f"{location}: '{key}' must be a list of strings",
            hint="write tag names such as B-PER, not label ids" if key == "tags" else None,
        )
    return value
