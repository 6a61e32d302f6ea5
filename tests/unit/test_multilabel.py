"""Multi-label task and calibration: thresholds, temperatures and ECE against hand computations;
a tiny model trains, evaluates, predicts and exports with the tuned values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import write_csv

from bertcli.calibration import (
    expected_calibration_error,
    fit_label_temperatures,
    fit_temperature,
)
from bertcli.console import configure
from bertcli.data.load import Example
from bertcli.errors import DataError
from bertcli.metrics.multilabel import multilabel_metrics, tune_thresholds
from bertcli.tasks import ClassificationTask, task_from_meta
from bertcli.tasks.classification import Scored

# --------------------------------------------------------------------------- pure functions


def test_thresholds_maximise_f1_by_hand() -> None:
    probs = np.array([[0.9, 0.7], [0.8, 0.7], [0.3, 0.1], [0.2, 0.6]])
    gold = np.array([[1, 0], [0, 0], [1, 0], [0, 0]])
    # label 0, top k kept: k=1 F1 2/3, k=2 1/2, k=3 4/5, k=4 2/3 -> keep 3: halfway 0.3 / 0.2
    # label 1 has no positives: it keeps 0.5
    assert tune_thresholds(probs, gold) == pytest.approx([0.25, 0.5])
    # tied probabilities are kept or dropped together: both 0.7s, never one of them
    tied = tune_thresholds(np.array([[0.7], [0.7], [0.1]]), np.array([[1], [0], [0]]))
    assert tied == pytest.approx([0.4])


def test_multilabel_metrics_by_hand() -> None:
    pred = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 0]])
    gold = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 1]])
    m = multilabel_metrics(pred, gold, ["a", "b", "c"])
    # tp a=2 b=1 c=0; predicted a=2 b=2 c=0; support a=2 b=1 c=1
    assert m["micro_precision"] == pytest.approx(3 / 4)
    assert m["micro_recall"] == pytest.approx(3 / 4)
    assert m["micro_f1"] == pytest.approx(0.75)
    assert m["macro_f1"] == pytest.approx(round((1 + 2 / 3 + 0) / 3, 4))
    assert m["exact_match"] == pytest.approx(round(1 / 3, 4))
    assert m["per_label"]["b"] == {"precision": 0.5, "recall": 1.0, "f1": 0.6667, "support": 1}


def test_temperature_by_hand() -> None:
    # 100 examples, logits (2, 0), 80 right: the best p(top) is 0.8 = sigmoid(2 / T)
    logits = np.tile([2.0, 0.0], (100, 1))
    labels = np.array([0] * 80 + [1] * 20)
    assert fit_temperature(logits, labels) == pytest.approx(2 / math.log(4), abs=1e-3)
    # no mistakes: the optimum is T -> 0 (every prediction certain); T stays 1
    assert fit_temperature(logits, np.zeros(100, dtype=int)) == 1.0
    assert fit_temperature(logits[:20], labels[:20]) == 1.0  # too few to fit


def test_label_temperatures_by_hand() -> None:
    # label 0: logit 3 everywhere, 75% positive -> sigmoid(3 / T) = 0.75, T = 3 / ln 3;
    # label 1: the logit's sign is never wrong -> T stays 1
    z = np.stack([np.full(100, 3.0), np.where(np.arange(100) < 50, 2.0, -2.0)], axis=1)
    y = np.stack([np.arange(100) < 75, np.arange(100) < 50], axis=1).astype(float)
    assert fit_label_temperatures(z, y) == pytest.approx([3 / math.log(3), 1.0], abs=1e-3)


def test_ece_by_hand() -> None:
    # bin (13/15, 14/15]: confidence 0.9, accuracy 0.5; bin (9/15, 10/15]: 0.65 vs 1.0
    ece = expected_calibration_error([0.9, 0.9, 0.65, 0.65], [1, 0, 1, 1])
    assert ece == pytest.approx(0.5 * 0.4 + 0.5 * 0.35)
    assert expected_calibration_error([0.25, 0.75], [0, 1], bins=2) == pytest.approx(0.25)


def test_classification_temperature_fitted_on_validation_only() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    logits = np.stack([np.where(labels == 0, 4.0, -4.0), np.zeros(300)], axis=1)
    logits[:60] *= -1  # 20% confidently wrong: over-confident, T > 1 fixes it
    examples = [Example("x", label=int(v)) for v in labels]
    scored = Scored(np.zeros_like(logits), [1] * 300, logits)
    task = ClassificationTask(["neg", "pos"], 32)
    validation = task.metrics(scored, examples)
    assert validation["temperature"] == fit_temperature(logits, labels) > 1
    assert validation["ece_calibrated"] < validation["ece"]
    task.adopt(validation)
    assert task.temperature == validation["temperature"]
    # a saved model scores with its own T; one saved before calibration existed uses T = 1
    meta = {"task": "classification", "labels": ["neg", "pos"], "max_length": 32}
    saved = task_from_meta(meta | {"calibration": {"temperature": 2.5}}, None)
    assert saved.metrics(scored, examples)["temperature"] == 2.5
    assert task_from_meta(meta, None).temperature == 1.0


# --------------------------------------------------------------------------- the task end to end

WORDS = {"joy": ("great", "lovely"), "anger": ("awful", "terrible"), "film": ("film", "movie")}


def emotion_rows(n: int, seed: int) -> list[tuple[str, str]]:
    """Each label present when one of its words is; some rows have two labels, some none."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        chosen = [name for name in WORDS if rng.random() < 0.4]
        words = [str(rng.choice(WORDS[name])) for name in chosen] + ["the", "it", "was"]
        rng.shuffle(words)
        rows.append((" ".join(words), "|".join(chosen)))
    return rows


@pytest.fixture(scope="module")
def multilabel_run(tiny_model_dir, tmp_path_factory, run_config):
    from bertcli.finetune import finetune

    tmp = tmp_path_factory.mktemp("multilabel")
    train = write_csv(tmp / "train.csv", emotion_rows(320, 0), ("text", "labels"))
    test = write_csv(tmp / "test.csv", emotion_rows(40, 1), ("text", "labels"))
    settings = {
        "task": "multilabel",
        "data.label_column": "labels",
        "data.test": str(test),
        "data.validation_fraction": 0.25,
        "train.max_steps": 400,
        "train.lr": 1e-3,
    }
    configure(quiet=True)
    try:
        result = finetune(run_config(tiny_model_dir, train, tmp / "run", settings))
    finally:
        configure(quiet=False)
    return result, test


def test_multilabel_trains_tunes_and_saves_thresholds(multilabel_run) -> None:
    result, _ = multilabel_run
    validation, test = result.metrics["validation"], result.metrics["test"]
    assert validation["micro_f1"] > 0.7, validation
    assert set(validation["per_label"]) == {"anger", "film", "joy"}
    meta = json.loads((result.output_dir / "bertcli.json").read_text())
    assert meta["task"] == "multilabel"
    saved = meta["multilabel"]
    for name, scores in validation["per_label"].items():
        assert saved["thresholds"][name] == scores["threshold"]
        assert saved["temperatures"][name] == scores["temperature"]
        # the test split is scored at validation's values, not re-tuned on itself
        assert test["per_label"][name]["threshold"] == scores["threshold"]
    config = json.loads((result.output_dir / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"


def test_multilabel_predict_applies_saved_thresholds_and_eval_does_not_retune(
    multilabel_run, tmp_path
) -> None:
    from bertcli.evaluation import evaluate_model
    from bertcli.predict import predict_records

    result, test = multilabel_run
    saved = json.loads((result.output_dir / "bertcli.json").read_text())["multilabel"]
    source = write_csv(
        tmp_path / "in.csv", [("great film",), ("awful",), ("the it was",)], ("text",)
    )
    rows = [json.loads(r) for r in predict_records(source, result.output_dir, precision="no")]
    for row in rows:
        assert set(row) == {"labels", "scores", "windows"}
        expected = [n for n, p in row["scores"].items() if p >= saved["thresholds"][n]]
        assert sorted(row["labels"]) == sorted(expected)
    assert "film" in rows[0]["labels"] and "anger" in rows[1]["labels"]
    # eval of the saved model on the test file: the same thresholds, the same scores as finetune
    scored = evaluate_model(result.output_dir, [str(test)], precision="no")[str(test)]
    for name, scores in scored["per_label"].items():
        assert scores["threshold"] == saved["thresholds"][name]
    assert scored["macro_f1"] == pytest.approx(result.metrics["test"]["macro_f1"], abs=0.02)


def test_multilabel_exports_to_onnx(multilabel_run, tmp_path) -> None:
    from bertcli.export import export_model
    from bertcli.predict import predict_records

    result, test = multilabel_run
    onnx = export_model(result.output_dir, tmp_path / "onnx", check_data=test)
    assert onnx.label_agreement >= 0.99
    torch_rows = [json.loads(r) for r in predict_records(test, result.output_dir, precision="no")]
    onnx_rows = [json.loads(r) for r in predict_records(test, tmp_path / "onnx")]
    assert [r["labels"] for r in onnx_rows] == [r["labels"] for r in torch_rows]


def test_label_columns_read_like_a_separated_column(tmp_path) -> None:
    from bertcli.config import DataConfig, MultiLabelConfig
    from bertcli.data.readers import read_records
    from bertcli.tasks.multilabel import labelled_examples

    names = ["anger", "film", "joy"]
    joined = write_csv(tmp_path / "a.csv", [("x", "joy|film"), ("y", "")], ("text", "labels"))
    columns = write_csv(
        tmp_path / "b.csv", [("x", "0", "1", "1"), ("y", "0", "0", "0")], ("text", *names)
    )
    data = DataConfig(label_column="labels")
    a = labelled_examples(read_records(joined), data, MultiLabelConfig(), names)
    b = labelled_examples(read_records(columns), data, MultiLabelConfig(label_columns=names), names)
    assert [e.label for e in a] == [e.label for e in b] == [(1, 2), ()]


def test_bad_labels_name_the_row_and_field(tmp_path) -> None:
    from bertcli.config import DataConfig, MultiLabelConfig
    from bertcli.data.readers import read_records
    from bertcli.tasks.multilabel import labelled_examples

    names = ["anger", "joy"]
    unknown = write_csv(tmp_path / "a.csv", [("x", "joy"), ("y", "joy|fear")], ("text", "labels"))
    with pytest.raises(DataError, match=r"a\.csv:line 3: label 'fear' in field 'labels'"):
        labelled_examples(
            read_records(unknown), DataConfig(label_column="labels"), MultiLabelConfig(), names
        )
    flags = write_csv(tmp_path / "b.csv", [("x", "1", "maybe")], ("text", *names))
    with pytest.raises(DataError, match=r"b\.csv:line 2: field 'joy' is 'maybe', not 0 or 1"):
        labelled_examples(
            read_records(flags), DataConfig(), MultiLabelConfig(label_columns=names), names
        )
