"""Classification metric: accuracy, macro-F1, per-class P/R/F1/support, confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import datasets
import evaluate
import numpy as np

from bertcli.errors import DataError
from bertcli.metrics.runner import check_pairs, metric_info, run_metric

_DESCRIPTION = """\
Accuracy, macro-averaged F1, per-class precision/recall/F1/support and the confusion
matrix (rows = true label, columns = predicted label) for single-label classification.
"""

_INPUTS = """
Args:
    predictions: predicted label ids, int in [0, num_labels).
    references: true label ids, int in [0, num_labels).
    num_labels: number of classes; defaults to 1 + the largest id seen.
Returns:
    accuracy, macro_f1, precision, recall, f1, support (lists indexed by label id)
    and confusion_matrix (num_labels x num_labels list of ints).
"""


def confusion_matrix(
    predictions: np.ndarray, references: np.ndarray, num_labels: int
) -> np.ndarray:
    """Count matrix of shape (num_labels, num_labels): rows true label, columns predicted."""
    flat = references * num_labels + predictions
    counts = np.bincount(flat, minlength=num_labels * num_labels)
    return counts.reshape(num_labels, num_labels)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Elementwise division that yields 0.0 where the denominator is 0 (sklearn zero_division=0)."""
    out = np.zeros(numerator.shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def scores_from_confusion(matrix: np.ndarray) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-class scores from a confusion matrix, as plain Python types."""
    tp = np.diag(matrix)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, support)
    # 2tp / (2tp + fp + fn) equals 2PR / (P + R) but stays defined when P or R is 0/0.
    f1 = _ratio(2 * tp, support + predicted)
    # Macro-average over labels seen in references or predictions, as sklearn's
    # f1_score(average="macro") does: a class absent from both was never tested.
    seen = (support + predicted) > 0
    return {
        "accuracy": float(tp.sum() / matrix.sum()) if matrix.sum() else 0.0,
        "macro_f1": float(f1[seen].mean()) if seen.any() else 0.0,
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": support.astype(int).tolist(),
        "confusion_matrix": matrix.astype(int).tolist(),
    }


class ClassificationReport(evaluate.Metric):
    """Single-label classification scores, built in code so no hub access is needed."""

    def _info(self) -> evaluate.MetricInfo:
        return metric_info(
            _DESCRIPTION, _INPUTS, datasets.Value("int64"), datasets.Value("int64"), format="numpy"
        )

    def _compute(
        self,
        predictions: np.ndarray,
        references: np.ndarray,
        num_labels: int | None = None,
    ) -> dict[str, Any]:
        predictions = np.asarray(predictions, dtype=np.int64)
        references = np.asarray(references, dtype=np.int64)
        seen_max = int(max(predictions.max(initial=-1), references.max(initial=-1)))
        if num_labels is None:
            num_labels = seen_max + 1
        low = int(min(predictions.min(initial=0), references.min(initial=0)))
        if low < 0 or seen_max >= num_labels:
            raise ValueError(f"label ids must lie in [0, {num_labels}), found {low}..{seen_max}")
        return scores_from_confusion(confusion_matrix(predictions, references, num_labels))


def classification_metrics(
    predictions: Sequence[int],
    references: Sequence[int],
    label_names: Sequence[str],
) -> dict[str, Any]:
    """Score label ids against references; returns a JSON-serialisable dict keyed by label name."""
    check_pairs(predictions, references)
    names = [str(name) for name in label_names]
    if len(set(names)) != len(names):
        raise DataError(
            f"label names are not unique: {names}",
            hint="each class id needs its own name in the per-class table",
        )
    bad = sorted({int(i) for i in (*predictions, *references) if not 0 <= int(i) < len(names)})
    if bad:
        raise DataError(
            f"label ids {bad[:5]} are outside the {len(names)} known labels",
            hint=f"ids must be 0..{len(names) - 1} for labels {names[:10]}",
        )
    # keep_in_memory: nothing to share across processes, so skip the arrow cache files.
    metric = ClassificationReport(keep_in_memory=True)
    raw = run_metric(metric, predictions, references, num_labels=len(names))
    per_class = {
        name: {
            "precision": raw["precision"][i],
            "recall": raw["recall"][i],
            "f1": raw["f1"][i],
            "support": raw["support"][i],
        }
        for i, name in enumerate(names)
    }
    return {
        "accuracy": raw["accuracy"],
        "macro_f1": raw["macro_f1"],
        "num_examples": len(references),
        "per_class": per_class,
        "confusion_matrix": {"labels": names, "matrix": raw["confusion_matrix"]},
    }
