"""Pure functions that turn per-window model outputs back into per-example outputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

AGGREGATIONS = ("mean", "max")


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
