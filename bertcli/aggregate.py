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
