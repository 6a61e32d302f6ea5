"""Entity-level precision/recall/F1 for IOB2 tags: conlleval's rules and seqeval's strict mode."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import datasets
import evaluate

from bertcli.errors import DataError
from bertcli.metrics.entities import _TAG_HINT, Entity, _is_iob2, get_entities
from bertcli.metrics.runner import check_pairs, metric_info, run_metric

_DESCRIPTION = """\
Micro-averaged and per-type entity precision, recall and F1 for IOB2 tag sequences. Config
"strict" (seqeval's strict mode): an entity is a B-X followed by any I-X of the same type and a
stray I-X starts nothing. Config "conlleval" (conlleval.pl): an I-X after O or after another type
starts an entity too. A predicted entity counts only if its span and type match exactly.
"""

_INPUTS = """
Args:
    predictions: one list of IOB2 tag strings per sentence.
    references: one list of IOB2 tag strings per sentence, as long as its prediction.
Returns:
    precision, recall, f1 (micro over all entities) and per_type: {TYPE: {precision,
    recall, f1, support}} for every type seen in references or predictions.
"""


def _ratio(numerator: int, denominator: int) -> float:
    # 0.0 rather than NaN for an empty denominator, as seqeval's zero_division=0.
    return numerator / denominator if denominator else 0.0


def _scores(true_positives: int, predicted: int, support: int) -> dict[str, float]:
    return {
        "precision": _ratio(true_positives, predicted),
        "recall": _ratio(true_positives, support),
        # 2tp / (2tp + fp + fn) equals 2PR / (P + R) and stays defined when both are 0.
        "f1": _ratio(2 * true_positives, predicted + support),
    }


class EntityF1(evaluate.Metric):
    """Strict IOB2 entity scores, built in code so no hub access is needed."""

    def _info(self) -> evaluate.MetricInfo:
        return metric_info(
            _DESCRIPTION,
            _INPUTS,
            datasets.Sequence(datasets.Value("string")),
            datasets.Sequence(datasets.Value("string")),
        )

    def _compute(
        self, predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]]
    ) -> dict[str, Any]:
        lenient = self.config_name == "conlleval"
        for index, (pred, ref) in enumerate(zip(predictions, references, strict=True)):
            if len(pred) != len(ref):
                raise ValueError(f"sentence {index + 1}: {len(pred)} predicted, {len(ref)} true")
        return _set_scores(
            [get_entities(pred, lenient) for pred in predictions],
            [get_entities(ref, lenient) for ref in references],
        )


def _set_scores(
    predictions: Sequence[Iterable[Entity]], references: Sequence[Iterable[Entity]]
) -> dict[str, Any]:
    """Micro P/R/F1 and per-type scores of entity sets; an entity counts on an exact match."""
    hits: Counter[str] = Counter()
    predicted: Counter[str] = Counter()
    support: Counter[str] = Counter()
    for pred, gold in zip(predictions, references, strict=True):
        pred, gold = set(pred), set(gold)
        hits.update(kind for kind, _, _ in pred & gold)
        predicted.update(kind for kind, _, _ in pred)
        support.update(kind for kind, _, _ in gold)
    per_type = {
        kind: {**_scores(hits[kind], predicted[kind], support[kind]), "support": support[kind]}
        for kind in sorted(predicted.keys() | support.keys())
    }
    overall = _scores(hits.total(), predicted.total(), support.total())
    return {**overall, "per_type": per_type}


def entity_metrics(predictions: list[list[str]], references: list[list[str]]) -> dict[str, Any]:
    """Score predicted IOB2 tag sequences against references; a JSON-serialisable dict."""
    check_pairs(predictions, references)
    for index, (pred, ref) in enumerate(zip(predictions, references, strict=True), start=1):
        if len(pred) != len(ref):
            raise DataError(
                f"sentence {index}: {len(pred)} predicted tags but {len(ref)} reference tags",
                hint="predict exactly one tag per reference token",
            )
    # Checked once per distinct tag: predictions repeat a handful of labels many times.
    distinct = {tag for tags in (*predictions, *references) for tag in tags}
    bad = sorted((t for t in distinct if not isinstance(t, str) or not _is_iob2(t)), key=repr)
    if bad:
        shown = ", ".join(repr(tag) for tag in bad[:5])
        raise DataError(f"tags {shown} are not IOB2 (O, B-TYPE or I-TYPE)", hint=_TAG_HINT)
    # Both conventions, named: conlleval's (the CoNLL-2003 papers' and seqeval's default) is
    # the main one; strict IOB2 beside it. keep_in_memory: no arrow cache files to share.
    scores: dict[str, Any] = {}
    for rules in ("conlleval", "strict"):
        raw = run_metric(EntityF1(config_name=rules, keep_in_memory=True), predictions, references)
        scores.update({f"{k}_{rules}": raw[k] for k in ("precision", "recall", "f1")})
        scores["per_type" if rules == "conlleval" else "per_type_strict"] = raw["per_type"]
    return {**scores, "num_sentences": len(references)}


def span_metrics(
    predictions: Sequence[Iterable[Entity]], references: Sequence[Iterable[Entity]]
) -> dict[str, Any]:
    """Score entity sets (type, first word, last word) that may nest or overlap (span heads).

    An entity counts when its type and both ends match. Sets need no tag-reading rules, so the
    conlleval and strict keys (named as `entity_metrics` names them) hold the same numbers."""
    check_pairs(predictions, references)
    raw = _set_scores(predictions, references)
    scores: dict[str, Any] = {}
    for rules in ("conlleval", "strict"):
        scores.update({f"{k}_{rules}": raw[k] for k in ("precision", "recall", "f1")})
    scores |= {"per_type": raw["per_type"], "per_type_strict": raw["per_type"]}
    return {**scores, "num_sentences": len(references)}
