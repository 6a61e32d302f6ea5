"""Pure functions that turn per-window model outputs back into per-example outputs."""

from __future__ import annotations

from collections.abc import Sequence

import torch

AGGREGATIONS = ("mean", "max")


def pool_windows(
    window_logits: torch.Tensor, example_index: Sequence[int], n_examples: int, how: str = "mean"
) -> torch.Tensor:
    """(windows, classes) logits -> (examples, classes), pooling each example's windows."""
    if how not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {how!r}")
    index = torch.as_tensor(list(example_index), dtype=torch.long)
    classes = window_logits.shape[-1]
    logits = window_logits.float()
    if how == "mean":
        total = torch.zeros(n_examples, classes).index_add_(0, index, logits)
        counts = torch.zeros(n_examples).index_add_(0, index, torch.ones(len(index)))
        return total / counts.clamp(min=1).unsqueeze(-1)
    out = torch.full((n_examples, classes), float("-inf"))
    return out.scatter_reduce_(0, index.unsqueeze(-1).expand_as(logits), logits, reduce="amax")
