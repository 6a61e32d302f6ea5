"""Task metrics as in-code evaluate modules, plus rich renderers for their results."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bertcli.metrics.report import (
    render_classification_report,
    render_entity_report,
    render_scalar_table,
)

if TYPE_CHECKING:
    from bertcli.metrics.classification import (
        ClassificationReport,
        classification_metrics,
    )
    from bertcli.metrics.seqeval import EntityF1, entity_metrics
    from bertcli.metrics.squad import SquadScores, squad_metrics

__all__ = [
    "ClassificationReport",
    "EntityF1",
    "SquadScores",
    "classification_metrics",
    "entity_metrics",
    "render_classification_report",
    "render_entity_report",
    "render_scalar_table",
    "squad_metrics",
]

# `import evaluate` costs seconds (it pulls in transformers and torch), so metric
# modules load on first use instead of whenever the CLI imports this package.
_LAZY = {
    "ClassificationReport": "bertcli.metrics.classification",
    "classification_metrics": "bertcli.metrics.classification",
    "EntityF1": "bertcli.metrics.seqeval",
    "entity_metrics": "bertcli.metrics.seqeval",
    "SquadScores": "bertcli.metrics.squad",
    "squad_metrics": "bertcli.metrics.squad",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
