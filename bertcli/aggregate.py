"""Pure functions that turn per-window model outputs back into per-example outputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

AGGREGATIONS = ("mean", "max")  # fixed poolings; "attention" learns its weights (below)


def pool_windows(
    window_logits: Any, example_index: Sequence[int], n_examples: int, how: str = "mean"
) -> np.ndarray:
    """(windows, classes) logits -> (examples, classes), pooling each example's windows.

    Windows of one example may sit anywhere in the input (length-sorted batches scatter them).
    """
    if how not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {how!r}")
    logits = np.asarray(window_logits, dtype=np.float32)
    index = np.asarray(list(example_index), dtype=np.int64)
    if how == "mean":
        total = np.zeros((n_examples, logits.shape[-1]), dtype=np.float32)
        np.add.at(total, index, logits)
        counts = np.bincount(index, minlength=n_examples).clip(min=1)
        return (total / counts[:, None]).astype(np.float32)
    out = np.full((n_examples, logits.shape[-1]), -np.inf, dtype=np.float32)
    np.maximum.at(out, index, logits)
    return out


def attention_pool(
    window_logits: Any, example_index: Sequence[int], n_examples: int
) -> tuple[np.ndarray, np.ndarray]:
    """(windows, classes + 1) outputs of an attention-pooled model -> (examples, classes) logits
    and each window's weight: a softmax of the last column (the window's attention score) over
    its example's windows, weighting the other columns' logits.

    With a linear classifier the weighted logits equal the logits of the weighted [CLS] vectors,
    so pooling after the head is the same model as pooling the vectors and cheaper to export.
    """
    outputs = np.asarray(window_logits, dtype=np.float64)
    logits, scores = outputs[:, :-1], outputs[:, -1]
    index = np.asarray(list(example_index), dtype=np.int64)
    top = np.full(n_examples, -np.inf)
    np.maximum.at(top, index, scores)
    exp = np.exp(scores - top[index])
    total = np.zeros(n_examples)
    np.add.at(total, index, exp)
    weights = exp / total[index]
    pooled = np.zeros((n_examples, logits.shape[-1]))
    np.add.at(pooled, index, weights[:, None] * logits)
    return pooled.astype(np.float32), weights.astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(-1, keepdims=True)


def word_scores(
    window_logits: Sequence[np.ndarray],
    owned: Sequence[Sequence[tuple[int, int]]],
    example_index: Sequence[int],
    n_examples: int,
) -> list[np.ndarray]:
    """Per-window (positions, tags) logits -> per-example (words, tags), each word read from the
    one window that owns it."""
    counts = [0] * n_examples
    for window, pairs in enumerate(owned):
        counts[example_index[window]] += len(pairs)
    tags = window_logits[0].shape[-1] if len(window_logits) else 0
    out = [np.zeros((n, tags), dtype=np.float32) for n in counts]
    for window, pairs in enumerate(owned):
        if pairs:
            words, positions = np.asarray(pairs, dtype=np.int64).T
            out[example_index[window]][words] = window_logits[window][positions]
    return out


def decode_spans(
    scores: np.ndarray, positions: Sequence[int], owned: Sequence[int]
) -> list[tuple[int, int, int, float]]:
    """Entities in one window's (length, length, types) span scores: (first word, last word,
    type, probability) for every pair of its words (first-piece `positions`) scored above 0
    whose first word the window owns (`owned`: word numbers within the window)."""
    at = np.asarray(positions, dtype=np.int64)
    words = np.asarray(scores)[np.ix_(at, at)]  # (words, words, types)
    keep = words > 0
    keep &= np.triu(np.ones(keep.shape[:2], dtype=bool))[..., None]
    own = np.zeros(len(at), dtype=bool)
    own[list(owned)] = True
    keep &= own[:, None, None]
    firsts, lasts, kinds = np.nonzero(keep)
    probs = 1.0 / (1.0 + np.exp(-words[firsts, lasts, kinds].astype(np.float64)))
    return [
        (int(a), int(b), int(k), round(float(p), 6))
        for a, b, k, p in zip(firsts, lasts, kinds, probs, strict=True)
    ]
