"""Regression task: correlations by hand, scores read and checked, train -> predict -> export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import write_csv

from bertcli.console import configure
from bertcli.errors import DataError
from bertcli.finetune import finetune
from bertcli.metrics.correlation import regression_metrics

POS = ("great", "good", "lovely", "excellent")
NEG = ("awful", "bad", "boring", "terrible")


def test_pearson_spearman_and_mse_by_hand() -> None:
    m = regression_metrics([1.0, 2.0, 3.0], [2.0, 4.0, 7.0])
    # deviations (-1, 0, 1) and (-7/3, -1/3, 8/3): r = 5 / sqrt(2 * 114/9)
    assert m["pearson"] == pytest.approx(5 / np.sqrt(2 * 114 / 9), abs=1e-6)
    assert m["spearman"] == pytest.approx(1.0)
    assert m["mse"] == pytest.approx((1 + 4 + 16) / 3, abs=1e-6)
    # ties share their average rank: ranks (1.5, 1.5, 3) against (1, 2, 3)
    tied = regression_metrics([5.0, 5.0, 9.0], [1.0, 2.0, 3.0])
    assert tied["spearman"] == pytest.approx(np.corrcoef([1.5, 1.5, 3], [1, 2, 3])[0, 1], abs=1e-6)


def pairs(path: Path, n: int = 64, seed: int = 0) -> Path:
    """Pairs whose score (0-5) is how many positive words the two sentences hold together."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        k = int(rng.integers(0, 6))
        words = [*rng.choice(POS, k), *rng.choice(NEG, 5 - k)]
        rng.shuffle(words)
        rows.append((f"the film was {' '.join(words[:3])}", " ".join(words[3:]), f"{k:.1f}"))
    return write_csv(path, rows, ("sentence1", "sentence2", "score"))


def test_regression_trains_predicts_scores_and_exports(
    tiny_model_dir, tmp_path, run_config
) -> None:
    from bertcli.export import export_model
    from bertcli.predict import predict_records

    train = pairs(tmp_path / "train.csv")
    settings = {
        "task": "regression",
        "data.text_column": "sentence1",
        "data.pair_column": "sentence2",
        "data.label_column": "score",
        "regression.min": 0,
        "regression.max": 5,
        "train.max_steps": 60,
    }
    configure(quiet=True)
    try:
        result = finetune(run_config(tiny_model_dir, train, tmp_path / "run", settings))
    finally:
        configure(quiet=False)
    assert result.metrics["validation"]["pearson"] > 0.5, result.metrics
    meta = json.loads((result.output_dir / "bertcli.json").read_text())
    assert meta["task"] == "regression" and meta["regression"] == {"min": 0.0, "max": 5.0}
    source = write_csv(
        tmp_path / "in.csv",
        [("great lovely excellent", "good great"), ("awful bad boring", "terrible bad")],
        ("sentence1", "sentence2"),
    )
    rows = [json.loads(r) for r in predict_records(source, result.output_dir, precision="no")]
    assert rows[0]["score"] > rows[1]["score"], "scores are on the targets' 0-5 scale, ordered"
    assert all(-1 < r["score"] < 6 for r in rows), "unscaled back to the 0-5 range"
    onnx = export_model(result.output_dir, tmp_path / "onnx", check_data=source)
    assert onnx.label_agreement >= 0.99
    again = [json.loads(r) for r in predict_records(source, tmp_path / "onnx")]
    assert [r["score"] for r in again] == pytest.approx([r["score"] for r in rows], abs=1e-3)


def test_a_score_that_is_not_a_number_names_its_row(tiny_model_dir, tmp_path, run_config) -> None:
    train = write_csv(
        tmp_path / "bad.csv", [("a good film", "1.5"), ("a bad film", "high")], ("text", "score")
    )
    config = run_config(
        tiny_model_dir, train, tmp_path / "x", {"task": "regression", "data.label_column": "score"}
    )
    with pytest.raises(DataError, match=r"bad\.csv:line 3: field 'score' is 'high', not a number"):
        finetune(config)
