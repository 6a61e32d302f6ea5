"""SQuAD exact match / F1 against hand-computed cases, with the official normalisation."""

from __future__ import annotations

import pytest

from bertcli.errors import DataError
from bertcli.metrics.squad import SquadScores, normalize_answer, squad_metrics


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("The Denver Broncos!", "denver broncos"),
        ("  a  cat,\tAn apple; the end. ", "cat apple end"),
        ("theatre another", "theatre another"),  # articles only as whole words
        ("Saint-Étienne's", "saintétiennes"),
    ],
)
def test_normalisation_follows_the_official_script(text: str, normal: str) -> None:
    assert normalize_answer(text) == normal


def test_exact_and_f1_on_hand_made_cases() -> None:
    result = squad_metrics(
        ["the Broncos.", "big red dog", "Denver", "nothing alike"],
        [["Broncos"], ["red dog"], ["Denver Broncos", "Denver"], ["a cat"]],
    )
    # Exact: 1 (normalised), 0, 1 (second reference), 0.
    assert result["exact"] == pytest.approx(50.0)
    # F1: 1, 2*(2/3)*1/(2/3+1) = 0.8, 1, 0.
    assert result["f1"] == pytest.approx(100 * (1 + 0.8 + 1 + 0) / 4)
    assert result["num_examples"] == 4
    assert result["HasAns_total"] == 4
    assert "NoAns_total" not in result  # no unanswerable question: a v1.1 evaluation


def test_best_reference_is_taken_per_question() -> None:
    # "Denver" overlaps one word of the first reference and equals the second.
    one = squad_metrics(["Denver Broncos team"], [["Denver", "Denver Broncos team members"]])
    assert one["exact"] == 0.0
    # Against "Denver": P 1/3, R 1 -> 0.5; against the long one: P 1, R 3/4 -> 6/7.
    assert one["f1"] == pytest.approx(100 * 6 / 7)


def test_v2_splits_answerable_and_unanswerable_questions() -> None:
    result = squad_metrics(
        ["", "Paris", "Paris", "", "the"],
        [[], [], ["Paris"], ["Rome"], []],
    )
    # Unanswerable: "" right, "Paris" wrong, "the" normalises to "" and is right.
    assert result["NoAns_total"] == 3
    assert result["NoAns_exact"] == pytest.approx(100 * 2 / 3)
    assert result["NoAns_f1"] == pytest.approx(100 * 2 / 3)
    # Answerable: "Paris" right, "" wrong.
    assert result["HasAns_total"] == 2
    assert result["HasAns_exact"] == pytest.approx(50.0)
    assert result["exact"] == pytest.approx(60.0)
    assert result["num_examples"] == 5


def test_metric_module_runs_through_evaluate() -> None:
    metric = SquadScores(keep_in_memory=True)
    raw = metric.compute(predictions=["an apple"], references=[["Apple"]])
    assert raw == {
        "exact": 100.0,
        "f1": 100.0,
        "total": 1,
        "HasAns_exact": 100.0,
        "HasAns_f1": 100.0,
        "HasAns_total": 1,
    }


def test_bad_inputs_are_data_errors() -> None:
    with pytest.raises(DataError, match="got 1 predictions but 2 references"):
        squad_metrics(["a"], [["a"], ["b"]])
    with pytest.raises(DataError, match=r"question 1: references must be a list"):
        squad_metrics(["a"], ["a"])  # type: ignore[list-item]


def test_v1_rules_differ_from_v2_on_answers_that_normalise_to_nothing() -> None:
    # The reference "The" and the prediction "a" both normalise to "": v1.1's script counts an
    # exact match but no shared token (F1 0); v2.0's treats the question as unanswerable and
    # the empty prediction as right (F1 100).
    v1 = squad_metrics(["a"], [["The"]], v2=False)
    v2 = squad_metrics(["a"], [["The"]])
    assert (v1["exact"], v1["f1"]) == (100.0, 0.0)
    assert (v2["exact"], v2["f1"]) == (100.0, 100.0)
    assert "HasAns_f1" not in v1 and v2["NoAns_total"] == 1, "only v2 splits HasAns/NoAns"
    # Answerable questions score the same under both rules.
    same = (["Denver Broncos"], [["Denver Broncos", "the Broncos"]])
    assert squad_metrics(*same, v2=False)["f1"] == squad_metrics(*same)["f1"] == 100.0


def test_v2_eval_keeps_the_saved_threshold_and_reports_best_f1_beside_it() -> None:
    from bertcli.data.squad import QAExample
    from bertcli.qa_answers import NO_ANSWER, Answer
    from bertcli.tasks.qa import QATask

    task = QATask.build([], 64, {"version_2": True, "null_threshold": 0.0})
    examples = [
        QAExample("1", "q", "Denver won.", ["Denver"], [0], "dev:1"),
        QAExample("2", "q", "Nobody won.", [], [], "dev:2"),
    ]
    # The saved threshold (0) dropped question 1's span (null beat it by 1 logit): F1 0 there.
    answers = [
        Answer("", NO_ANSWER, NO_ANSWER, 0.7, -1.0, best_span="Denver"),
        Answer("", NO_ANSWER, NO_ANSWER, 0.9, -3.0, best_span="Nobody"),
    ]
    scores = task.metrics(answers, examples)
    assert scores["f1"] == 50.0, "scored with the saved threshold, not one tuned here"
    assert "null_threshold" not in scores
    # A threshold between the margins (1 and 3) answers question 1 and keeps 2 empty: 100.
    assert scores["best_f1"] == 100.0 and 1.0 < scores["best_f1_threshold"] < 3.0
