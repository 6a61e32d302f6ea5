"""Classification metrics against hand-computed cases and sklearn; report rendering."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from rich.console import Console

from bertcli.errors import DataError
from bertcli.metrics import (
    ClassificationReport,
    classification_metrics,
    render_classification_report,
    render_scalar_table,
)

LABELS = ["cat", "dog", "bird"]
# rows = true label, columns = predicted label
MATRIX = [[3, 1, 0], [1, 2, 1], [0, 0, 2]]


def _pairs_from_matrix(matrix: list[list[int]]) -> tuple[list[int], list[int]]:
    """Expand a confusion matrix into (predictions, references) lists."""
    predictions: list[int] = []
    references: list[int] = []
    for true, row in enumerate(matrix):
        for pred, count in enumerate(row):
            predictions += [pred] * count
            references += [true] * count
    return predictions, references


def _render(renderable: object) -> str:
    console = Console(file=io.StringIO(), width=120)
    console.print(renderable)
    return console.file.getvalue()


def test_hand_computed_three_classes() -> None:
    predictions, references = _pairs_from_matrix(MATRIX)
    result = classification_metrics(predictions, references, LABELS)

    assert result["confusion_matrix"] == {"labels": LABELS, "matrix": MATRIX}
    assert result["num_examples"] == 10
    assert result["accuracy"] == pytest.approx(7 / 10)
    # cat: tp 3, predicted 4, true 4; dog: tp 2, predicted 3, true 4;
    # bird: tp 2, predicted 3, true 2.
    expected = {
        "cat": (3 / 4, 3 / 4, 3 / 4, 4),
        "dog": (2 / 3, 2 / 4, 4 / 7, 4),
        "bird": (2 / 3, 2 / 2, 4 / 5, 2),
    }
    for name, (precision, recall, f1, support) in expected.items():
        scores = result["per_class"][name]
        assert scores["precision"] == pytest.approx(precision)
        assert scores["recall"] == pytest.approx(recall)
        assert scores["f1"] == pytest.approx(f1)
        assert scores["support"] == support
    assert result["macro_f1"] == pytest.approx((3 / 4 + 4 / 7 + 4 / 5) / 3)


def test_zero_support_and_absent_class_give_zero_not_nan() -> None:
    labels = ["a", "b", "c", "d"]
    # "c" is predicted once but never true; "d" appears nowhere.
    result = classification_metrics([0, 1, 2, 1], [0, 1, 1, 1], labels)

    assert list(result["per_class"]) == labels
    for name in ("c", "d"):
        scores = result["per_class"][name]
        assert scores == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert result["confusion_matrix"]["matrix"][3] == [0, 0, 0, 0]
    assert all(
        not math.isnan(value)
        for scores in result["per_class"].values()
        for value in scores.values()
    )
    # Macro-F1 averages the three labels that were seen (a: 1, b: 0.8, c: 0), not "d".
    assert result["macro_f1"] == pytest.approx((1.0 + 0.8 + 0.0) / 3)


def test_matches_sklearn_on_random_labels() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    # Label 4 exists but never occurs, to exercise the zero-division path.
    references = rng.integers(0, 4, size=300).tolist()
    predictions = [r if rng.random() < 0.6 else int(rng.integers(0, 4)) for r in references]
    labels = ["l0", "l1", "l2", "l3", "l4"]
    result = classification_metrics(predictions, references, labels)

    ids = list(range(len(labels)))
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        references, predictions, labels=ids, zero_division=0
    )
    for i, name in enumerate(labels):
        scores = result["per_class"][name]
        assert scores["precision"] == pytest.approx(precision[i])
        assert scores["recall"] == pytest.approx(recall[i])
        assert scores["f1"] == pytest.approx(f1[i])
        assert scores["support"] == support[i]
    assert result["accuracy"] == pytest.approx(metrics.accuracy_score(references, predictions))
    assert result["macro_f1"] == pytest.approx(
        metrics.f1_score(references, predictions, average="macro", zero_division=0)
    )
    expected_matrix = metrics.confusion_matrix(references, predictions, labels=ids)
    assert result["confusion_matrix"]["matrix"] == expected_matrix.tolist()


@pytest.mark.parametrize(
    ("predictions", "references"),
    [([0, 1], [0, 1, 1]), ([], [])],
    ids=["length-mismatch", "empty"],
)
def test_bad_lengths_raise_data_error(predictions: list[int], references: list[int]) -> None:
    with pytest.raises(DataError):
        classification_metrics(predictions, references, LABELS)


def test_label_id_outside_label_names_raises_data_error() -> None:
    with pytest.raises(DataError, match="outside"):
        classification_metrics([0, 3], [0, 1], LABELS)


def test_result_is_json_serialisable() -> None:
    predictions, references = _pairs_from_matrix(MATRIX)
    result = classification_metrics(predictions, references, LABELS)
    assert json.loads(json.dumps(result)) == result


def test_metric_runs_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    result = ClassificationReport(keep_in_memory=True).compute(
        predictions=[0, 1, 1], references=[0, 1, 0]
    )
    assert result is not None
    # num_labels inferred from the largest id seen.
    assert result["confusion_matrix"] == [[1, 1], [0, 1]]
    assert result["accuracy"] == pytest.approx(2 / 3)


def test_metrics_package_import_does_not_load_evaluate() -> None:
    code = "import sys, bertcli.metrics; print('evaluate' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_report_shows_labels_scores_and_matrix() -> None:
    labels = ["[neg]", "neutral", "positive"]
    predictions, references = _pairs_from_matrix(MATRIX)
    result = classification_metrics(predictions, references, labels)
    text = _render(render_classification_report(result, "dev"))

    assert "dev" in text
    for name in labels:
        # Bracketed names must survive as text, not be eaten as rich markup.
        assert name in text
    assert "0.7000" in text  # accuracy
    assert "0.5714" in text  # dog/neutral F1 = 4/7
    assert "confusion matrix" in text


def test_scalar_table_skips_nested_values() -> None:
    metrics = {"exact_match": 71.25, "f1": 0.812345, "n": 12, "per_type": {"PER": 1.0}}
    text = _render(render_scalar_table(metrics, "squad"))
    assert "71.2500" in text
    assert "0.8123" in text
    assert "12" in text
    assert "per_type" not in text
