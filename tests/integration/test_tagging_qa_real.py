"""Tagging and QA through the real CLI on real data (CoNLL-2003, SQuAD) with the embedded MiniLM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_bertcli as bertcli

pytestmark = pytest.mark.integration

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def head_sentences(src: Path, dst: Path, n: int) -> Path:
    """The first `n` sentences of a CoNLL file, unchanged."""
    kept, count = [], 0
    for line in src.read_text(encoding="utf-8").splitlines():
        kept.append(line)
        if not line.strip():
            count += 1
            if count >= n:
                break
    dst.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return dst


def test_ner_on_real_conll_finds_people_and_places(tmp_path: Path) -> None:
    data = SHARED / "conll2003"
    if not data.is_dir():
        pytest.skip(f"{data} not found")
    train = head_sentences(data / "train.txt", tmp_path / "train.txt", 3000)
    valid = head_sentences(data / "valid.txt", tmp_path / "valid.txt", 400)
    out = tmp_path / "ner"
    bertcli(
        "--quiet", "finetune", "conll2003", "--model", "minilm", "--train", str(train),
        "--validation", str(valid), "--max-steps", "150", "--crf", "--output-dir", str(out),
    )  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["validation"]["f1_conlleval"] > 0.7, metrics["validation"]
    line = "Angela Merkel visited Paris on Tuesday."
    (row,) = [json.loads(x) for x in bertcli("predict", "--model", str(out), "-", stdin=line + "\n")
              .stdout.splitlines()]  # fmt: skip
    found = {(e["type"], e["text"]) for e in row["entities"]}
    assert {("PER", "Angela Merkel"), ("LOC", "Paris")} <= found
    for entity in row["entities"]:
        assert line[entity["start"] : entity["end"]] == entity["text"]


def test_real_squad_files_read_and_score(tmp_path: Path) -> None:
    """Both real SQuAD files load in full, every answer found at its answer_start."""
    data = SHARED / "squad"
    if not data.is_dir():
        pytest.skip(f"{data} not found")
    from bertcli.data.squad import read_squad

    train, dev = read_squad(data / "train.json"), read_squad(data / "dev.json")
    assert (len(train.examples), len(dev.examples)) == (5740, 1190)
    assert train.skipped_answers == dev.skipped_answers == 0
    for example in dev.examples[:200]:
        start = example.answer_starts[0]
        assert example.context[start : start + len(example.answers[0])] == example.answers[0]
