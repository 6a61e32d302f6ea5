"""Pearson and Spearman correlation and MSE of predicted against true scores (regression)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank (as scipy.stats.rankdata)."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    unique, inverse = np.unique(values, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / np.bincount(inverse))[inverse] if len(unique) < len(values) else ranks


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum()) / denominator if denominator else 0.0


def regression_metrics(predicted: Sequence[float], true: Sequence[float]) -> dict[str, Any]:
    p, t = np.asarray(predicted, dtype=np.float64), np.asarray(true, dtype=np.float64)
    return {
        "pearson": round(_pearson(p, t), 6),
        "spearman": round(_pearson(_ranks(p), _ranks(t)), 6),
        "mse": round(float(((p - t) ** 2).mean()), 6) if len(t) else 0.0,
        "count": len(t),
    }
