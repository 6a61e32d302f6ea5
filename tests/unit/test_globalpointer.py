"""GlobalPointer span head: loss, decoder and RoPE against brute force; nested entities from a
span JSONL file trained, predicted and scored on the tiny model."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CLI_ENV
from typer.testing import CliRunner

from bertcli.aggregate import decode_spans
from bertcli.cli import app
from bertcli.console import configure
from bertcli.data.tagging import spans_to_tags
from bertcli.data.word_windows import IGNORE
from bertcli.errors import DataError
from bertcli.modeling.globalpointer import (
    MASKED,
    GlobalPointer,
    rotary,
    span_loss,
    span_targets,
)


def test_span_loss_equals_brute_force() -> None:
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(2, 5, 5, 3, generator=gen) * 3
    targets = torch.randint(-1, 2, (2, 5, 5, 3), generator=gen).float()
    want = []
    for b in range(2):
        for t in range(3):
            cells = [(i, j) for i in range(5) for j in range(5)]
            neg = [scores[b, i, j, t].item() for i, j in cells if targets[b, i, j, t] == 0]
            pos = [scores[b, i, j, t].item() for i, j in cells if targets[b, i, j, t] == 1]
            want.append(
                math.log(1 + sum(math.exp(s) for s in neg))
                + math.log(1 + sum(math.exp(-s) for s in pos))
            )
    assert span_loss(scores, targets).item() == pytest.approx(sum(want) / len(want), rel=1e-5)


def test_decoder_equals_brute_force_with_nested_spans() -> None:
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(7, 7, 2)).astype(np.float32)
    positions, owned = [1, 2, 4, 5, 6], [0, 1, 2, 3]  # word 4 belongs to another window
    want = {
        (a, b, t)
        for a in owned
        for b in range(a, len(positions))
        for t in range(2)
        if scores[positions[a], positions[b], t] > 0
    }
    got = decode_spans(scores, positions, owned)
    assert {(a, b, t) for a, b, t, _ in got} == want
    assert any(
        a1 <= a2 <= b2 <= b1 and (a1, b1) != (a2, b2) for a1, b1, *_ in got for a2, b2, *_ in got
    )
    for a, b, t, p in got:
        assert p == pytest.approx(
            1 / (1 + math.exp(-scores[positions[a], positions[b], t])), abs=1e-6
        )


def test_rope_scores_depend_on_relative_position_only() -> None:
    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 1, 8).repeat(1, 12, 1, 1), torch.randn(1, 1, 1, 8).repeat(1, 12, 1, 1)
    rq, rk = rotary(q)[0, :, 0], rotary(k)[0, :, 0]  # the same vectors at every position
    assert (rq[2] @ rk[5]).item() == pytest.approx((rq[6] @ rk[9]).item(), abs=1e-5)
    assert (rq[2] @ rk[5]).item() != pytest.approx((rq[2] @ rk[8]).item(), abs=1e-3)


def test_head_masks_spans_that_end_before_they_start_and_padding() -> None:
    head = GlobalPointer(16, 2, dropout=0.0)
    mask = torch.tensor([[1, 1, 1, 0]])
    scores = head(torch.randn(1, 4, 16), mask)
    assert scores.shape == (1, 4, 4, 2)
    assert (scores[0, 2, 1] == MASKED).all() and (scores[0, 0, 3] == MASKED).all()
    assert (scores[0, 0, 2] != MASKED).all()


def test_span_targets_by_hand() -> None:
    labels = torch.tensor([[IGNORE, 0, IGNORE, 3, 4, IGNORE]])  # words start at 1, 3, 4
    targets = span_targets(labels, [[(1, 3, 1), (3, 3, 0)]], types=2)
    assert targets.shape == (1, 6, 6, 2)
    candidates = {(i, j) for i in (1, 3, 4) for j in (1, 3, 4) if i <= j}
    for i in range(6):
        for j in range(6):
            expected = [0.0 if (i, j) in candidates else -1.0] * 2
            if (i, j) == (1, 3):
                expected[1] = 1.0
            if (i, j) == (3, 3):
                expected[0] = 1.0
            assert targets[0, i, j].tolist() == expected, (i, j)


def test_spans_to_tags_keeps_the_longest_of_overlapping_entities() -> None:
    entities = [("LOC", 2, 2), ("ORG", 0, 2), ("PER", 4, 4)]
    assert spans_to_tags(entities, 5) == ["B-ORG", "I-ORG", "I-ORG", "O", "B-PER"]


# --------------------------------------------------------------------------- nested, end to end

CITIES = ("paris", "rome", "oslo")


def nested_rows(n: int, seed: int) -> list[dict]:
    """'bank of CITY' is an ORG holding a LOC; a lone CITY is a LOC; a name is a PER."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        city, name = rng.choice(CITIES), rng.choice(("alice", "bob"))
        if rng.random() < 0.5:
            tokens = [name, "works", "at", "bank", "of", city]
            spans = [[0, 0, "PER"], [3, 5, "ORG"], [5, 5, "LOC"]]
        else:
            tokens = [name, "went", "to", city, "today"]
            spans = [[0, 0, "PER"], [3, 3, "LOC"]]
        rows.append({"tokens": tokens, "spans": spans})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def nested_run(tiny_model_dir, tmp_path_factory, run_config):
    from bertcli.finetune import finetune

    root = tmp_path_factory.mktemp("nested")
    train = write_jsonl(root / "train.jsonl", nested_rows(160, 0))
    valid = write_jsonl(root / "valid.jsonl", nested_rows(40, 1))
    settings = {
        "task": "tagging",
        "tagging.head": "globalpointer",
        "data.validation": str(valid),
        "train.max_steps": 150,
        "train.batch_size": 16,
    }
    configure(quiet=True)
    try:
        result = finetune(run_config(tiny_model_dir, train, root / "gp", settings))
    finally:
        configure(quiet=False)
    return result, valid


def test_nested_entities_are_learnt_and_predicted(nested_run, tmp_path) -> None:
    from bertcli.predict import predict_records

    result, _ = nested_run
    validation = result.metrics["validation"]
    assert validation["f1_conlleval"] >= 0.9, validation
    assert validation["f1_conlleval"] == validation["f1_strict"]  # sets: one rule
    assert set(validation["per_type"]) == {"LOC", "ORG", "PER"}
    meta = json.loads((result.output_dir / "bertcli.json").read_text())
    assert meta["tagging"]["head"] == "globalpointer"
    source = tmp_path / "in.txt"
    source.write_text("bob works at bank of rome\n", encoding="utf-8")
    (row,) = [json.loads(r) for r in predict_records(source, result.output_dir, precision="no")]
    found = {(e["type"], e["text"]) for e in row["entities"]}
    assert {("ORG", "bank of rome"), ("LOC", "rome")} <= found, row
    org = next(e for e in row["entities"] if e["type"] == "ORG")
    assert "bob works at bank of rome"[org["start"] : org["end"]] == "bank of rome"
    assert all(0 < e["score"] <= 1 for e in row["entities"])


def test_eval_of_the_saved_span_model_scores_nested_spans(nested_run) -> None:
    from bertcli.evaluation import evaluate_model

    result, valid = nested_run
    configure(quiet=True)
    try:
        (scores,) = evaluate_model(result.output_dir, [str(valid)], precision="no").values()
    finally:
        configure(quiet=False)
    assert scores["f1_conlleval"] == pytest.approx(result.metrics["validation"]["f1_conlleval"])
    assert scores["per_type"]["LOC"]["support"] == sum(
        1 for r in nested_rows(40, 1) for s in r["spans"] if s[2] == "LOC"
    )


def test_linear_head_refuses_nested_spans_naming_the_row(tiny_model_dir, tmp_path, run_config):
    from bertcli.finetune import finetune

    train = write_jsonl(tmp_path / "train.jsonl", nested_rows(40, 0))
    config = run_config(tiny_model_dir, train, tmp_path / "out", {"task": "tagging"})
    with pytest.raises(DataError, match=r"train\.jsonl:line \d+: entities nest or overlap"):
        finetune(config)


def test_bad_span_is_named(tiny_model_dir, tmp_path, run_config) -> None:
    from bertcli.finetune import finetune

    rows = [*nested_rows(20, 0), {"tokens": ["a", "b"], "spans": [[1, 3, "PER"]]}]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    config = run_config(
        tiny_model_dir,
        train,
        tmp_path / "out",
        {"task": "tagging", "tagging.head": "globalpointer"},
    )
    with pytest.raises(
        DataError, match=r"train\.jsonl:line 21: span 1 of 'spans' is \[1, 3, 'PER'\]"
    ):
        finetune(config)


def test_cli_head_flag_trains_a_span_head(tiny_model_dir, tmp_path) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", nested_rows(40, 0))
    args = f"finetune conll2003 --model {tiny_model_dir} --train {train} --max-steps 3"
    args += f" --head globalpointer --max-length 96 --precision no -o {tmp_path / 'run'}"
    args += " --set data.dataset=null --set data.validation_fraction=0.25"
    result = CliRunner().invoke(app, args.split(), env=CLI_ENV)
    assert result.exit_code == 0, result.stderr
    meta = json.loads((tmp_path / "run" / "bertcli.json").read_text())
    assert meta["tagging"]["head"] == "globalpointer"
