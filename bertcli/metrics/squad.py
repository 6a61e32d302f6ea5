"""SQuAD exact match and token F1 (v1.1 and v2.0), matching the official evaluation scripts."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from typing import Any

import datasets
import evaluate

from bertcli.errors import DataError
from bertcli.metrics.runner import check_pairs, metric_info, run_metric

_DESCRIPTION = """\
Exact match and token-overlap F1 between predicted and reference answer texts after the
official SQuAD normalisation (lower case, no punctuation, no articles a/an/the, single spaces),
taking the best score over each question's references, in percent (0-100) like the official
scripts. Configuration "v2" (SQuAD v2.0's script): a question whose references are empty (or
normalise to nothing) is unanswerable and only the empty prediction is right; HasAns_* and NoAns_*
split the scores. Configuration "v1" (v1.1's script): references are used as given, an answer
that normalises to nothing has F1 0, and only exact and f1 are reported.
"""

_INPUTS = """
Args:
    predictions: predicted answer text per question; "" predicts "no answer".
    references: list of reference answer texts per question; [] when unanswerable.
Returns:
    exact, f1, total; HasAns_exact, HasAns_f1, HasAns_total when some questions have an
    answer; NoAns_exact, NoAns_f1, NoAns_total when some have none.
"""

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, drop punctuation and the articles a/an/the, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def gold_answers(references: Sequence[str], v2: bool = True) -> list[str]:
    """v2: references that survive normalisation, or [""] for an unanswerable question; v1.1
    keeps every reference as given (its script has no unanswerable questions)."""
    if not v2:
        return list(references)
    return [ref for ref in references if normalize_answer(ref)] or [""]


def exact_score(prediction: str, references: Sequence[str], v2: bool = True) -> float:
    """1.0 if the prediction equals any reference after normalisation, else 0.0."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(ref) for ref in gold_answers(references, v2)))


def f1_score(prediction: str, references: Sequence[str], v2: bool = True) -> float:
    """The best bag-of-tokens F1 of the prediction against any reference, in [0, 1]."""
    pred = normalize_answer(prediction).split()
    golds = gold_answers(references, v2)
    return max(_f1(pred, normalize_answer(ref).split(), v2) for ref in golds)


def _f1(pred: list[str], gold: list[str], v2: bool = True) -> float:
    if v2 and (not pred or not gold):
        # Empty against empty is right (a correct "no answer"); empty against text is wrong.
        # The v1.1 script has no such case: an answer that normalises to nothing shares no
        # token with anything and scores F1 0 (though exact match 1 against an empty one).
        return float(pred == gold)
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


class SquadScores(evaluate.Metric):
    """SQuAD v1.1/v2.0 exact match and F1, built in code so no hub access is needed."""

    def _info(self) -> evaluate.MetricInfo:
        return metric_info(
            _DESCRIPTION,
            _INPUTS,
            datasets.Value("string"),
            datasets.Sequence(datasets.Value("string")),
        )

    def _compute(
        self, predictions: Sequence[str], references: Sequence[Sequence[str]]
    ) -> dict[str, Any]:
        v2 = self.config_name != "v1"
        pairs = list(zip(predictions, references, strict=True))
        exact = [exact_score(p, refs, v2) for p, refs in pairs]
        f1 = [f1_score(p, refs, v2) for p, refs in pairs]
        result = _split(exact, f1, range(len(exact)), "")
        if not v2:  # the v1.1 script reports exact match and F1 only
            return result
        has_answer = [gold_answers(refs) != [""] for refs in references]
        has = [i for i, answerable in enumerate(has_answer) if answerable]
        no = [i for i, answerable in enumerate(has_answer) if not answerable]
        if has:
            result.update(_split(exact, f1, has, "HasAns_"))
        if no:
            result.update(_split(exact, f1, no, "NoAns_"))
        return result


def _split(exact: list[float], f1: list[float], indices: Sequence[int], prefix: str) -> dict:
    n = len(indices)
    return {
        f"{prefix}exact": 100.0 * sum(exact[i] for i in indices) / n,
        f"{prefix}f1": 100.0 * sum(f1[i] for i in indices) / n,
        f"{prefix}total": n,
    }


def squad_metrics(
    predicted_texts: Sequence[str], references: Sequence[Sequence[str]], *, v2: bool = True
) -> dict:
    """Score predicted answer texts against reference lists with the official v2.0 rules, or the
    v1.1 rules (`v2=False`); a JSON-serialisable dict.

    Keys: exact, f1 (percent), num_examples, and (v2) the HasAns_*/NoAns_* splits when present.
    """
    check_pairs(predicted_texts, references)
    for index, (pred, refs) in enumerate(zip(predicted_texts, references, strict=True), start=1):
        if not isinstance(pred, str):
            raise DataError(f"question {index}: prediction {pred!r} is not a string")
        if isinstance(refs, str) or not all(isinstance(ref, str) for ref in refs):
            raise DataError(
                f"question {index}: references must be a list of answer strings, found {refs!r}",
                hint='wrap a single answer in a list: ["answer"]; use [] for unanswerable',
            )
    # keep_in_memory: nothing to share across processes, so skip the arrow cache files.
    raw = run_metric(
        SquadScores(config_name="v2" if v2 else "v1", keep_in_memory=True),
        list(predicted_texts),
        [list(refs) for refs in references],
    )
    result = {"exact": raw.pop("exact"), "f1": raw.pop("f1"), "num_examples": raw.pop("total")}
    return {**result, **raw}
