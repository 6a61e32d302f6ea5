"""The documented flow, offline on real data: `pretrain imdb` on the embedded MiniLM, then
`finetune imdb --model runs/imdb-mlm`, then fill a mask."""

from __future__ import annotations

import json

import pytest
from conftest import run_bertcli as bertcli
from safetensors import safe_open

pytestmark = pytest.mark.integration


def test_pretrain_then_finetune_from_it(shared_data, tmp_path) -> None:
    train = shared_data / "imdb" / "train.csv"
    mlm, clf = tmp_path / "imdb-mlm", tmp_path / "imdb"
    small = ["--set", "data.max_train_samples=96", "--max-length", "64", "--batch-size", "8"]
    proc = bertcli(
        "pretrain", "imdb", "--model", "minilm", "--train", str(train), "--max-steps", "4",
        "-o", str(mlm), *small,
    )  # fmt: skip
    assert "embedded" in proc.stderr and "pre-training" in proc.stderr
    scores = json.loads((mlm / "metrics.json").read_text())["validation"]
    assert scores["masked_tokens"] > 0 and scores["perplexity"] > 1
    with safe_open(str(mlm / "model.safetensors"), "pt") as weights:
        keys = set(weights.keys())
    assert "bert.pooler.dense.weight" in keys and "cls.predictions.bias" in keys

    bertcli(
        "finetune", "imdb", "--model", str(mlm), "--train", str(train), "--max-steps", "2",
        "-o", str(clf), *small,
    )  # fmt: skip
    assert json.loads((clf / "bertcli.json").read_text())["task"] == "classification"

    out = bertcli("predict", "--model", str(mlm), "-", stdin="What a [MASK] movie !\n").stdout
    fills = json.loads(out)["fills"][0]
    assert len(fills) == 5 and all(f["token"] for f in fills)
