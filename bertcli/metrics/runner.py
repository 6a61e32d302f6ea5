"""Shared path for every metric: validate predictions/references, then run an evaluate module."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bertcli.errors import DataError

if TYPE_CHECKING:
    import evaluate


def check_pairs(predictions: Sequence[Any], references: Sequence[Any]) -> None:
    """Raise DataError unless predictions and references are non-empty and equally long."""
    if len(predictions) != len(references):
        raise DataError(
            f"got {len(predictions)} predictions but {len(references)} references",
            hint="every evaluation example needs exactly one prediction",
        )
    if not references:
        raise DataError(
            "no examples to evaluate",
            hint="check that the evaluation split is not empty after filtering",
        )


def run_metric(
    metric: evaluate.EvaluationModule,
    predictions: Sequence[Any],
    references: Sequence[Any],
    **kwargs: Any,
) -> dict[str, Any]:
    """Validate the inputs and compute `metric` over them in one call."""
    check_pairs(predictions, references)
    result = metric.compute(predictions=list(predictions), references=list(references), **kwargs)
    # compute() returns None only on non-zero ranks of a distributed metric, which
    # bertcli never builds (gather_for_metrics collects everything on one process).
    if result is None:
        raise RuntimeError(f"{metric.name} returned no result on this process")
    return result


def metric_info(
    description: str, inputs: str, predictions: Any, references: Any, **extra: Any
) -> evaluate.MetricInfo:
    """The `_info` of a bertcli metric: built in code (no hub script), typed inputs, no citation."""
    import datasets
    import evaluate

    return evaluate.MetricInfo(
        description=description,
        citation="",
        inputs_description=inputs,
        features=datasets.Features({"predictions": predictions, "references": references}),
        **extra,
    )
