"""Tagging end to end on the tiny model: CoNLL in, entities out, linear, CRF and span heads."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bertcli.cli import app
from bertcli.console import configure
from bertcli.evaluation import evaluate_model
from bertcli.finetune import finetune
from bertcli.predict import predict_records

HEADS = ("linear", "crf", "globalpointer")
NAMES = ("alice", "bob", "carol", "dave", "erin")
SURNAMES = ("smith", "jones", "brown")
CITIES = ("paris", "rome", "oslo", "lima")
FRAMES = (
    "{p} visited {c} .",
    "we saw {p} in {c} today",
    "{c} is where {p} lives",
    "the film was good and {p} liked it",
    "they went to {c} again",
)


def sentence(rng: random.Random) -> list[tuple[str, str]]:
    frame = rng.choice(FRAMES)
    out = []
    for word in frame.split():
        if word == "{p}":
            out.append((rng.choice(NAMES), "B-PER"))
            if rng.random() < 0.5:
                out.append((rng.choice(SURNAMES), "I-PER"))
        elif word == "{c}":
            out.append((rng.choice(CITIES), "B-LOC"))
        else:
            out.append((word, "O"))
    return out


def write_conll(path: Path, n: int, seed: int) -> Path:
    rng = random.Random(seed)
    lines = ["-DOCSTART- -X- -X- O", ""]
    for _ in range(n):
        lines += [f"{word} X X {tag}" for word, tag in sentence(rng)] + [""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tagging_runs(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One model per head trained on the same synthetic NER data."""
    from conftest import tiny_run_config

    root = tmp_path_factory.mktemp("tagging")
    train = write_conll(root / "train.txt", 160, 0)
    valid = write_conll(root / "valid.txt", 40, 1)
    runs = {"valid": valid}
    configure(quiet=True)
    try:
        for head in HEADS:
            config = tiny_run_config(
                tiny_model_dir,
                train,
                root / head,
                {
                    "task": "tagging",
                    "tagging.head": head,
                    "data.validation": str(valid),
                    "train.max_steps": 120,
                    "train.batch_size": 16,
                },
            )
            runs[head] = finetune(config)
    finally:
        configure(quiet=False)
    return runs


@pytest.mark.parametrize("head", HEADS)
def test_tagger_learns_entities_and_reports_entity_f1(tagging_runs, head) -> None:
    result = tagging_runs[head]
    validation = result.metrics["validation"]
    assert validation["f1_conlleval"] >= 0.9, validation
    assert set(validation["per_type"]) == {"PER", "LOC"}
    saved = json.loads((result.output_dir / "metrics.json").read_text())
    assert saved["validation"]["f1_conlleval"] == validation["f1_conlleval"]
    meta = json.loads((result.output_dir / "bertcli.json").read_text())
    assert meta["task"] == "tagging" and meta["tagging"]["head"] == head
    assert meta["labels"] == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


@pytest.mark.parametrize("head", HEADS)
def test_saved_tagger_reloads_for_eval_with_the_same_scores(tagging_runs, head) -> None:
    result = tagging_runs[head]
    configure(quiet=True)
    try:
        scores = evaluate_model(result.output_dir, [str(tagging_runs["valid"])], precision="no")
    finally:
        configure(quiet=False)
    (again,) = scores.values()
    assert again["f1_conlleval"] == pytest.approx(result.metrics["validation"]["f1_conlleval"])
    assert again["f1_strict"] == pytest.approx(result.metrics["validation"]["f1_strict"])


def test_predict_prints_entities_with_offsets_into_each_line(tagging_runs, tmp_path) -> None:
    lines = ["Alice Smith visited Paris .", "", "they went to  Rome again", "bob lives in oslo"]
    source = tmp_path / "in.txt"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = [json.loads(x) for x in predict_records(source, tagging_runs["crf"].output_dir)]
    assert len(out) == len(lines)  # blank lines too: one output per input line
    found = [[(e["type"], e["text"]) for e in row["entities"]] for row in out]
    assert found[0] == [("PER", "Alice Smith"), ("LOC", "Paris")]
    assert found[1] == []
    assert ("LOC", "Rome") in found[2]
    for line, row in zip(lines, out, strict=True):
        for entity in row["entities"]:
            assert line[entity["start"] : entity["end"]] == entity["text"]
            assert 0.0 < entity["score"] <= 1.0


def test_predict_from_token_jsonl_passes_ids_through_and_writes_conll(tagging_runs, tmp_path):
    source = tmp_path / "in.jsonl"
    rows = [{"id": 7, "tokens": ["carol", "visited", "lima"]}, {"id": 8, "tokens": ["rome"]}]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    model = tagging_runs["linear"].output_dir
    out = [json.loads(x) for x in predict_records(source, model)]
    assert [row["id"] for row in out] == [7, 8]
    first = out[0]["entities"]
    assert [(e["type"], e["text"], e["start"], e["end"]) for e in first] == [
        ("PER", "carol", 0, 5),
        ("LOC", "lima", 14, 18),
    ]
    conll = "".join(predict_records(source, model, output_format="conll"))
    assert conll == "carol\tB-PER\nvisited\tO\nlima\tB-LOC\n\nrome\tB-LOC\n\n"


def test_saved_tagger_loads_in_transformers(tagging_runs) -> None:
    from transformers import pipeline

    ner = pipeline(
        "token-classification",
        model=str(tagging_runs["linear"].output_dir),
        aggregation_strategy="first",
    )
    groups = {(g["entity_group"], g["word"]) for g in ner("alice visited paris .")}
    assert {("PER", "alice"), ("LOC", "paris")} <= groups


def test_crf_learns_transitions_that_respect_bio(tagging_runs) -> None:
    from bertcli.predictor import task_from_meta

    model_dir = tagging_runs["crf"].output_dir
    meta = json.loads((model_dir / "bertcli.json").read_text())
    task = task_from_meta(meta, None, model_dir)
    assert task.crf is not None
    labels = meta["labels"]
    o, i_per = labels.index("O"), labels.index("I-PER")
    assert task.crf.transitions[o, i_per] < -1000  # banned: I-PER cannot follow O


def test_malformed_conll_line_is_named_without_a_traceback(tiny_model_dir, tmp_path) -> None:
    train = tmp_path / "train.txt"
    train.write_text("EU B-ORG\nrejects O\nGerman\n\n", encoding="utf-8")
    result = CliRunner().invoke(
        app,
        [
            "finetune",
            "conll2003",
            "--model",
            str(tiny_model_dir),
            "--train",
            str(train),
            "--output-dir",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 2
    assert "train.txt:line 3" in result.output and "Traceback" not in result.output


def test_head_lr_gives_the_head_its_own_rate(tiny_model_dir) -> None:
    from bertcli.config import TrainConfig
    from bertcli.modeling.model import build_model
    from bertcli.optim import make_optimizer

    model, _ = build_model(str(tiny_model_dir), ["O", "B-X", "I-X"], task="tagging", crf=True)
    optimizer = make_optimizer(model, TrainConfig(lr=1e-4), head_lr=2e-3)
    rates = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    assert rates[id(model.crf.transitions)] == 2e-3
    assert rates[id(model.hf.classifier.weight)] == 2e-3
    assert rates[id(model.hf.bert.embeddings.word_embeddings.weight)] == 1e-4


@pytest.mark.parametrize("head", HEADS)
def test_onnx_export_predicts_the_same_entities_without_torch(tagging_runs, head, tmp_path):
    import subprocess
    import sys

    from bertcli.export import export_model

    model = tagging_runs[head].output_dir
    exported = tmp_path / "onnx"
    report = export_model(model, exported, fmt="onnx", check_data=tagging_runs["valid"])
    assert report.max_abs_diff is not None and report.max_abs_diff < 1e-3
    assert report.label_agreement == 1.0
    source = tmp_path / "in.txt"
    source.write_text("alice smith visited paris .\nwe saw dave in oslo today\n", encoding="utf-8")
    expected = [json.loads(x) for x in predict_records(source, model, precision="no")]
    code = (
        "import sys, json; from bertcli.predict import predict_records; "
        f"print(json.dumps([json.loads(x) for x in predict_records({str(source)!r}, "
        f"{str(exported)!r})])); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    got, torch_loaded = out.stdout.splitlines()
    assert torch_loaded == "False"
    got_rows = json.loads(got)
    for want, have in zip(expected, got_rows, strict=True):
        assert [(e["type"], e["start"], e["end"]) for e in have["entities"]] == [
            (e["type"], e["start"], e["end"]) for e in want["entities"]
        ]
        for a, b in zip(want["entities"], have["entities"], strict=True):
            assert a["score"] == pytest.approx(b["score"], abs=1e-4)
