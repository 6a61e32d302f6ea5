"""Torch-free batching for inference: length-sorted batch orders and dynamic padding in numpy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bertcli.data.windows import Windows
from bertcli.data.word_windows import IGNORE


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Batches of indices sorted by length, so each batch pads as little as possible."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def pad_windows(
    windows: Windows,
    indices: Sequence[int],
    pad_id: int,
    multiple: int = 1,
    limit: int | None = None,
) -> dict[str, np.ndarray]:
    """Pad the given windows to the longest of them, rounded up to a multiple of `multiple` but
    not past `limit` (the run's max length): (batch, seq) int64 arrays."""
    width = padded_width(max(len(windows.input_ids[i]) for i in indices), multiple, limit)
    input_ids = np.full((len(indices), width), pad_id, dtype=np.int64)
    token_type_ids = np.zeros((len(indices), width), dtype=np.int64)
    attention_mask = np.zeros((len(indices), width), dtype=np.int64)
    for row, i in enumerate(indices):
        n = len(windows.input_ids[i])
        input_ids[row, :n] = windows.input_ids[i]
        token_type_ids[row, :n] = windows.token_type_ids[i]
        attention_mask[row, :n] = 1
    return {
        "input_ids": input_ids,
        "token_type_ids": token_type_ids,
        "attention_mask": attention_mask,
    }


def padded_width(longest: int, multiple: int = 1, limit: int | None = None) -> int:
    rounded = -(-longest // multiple) * multiple
    return rounded if limit is None else max(longest, min(rounded, limit))


def pad_labels(windows: Windows, indices: Sequence[int], width: int) -> np.ndarray | None:
    """The windows' labels as int64: (batch,), or (batch, width) padded with IGNORE when there
    is one label per position; None for unlabelled windows."""
    if windows.labels is None:
        return None
    labels = [windows.labels[i] for i in indices]
    if labels and isinstance(labels[0], list):  # one label per position: pad like the inputs
        labels = [row + [IGNORE] * (width - len(row)) for row in labels]
    # Regression targets and multi-label rows (one 0/1 per label) are floats.
    floats = np.asarray(labels[0]).dtype.kind == "f"
    return np.asarray(labels, dtype=np.float32 if floats else np.int64)


class WindowOutputs:
    """Batch outputs put back in window order, whatever order the batches ran in.

    (batch, labels) outputs become one (windows, labels) array; token-level (batch, seq, labels)
    outputs become one (window length, labels) array per window, padding dropped (span scores,
    (batch, seq, seq, types): one (length, length, types) array per window).
    """

    def __init__(self, windows: Windows) -> None:
        self.lengths = windows.lengths()
        self.rows: list[np.ndarray | None] = [None] * len(windows)
        self.token_level = False

    def add(self, logits: np.ndarray, indices: Sequence[int]) -> None:
        # (batch, seq, labels), or (batch, seq, seq, labels) for span scores: every sequence
        # axis is cut to the window's own length.
        self.token_level = logits.ndim >= 3
        for row, i in zip(logits, indices, strict=True):
            cut = (slice(0, self.lengths[i]),) * (logits.ndim - 2)
            self.rows[i] = row[cut] if self.token_level else row

    def result(self) -> np.ndarray | list[np.ndarray]:
        if not self.rows:
            return np.empty((0, 0), dtype=np.float32)
        rows = [np.asarray(r, dtype=np.float32) for r in self.rows]
        return rows if self.token_level else np.stack(rows)
