"""Windows over words for token tagging: word pieces, first-sub-word labels, overlapping windows.

A sentence whose pieces fit one window gets one window. A longer one is cut at word boundaries
into windows of at most `max_length` tokens, consecutive windows sharing about `stride` tokens;
every word is *owned* by the window in which it has the most context on its shorter side (the
"max context" rule of BERT's SQuAD code), and its prediction is read from that window only. A word
with more pieces than a window holds keeps its first pieces: its label sits on the first one
anyway. So no word is ever dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bertcli.data.windows import Windows, _template, max_context_owners
from bertcli.modeling.traits import tokenizer_traits

IGNORE = -100  # label of positions the loss skips (torch's cross_entropy ignore_index default)


def word_pieces(tokenizer: Any, words: Sequence[str], unk_id: int) -> list[list[int]]:
    """Piece ids of each word, tokenized alone; a word that yields no piece becomes [UNK].

    Byte-level BPE marks a word's leading space inside its first piece (`Ġ`): each word gets
    that space here, as `add_prefix_space=True` does, so it reads as it would mid-sentence.
    """
    if not words:
        return []
    prefix = tokenizer_traits(tokenizer).word_prefix
    pieces = tokenizer([prefix + w for w in words], add_special_tokens=False)["input_ids"]
    # Control characters and some zero-width marks normalise to nothing; the word must still
    # occupy a position, or its tag would vanish from the output.
    return [p if p else [unk_id] for p in pieces]


def spans(lengths: Sequence[int], budget: int, stride: int) -> list[tuple[int, int]]:
    """[start, end) word ranges of the windows over words with `lengths` pieces each."""
    n = len(lengths)
    if sum(lengths) <= budget:
        return [(0, n)]
    out = []
    start = 0
    while True:
        end, used = start, 0
        while end < n and used + lengths[end] <= budget:
            used += lengths[end]
            end += 1
        end = max(end, start + 1)  # an over-long word still gets a window of its own
        out.append((start, end))
        if end >= n:
            return out
        # Step back over words until about `stride` tokens are shared, always moving forward.
        nxt, shared = end, 0
        while nxt - 1 > start and shared + lengths[nxt - 1] <= stride:
            nxt -= 1
            shared += lengths[nxt]
        start = nxt


def make_word_windows(
    tokenizer: Any,
    words: Sequence[Sequence[str]],
    tags: Sequence[Sequence[int]] | None = None,
    *,
    max_length: int,
    stride: int,
    continuation: Sequence[int] | None = None,
) -> Windows:
    """Windows for tagged (or untagged) word sequences.

    With `tags`, `labels[w][p]` is the tag of the word whose first piece sits at position p, and
    IGNORE elsewhere; `continuation[tag]` (B-X -> I-X) labels the other pieces too, if given.
    """
    template = _template(tokenizer)
    budget = max_length - template.specials(False)
    unk = getattr(tokenizer, "unk_token_id", None) or 0
    flat = [w for sentence in words for w in sentence]
    pieces_flat = word_pieces(tokenizer, flat, unk)
    windows = Windows(labels=[] if tags is not None else None, owned=[], words=[])
    offset = 0
    prefix = len(template.single_prefix)
    for example, sentence in enumerate(words):
        pieces = [p[:budget] for p in pieces_flat[offset : offset + len(sentence)]]
        offset += len(sentence)
        lengths = [len(p) for p in pieces]
        ranges = spans(lengths, budget, stride)
        owner = max_context_owners(lengths, ranges)
        for w, (start, end) in enumerate(ranges):
            ids: list[int] = []
            positions = []
            for word in range(start, end):
                positions.append(prefix + len(ids))
                ids += pieces[word]
            window, types = template.build(ids, None)
            windows.input_ids.append(window)
            windows.token_type_ids.append(types)
            windows.example_index.append(example)
            windows.owned.append(  # type: ignore[union-attr]
                [(word, positions[word - start]) for word in range(start, end) if owner[word] == w]
            )
            windows.words.append((start, positions))  # type: ignore[union-attr]
            if tags is not None and windows.labels is not None:
                labels = [IGNORE] * len(window)
                for word in range(start, end):
                    tag = tags[example][word]
                    first = positions[word - start]
                    labels[first] = tag
                    if continuation is not None:
                        for p in range(first + 1, first + len(pieces[word])):
                            labels[p] = continuation[tag]
                windows.labels.append(labels)
    return windows
