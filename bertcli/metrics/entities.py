"""Entities of an IOB2 tag sequence, by seqeval's strict rules or conlleval's; light, so
prediction can use it."""

from __future__ import annotations

from collections.abc import Sequence

from bertcli.errors import DataError

Entity = tuple[str, int, int]

_TAG_HINT = "convert the tags to IOB2 first with bertcli.data.conll.to_iob2"


def get_entities(tags: Sequence[str], lenient: bool = False) -> list[Entity]:
    """Entities of one IOB2 sentence as (type, start, end inclusive), in order of start.

    Strict (seqeval's strict mode): only B-X opens an entity. Lenient (conlleval.pl, the CoNLL
    papers, seqeval's default): an I-X after O or after another type opens one too."""
    entities = []
    kind: str | None = None  # type of the entity being extended, None outside one
    start = 0
    for position, tag in enumerate(tags):
        prefix, tag_kind = _split(tag, position)
        if prefix == "I" and tag_kind == kind:
            continue
        if kind is not None:
            entities.append((kind, start, position - 1))
        # Strict mode: only B- opens an entity; an I- that continues nothing is dropped.
        opens = prefix == "B" or (lenient and prefix == "I")
        kind, start = (tag_kind, position) if opens else (None, position)
    if kind is not None:
        entities.append((kind, start, len(tags) - 1))
    return entities


def _split(tag: str, position: int) -> tuple[str, str | None]:
    if tag == "O":
        return "O", None
    if _is_iob2(tag):
        return tag[0], tag[2:]
    raise DataError(f"token {position + 1}: {tag!r} is not an IOB2 tag", hint=_TAG_HINT)


def _is_iob2(tag: str) -> bool:
    return tag == "O" or (len(tag) > 2 and tag[1] == "-" and tag[0] in "BI")
