"""Name what each attention head does: the six patterns of "Deconstructing BERT", or "broad".

Pure numpy over one (layers, heads, seq, seq) attention array per input. A pattern is a 0/1 mask
over (query, key) pairs; a head's score for it is the share of attention that lands inside the
mask, averaged over the queries the pattern applies to (a query has no "next token" at the end of
a window and no sub-word partner in a one-piece word) and then over the inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PATTERNS = {
    "next": "next token",
    "previous": "previous token",
    "same": "same/related words",
    "other_sentence": "same word in the other sentence",
    "subword": "words that predict this one (pieces of the same word)",
    "delimiter": "delimiters ([CLS]/[SEP])",
}
BROAD = "broad"
# Below this share no pattern explains the head: it spreads its attention ("broad").
MIN_SCORE = 0.5
# A pattern that applies to fewer queries than this (over all inputs) says nothing yet.
MIN_QUERIES = 2


@dataclass
class Tokens:
    """What the masks need to know about one input's tokens (one window of it)."""

    tokens: list[str]  # as the tokenizer spells them: "straw", "##berries", "[SEP]"
    words: list[int | None]  # word index per token, None for special tokens
    segments: list[int | None]  # 0 / 1 for the text and its pair, None for special tokens

    @property
    def special(self) -> np.ndarray:
        return np.array([w is None for w in self.words])


@dataclass
class HeadPattern:
    layer: int
    head: int
    pattern: str
    score: float
    scores: dict[str, float]


def normalize(token: str) -> str:
    """A token's word form, without WordPiece, byte-level BPE or SentencePiece markers."""
    return token.removeprefix("##").lstrip("Ġ▁ ").lower()


def pattern_masks(tokens: Tokens) -> dict[str, np.ndarray]:
    """(seq, seq) boolean masks, query by key, one per pattern; special-token queries stay empty
    (they say where the delimiters look, not what the text does)."""
    n = len(tokens.tokens)
    special = tokens.special
    text = ~special
    forms = np.array([normalize(t) for t in tokens.tokens], dtype=object)
    words = np.array([-1 if w is None else w for w in tokens.words])
    segments = np.array([-1 if s is None else s for s in tokens.segments])
    index = np.arange(n)
    same_form = forms[:, None] == forms[None, :]
    same_segment = segments[:, None] == segments[None, :]
    same_word = (words[:, None] == words[None, :]) & same_segment
    queries = text[:, None]
    keys = text[None, :]
    masks = {
        "next": index[None, :] == index[:, None] + 1,
        "previous": index[None, :] == index[:, None] - 1,
        "same": same_form & same_segment,
        "other_sentence": same_form & ~same_segment,
        "subword": same_word & (index[:, None] != index[None, :]),
        "delimiter": np.broadcast_to(special[None, :], (n, n)).copy(),
    }
    # Token patterns are about text tokens: a step onto [SEP] is the delimiter pattern's.
    for name in ("next", "previous", "same", "other_sentence", "subword"):
        masks[name] &= keys
    return {name: mask & queries for name, mask in masks.items()}


def pattern_mass(attention: np.ndarray, tokens: Tokens) -> dict[str, tuple[np.ndarray, int]]:
    """Per pattern: the summed in-mask attention of the applicable queries, (layers, heads), and
    how many queries applied. `attention` is (layers, heads, seq, seq), rows summing to 1."""
    out = {}
    for name, mask in pattern_masks(tokens).items():
        applies = mask.any(axis=1)  # (seq,)
        inside = (attention * mask).sum(axis=-1)  # (layers, heads, seq)
        out[name] = (inside[..., applies].sum(axis=-1), int(applies.sum()))
    return out


def spread(attention: np.ndarray, tokens: Tokens) -> np.ndarray:
    """Mean normalised entropy of the text tokens' attention, (layers, heads): 1.0 is uniform."""
    rows = attention[..., ~tokens.special, :]
    n = attention.shape[-1]
    entropy = -(rows * np.log(np.clip(rows, 1e-12, None))).sum(axis=-1)
    return entropy.mean(axis=-1) / max(np.log(n), 1e-12)


def classify(samples: Sequence[tuple[np.ndarray, Tokens]]) -> list[HeadPattern]:
    """One HeadPattern per layer x head, scores averaged over the inputs' applicable queries."""
    if not samples:
        return []
    layers, heads = samples[0][0].shape[:2]
    totals = {name: np.zeros((layers, heads)) for name in PATTERNS}
    counts = dict.fromkeys(PATTERNS, 0)
    broadness = np.zeros((layers, heads))
    for attention, tokens in samples:
        for name, (mass, count) in pattern_mass(attention, tokens).items():
            totals[name] += mass
            counts[name] += count
        broadness += spread(attention, tokens)
    scores = {
        name: totals[name] / counts[name] if counts[name] >= MIN_QUERIES else None
        for name in PATTERNS
    }
    broadness /= len(samples)
    result = []
    for layer in range(layers):
        for head in range(heads):
            mine = {n: float(s[layer, head]) for n, s in scores.items() if s is not None}
            best = max(mine, key=mine.get) if mine else BROAD  # type: ignore[arg-type]
            score = mine.get(best, 0.0)
            if score < MIN_SCORE:
                best, score = BROAD, float(broadness[layer, head])
            rounded = {n: round(v, 4) for n, v in mine.items()}
            result.append(HeadPattern(layer, head, best, round(score, 4), rounded))
    return result
