"""Extractive QA end to end on the tiny model: SQuAD JSON in, answer spans out."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bertcli.cli import app
from bertcli.console import configure
from bertcli.errors import DataError
from bertcli.evaluation import evaluate_model
from bertcli.finetune import finetune
from bertcli.predict import answer_question, predict_records

NAMES = ("alice", "bob", "carol", "dave")
CITIES = ("paris", "rome", "oslo", "lima", "berlin")
FILLER = "the film was good and the music was great . "


def squad_file(path: Path, n: int, seed: int, unanswerable: bool = False) -> Path:
    """SQuAD v1.1/v2.0 JSON: "where does NAME live ?" about "NAME lives in CITY ." among filler."""
    rng = random.Random(seed)
    paragraphs = []
    for i in range(n):
        person, home = rng.choice(NAMES), rng.choice(CITIES)
        before, after = FILLER * rng.randint(0, 2), FILLER * rng.randint(0, 1)
        context = f"{before}{person} lives in {home} . {after}".strip()
        if unanswerable and i % 3 == 0:
            missing = next(p for p in NAMES if p != person)
            qas = [{"id": f"q{i}", "question": f"where does {missing} live ?", "answers": [],
                    "is_impossible": True}]  # fmt: skip
        else:
            answer = {"text": home, "answer_start": len(before) + len(person) + 10}
            qas = [{"id": f"q{i}", "question": f"where does {person} live ?",
                    "answers": [answer]}]  # fmt: skip
        paragraphs.append({"context": context, "qas": qas})
    version = "v2.0" if unanswerable else "1.1"
    data = {"version": version, "data": [{"title": "t", "paragraphs": paragraphs}]}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def qa_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    from conftest import tiny_run_config

    root = tmp_path_factory.mktemp("qa")
    train = squad_file(root / "train.json", 200, 0)
    dev = squad_file(root / "dev.json", 40, 1)
    config = tiny_run_config(
        tiny_model_dir,
        train,
        root / "model",
        {
            "task": "qa",
            "data.validation": str(dev),
            "train.max_length": 48,
            "train.max_steps": 200,
            "train.batch_size": 16,
            "qa.stride": 8,
            "qa.max_question_tokens": 12,
        },
    )
    configure(quiet=True)
    try:
        result = finetune(config)
    finally:
        configure(quiet=False)
    return {"result": result, "dev": dev, "root": root}


def test_qa_learns_to_point_at_the_answer(qa_run) -> None:
    validation = qa_run["result"].metrics["validation"]
    assert validation["f1"] >= 60.0, validation
    assert validation["num_examples"] == 40
    meta = json.loads((qa_run["result"].output_dir / "bertcli.json").read_text())
    assert meta["task"] == "qa" and meta["qa"]["stride"] == 8


def test_saved_qa_model_reloads_for_eval_with_the_same_scores(qa_run) -> None:
    configure(quiet=True)
    try:
        scores = evaluate_model(qa_run["result"].output_dir, [str(qa_run["dev"])], precision="no")
    finally:
        configure(quiet=False)
    (again,) = scores.values()
    assert again["f1"] == pytest.approx(qa_run["result"].metrics["validation"]["f1"])


def test_predicted_spans_are_exact_slices_and_ids_pass_through(qa_run, tmp_path) -> None:
    rows = [
        {"id": "a", "question": "where does bob live ?", "context": "bob lives in  rome ."},
        {"id": "b", "question": "where does alice live ?", "context": "Alice lives in Oslo ."},
    ]
    source = tmp_path / "q.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = [json.loads(line) for line in predict_records(source, qa_run["result"].output_dir)]
    assert [o["id"] for o in out] == ["a", "b"]
    for row, answer in zip(rows, out, strict=True):
        assert set(answer) == {"id", "answer", "start", "end", "score"}
        assert row["context"][answer["start"] : answer["end"]] == answer["answer"]
    assert out[0]["answer"] == "rome"


def test_a_fact_at_the_end_of_a_long_document_is_found(qa_run, tmp_path) -> None:
    """The document spans dozens of windows; only the last one holds the answer."""
    context = FILLER * 60 + "carol lives in lima ."
    line = answer_question(qa_run["result"].output_dir, "where does carol live ?", context)
    answer = json.loads(line)
    assert answer["answer"] == "lima"
    assert context[answer["start"] : answer["end"]] == "lima"


def test_question_and_context_file_on_the_command_line(qa_run, tmp_path) -> None:
    document = tmp_path / "doc.txt"
    document.write_text("dave lives in berlin .", encoding="utf-8")
    model = str(qa_run["result"].output_dir)
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["predict", "--model", model, "--question", "where does dave live ?",
         "--context-file", str(document)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["answer"] == "berlin"
    half = runner.invoke(app, ["predict", "--model", model, "--question", "where ?"])
    assert half.exit_code == 2 and "--context-file" in half.output


def test_v2_tunes_and_saves_a_no_answer_threshold(tiny_model_dir, tmp_path) -> None:
    from conftest import tiny_run_config

    train = squad_file(tmp_path / "train.json", 60, 0, unanswerable=True)
    dev = squad_file(tmp_path / "dev.json", 30, 1, unanswerable=True)
    settings = {"task": "qa", "data.validation": str(dev), "train.max_length": 48,
                "train.max_steps": 10, "qa.stride": 8, "qa.max_question_tokens": 12}  # fmt: skip
    with pytest.raises(DataError, match=r"qa\.version_2"):
        finetune(tiny_run_config(tiny_model_dir, train, tmp_path / "v1", settings))
    settings["qa.version_2"] = True
    configure(quiet=True)
    try:
        result = finetune(tiny_run_config(tiny_model_dir, train, tmp_path / "v2", settings))
    finally:
        configure(quiet=False)
    validation = result.metrics["validation"]
    assert {"HasAns_f1", "NoAns_f1", "null_threshold"} <= set(validation)
    meta = json.loads((result.output_dir / "bertcli.json").read_text())
    assert meta["qa"]["null_threshold"] == validation["null_threshold"]


def test_onnx_export_gives_the_same_answers(qa_run, tmp_path) -> None:
    from bertcli.export import export_model

    model = qa_run["result"].output_dir
    exported = tmp_path / "onnx"
    report = export_model(model, exported, fmt="onnx", check_data=qa_run["dev"])
    assert report.max_abs_diff is not None and report.max_abs_diff < 1e-3
    assert report.label_agreement == 1.0
    context = FILLER * 20 + "erin lives in rome ."
    want = json.loads(answer_question(model, "where does erin live ?", context, precision="no"))
    have = json.loads(answer_question(exported, "where does erin live ?", context))
    assert (have["answer"], have["start"], have["end"]) == (
        want["answer"],
        want["start"],
        want["end"],
    )
    assert have["score"] == pytest.approx(want["score"], abs=1e-4)


def test_negatives_pair_questions_with_contexts_that_lack_their_answer(tmp_path) -> None:
    from bertcli.data.squad import read_squad, with_negatives

    examples = read_squad(squad_file(tmp_path / "t.json", 40, 3)).examples
    mixed = with_negatives(examples, 0.5, seed=1)
    negatives = mixed[len(examples) :]
    assert mixed[: len(examples)] == examples
    assert 15 <= len(negatives) <= 20  # a few may find no context without the answer
    for negative in negatives:
        original = next(e for e in examples if f"{e.id}#negative" == negative.id)
        assert negative.impossible and negative.question == original.question
        assert original.answers[0] not in negative.context
    assert with_negatives(examples, 0.5, seed=1) == mixed  # seeded
    assert with_negatives(examples, 0.0, seed=1) == examples


def test_joined_negatives_put_the_paragraph_anywhere_among_up_to_n_others(tmp_path) -> None:
    """qa.join_contexts: a question's paragraph joined with 1..n others that lack its answer, at
    a random place among them, the answer offsets still pointing at the answer."""
    from bertcli.data.squad import read_squad, with_negatives

    examples = read_squad(squad_file(tmp_path / "t.json", 60, 3)).examples
    joined = with_negatives(examples, 0.5, seed=1, join=3)[len(examples) :]
    assert 25 <= len(joined) <= 30
    counts, places = set(), set()
    for example in joined:
        original = next(e for e in examples if f"{e.id}#joined" == example.id)
        parts = example.context.split("\n\n")
        assert original.context in parts and original.question == example.question
        counts.add(len(parts) - 1)
        places.add(parts.index(original.context) == 0)
        for start, answer in zip(example.answer_starts, example.answers, strict=True):
            assert example.context[start : start + len(answer)] == answer
        shift = example.context.index(original.context)
        assert example.answer_starts == [s + shift for s in original.answer_starts]
        others = [p for p in parts if p != original.context]
        assert not any(original.answers[0] in other for other in others)
    assert counts == {1, 2, 3} and places == {True, False}


def test_eval_of_a_v1_model_on_questions_without_answers_is_refused(qa_run, tmp_path) -> None:
    v2_data = squad_file(tmp_path / "v2.json", 6, 3, unanswerable=True)
    with pytest.raises(DataError, match=r"question has no answer.*SQuAD v1\.1"):
        evaluate_model(qa_run["result"].output_dir, [str(v2_data)], precision="no")


def test_long_input_flags_are_refused_by_a_qa_model(qa_run) -> None:
    result = CliRunner().invoke(app, ["predict", "--model", str(qa_run["result"].output_dir),
                                      "--long-inputs", "chunk", "-"], input="{}\n")  # fmt: skip
    assert result.exit_code == 2
    assert "--long-inputs applies to classification models" in " ".join(result.stderr.split())
