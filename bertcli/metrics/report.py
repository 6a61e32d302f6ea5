"""Rich tables for metric dicts; the caller decides which console (stderr) prints them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text


def _format_value(value: int | float) -> str:
    return str(value) if isinstance(value, int) else f"{value:.4f}"


def render_scalar_table(metrics: Mapping[str, Any], title: str) -> Table:
    """Two-column table of the numeric top-level entries; nested values are skipped."""
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        # bool is an int subclass but is a flag, not a score.
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        table.add_row(Text(str(key)), _format_value(value))
    return table


def _per_class_table(
    per_class: Mapping[str, Mapping[str, Any]], title: str = "per class", what: str = "label"
) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(what)
    for column in ("precision", "recall", "f1", "support"):
        table.add_column(column, justify="right")
    for name, scores in per_class.items():
        # Text() so label names such as "[PAD]" are not parsed as rich markup.
        table.add_row(
            Text(name),
            f"{scores['precision']:.4f}",
            f"{scores['recall']:.4f}",
            f"{scores['f1']:.4f}",
            str(scores["support"]),
        )
    return table


def _confusion_table(confusion: Mapping[str, Any]) -> Table:
    labels: list[str] = list(confusion["labels"])
    # The corner cell names the axes; a longer title would wrap above a narrow table.
    table = Table(title="confusion matrix", title_justify="left")
    table.add_column("true \\ pred")
    for name in labels:
        table.add_column(Text(name), justify="right")
    for i, (name, row) in enumerate(zip(labels, confusion["matrix"], strict=True)):
        cells = [Text(str(count), style="bold" if i == j else "") for j, count in enumerate(row)]
        table.add_row(Text(name), *cells)
    return table


def render_classification_report(metrics: Mapping[str, Any], title: str) -> Group:
    """Summary, per-class and confusion-matrix tables for `classification_metrics` output."""
    return Group(
        render_scalar_table(metrics, title),
        _per_class_table(metrics["per_class"]),
        _confusion_table(metrics["confusion_matrix"]),
    )


def render_multilabel_report(metrics: Mapping[str, Any], title: str) -> Group:
    """Summary and per-label tables for multi-label metrics."""
    return Group(
        render_scalar_table(metrics, title),
        _per_class_table(metrics["per_label"], "per label (at its tuned threshold)"),
    )


def render_entity_report(metrics: Mapping[str, Any], title: str) -> Group:
    """Summary and per-entity-type tables for `entity_metrics` output."""
    return Group(
        render_scalar_table(metrics, title),
        _per_class_table(metrics["per_type"], "per entity type", "type"),
    )
