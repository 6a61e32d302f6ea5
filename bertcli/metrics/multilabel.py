"""Multi-label scores (micro/macro P/R/F1, per label) and per-label threshold tuning, in numpy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bertcli.metrics.runner import check_pairs

DEFAULT_THRESHOLD = 0.5


def _f1(tp: np.ndarray, predicted: np.ndarray, support: np.ndarray) -> np.ndarray:
    """2tp / (predicted + support): F1 that is 0, not undefined, when both counts are 0."""
    out = np.zeros(np.shape(tp), dtype=np.float64)
    np.divide(2 * tp, predicted + support, out=out, where=(predicted + support) > 0)
    return out


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros(np.shape(a), dtype=np.float64)
    np.divide(a, b, out=out, where=b > 0)
    return out


def tune_thresholds(probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per label, the threshold with the best F1 on (examples, labels) `probs` against 0/1
    `targets`: a label is predicted when its probability >= the threshold. The threshold sits
    halfway between the lowest probability kept and the next one below, so it generalises
    instead of sitting on one example. A label with no positives keeps DEFAULT_THRESHOLD."""
    probs, targets = np.asarray(probs, dtype=np.float64), np.asarray(targets) > 0.5
    out = np.full(probs.shape[1], DEFAULT_THRESHOLD)
    for j in range(probs.shape[1]):
        positives = int(targets[:, j].sum())
        if not positives:
            continue
        order = np.argsort(-probs[:, j], kind="stable")
        scores, gold = probs[order, j], targets[order, j]
        tp = np.cumsum(gold)  # predicting the top k+1
        k = np.arange(1, len(scores) + 1)
        f1 = 2 * tp / (k + positives)
        # Only cuts between distinct probabilities can be expressed as a threshold.
        cut = np.append(scores[:-1] > scores[1:], True)
        best = int(np.flatnonzero(cut)[np.argmax(f1[cut])])
        below = scores[best + 1] if best + 1 < len(scores) else 0.0
        out[j] = (scores[best] + below) / 2
    return out


def multilabel_metrics(
    predicted: np.ndarray, targets: np.ndarray, label_names: Sequence[str]
) -> dict[str, Any]:
    """(examples, labels) 0/1 predictions against 0/1 targets: micro and macro P/R/F1 (macro
    over labels that occur in the references or the predictions, as for single-label), exact
    match, and per-label P/R/F1/support."""
    predicted, targets = np.asarray(predicted) > 0.5, np.asarray(targets) > 0.5
    check_pairs(list(predicted), list(targets))
    tp = (predicted & targets).sum(0)
    n_pred, support = predicted.sum(0), targets.sum(0)
    precision, recall = _ratio(tp, n_pred), _ratio(tp, support)
    f1 = _f1(tp, n_pred, support)
    seen = (n_pred + support) > 0
    micro_p = float(_ratio(tp.sum(), n_pred.sum()))
    micro_r = float(_ratio(tp.sum(), support.sum()))

    def mean(values: np.ndarray) -> float:
        return round(float(values[seen].mean()), 4) if seen.any() else 0.0

    return {
        "micro_f1": round(float(_f1(tp.sum(), n_pred.sum(), support.sum())), 4),
        "macro_f1": mean(f1),
        "micro_precision": round(micro_p, 4),
        "micro_recall": round(micro_r, 4),
        "macro_precision": mean(precision),
        "macro_recall": mean(recall),
        "exact_match": round(float((predicted == targets).all(1).mean()), 4),
        "num_examples": len(targets),
        "per_label": {
            str(name): {
                "precision": round(float(precision[j]), 4),
                "recall": round(float(recall[j]), 4),
                "f1": round(float(f1[j]), 4),
                "support": int(support[j]),
            }
            for j, name in enumerate(label_names)
        },
    }
