"""Reading SQuAD v1.1/v2.0 JSON, flat JSONL and hub rows, with answers checked against contexts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bertcli.data.squad import QAExample, read_squad, records_to_examples
from bertcli.errors import DataError

CONTEXT = "Denver Broncos won Super Bowl 50 in Santa Clara."


def qa(qid: str, question: str, *answers: tuple[str, int], **extra: object) -> dict:
    return {
        "id": qid,
        "question": question,
        "answers": [{"text": text, "answer_start": start} for text, start in answers],
        **extra,
    }


def squad_json(path: Path, paragraphs: list[dict], version: str = "1.1") -> Path:
    document = {"version": version, "data": [{"title": "Super_Bowl_50", "paragraphs": paragraphs}]}
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def jsonl(path: Path, rows: list[dict | str]) -> Path:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_nested_v1_reads_every_question_with_its_answers(tmp_path: Path) -> None:
    path = squad_json(
        tmp_path / "dev.json",
        [
            {
                "context": CONTEXT,
                "qas": [
                    qa("q1", "Who won?", ("Denver Broncos", 0), ("Broncos", 7)),
                    qa("q2", "Where?", ("Santa Clara", 36)),
                ],
            },
            {
                "context": "Paris is in France.",
                "qas": [qa("q3", "Where is Paris?", ("France", 12))],
            },
        ],
    )
    report = read_squad(path)
    assert [ex.id for ex in report.examples] == ["q1", "q2", "q3"]
    first = report.examples[0]
    assert first.answers == ["Denver Broncos", "Broncos"]
    assert first.answer_starts == [0, 7]
    assert first.context == CONTEXT
    assert first.location == f"{path}:id q1"
    assert not first.impossible
    assert first.first_span() == (0, 14)
    assert report.examples[2].context == "Paris is in France."
    assert report.skipped_answers == 0
    assert report.notice() is None


def test_nested_v2_unanswerable_questions_ignore_plausible_answers(tmp_path: Path) -> None:
    impossible = qa("q2", "Who lost?", is_impossible=True)
    impossible["plausible_answers"] = [{"text": "Santa Clara", "answer_start": 36}]
    path = squad_json(
        tmp_path / "dev-v2.json",
        [{"context": CONTEXT, "qas": [qa("q1", "Who won?", ("Broncos", 7)), impossible]}],
        version="v2.0",
    )
    examples = read_squad(path).examples
    assert [ex.impossible for ex in examples] == [False, True]
    assert examples[1].answers == [] and examples[1].first_span() is None


def test_v2_question_marked_impossible_but_with_answers_is_an_error(tmp_path: Path) -> None:
    question = qa("q9", "Who won?", ("Broncos", 7), is_impossible=True)
    path = squad_json(tmp_path / "dev.json", [{"context": CONTEXT, "qas": [question]}])
    with pytest.raises(DataError, match=r"dev\.json:id q9: is_impossible is true but 1 answers"):
        read_squad(path)


def test_jsonl_accepts_hub_and_list_answer_layouts(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path / "train.jsonl",
        [
            {
                "id": "a",
                "question": "Who won?",
                "context": CONTEXT,
                "answers": {"text": ["Broncos", "Denver Broncos"], "answer_start": [7, 0]},
            },
            {
                "id": "b",
                "question": "Where?",
                "context": CONTEXT,
                "answers": [{"text": "Santa Clara", "answer_start": 36}],
            },
            "",  # blank lines are allowed in JSONL
            {
                "id": "c",
                "question": "Who lost?",
                "context": CONTEXT,
                "answers": {"text": [], "answer_start": []},
            },
        ],
    )
    examples = read_squad(path).examples
    assert [ex.id for ex in examples] == ["a", "b", "c"]
    assert examples[0].answers == ["Broncos", "Denver Broncos"]
    assert examples[0].answer_starts == [7, 0]
    assert examples[1].first_span() == (36, 47)
    assert examples[2].impossible
    assert examples[1].location == f"{path}:line 2 (id b)"


def test_mismatched_answer_is_reported_with_file_and_id(tmp_path: Path) -> None:
    # "Broncos" starts at 7, not 8: an off-by-one offset, as in hand-edited data.
    questions = [qa("q1", "Who won?", ("Denver", 0)), qa("56be4db0acb8", "Who?", ("Broncos", 8))]
    path = squad_json(tmp_path / "dev.json", [{"context": CONTEXT, "qas": questions}])
    with pytest.raises(DataError) as raised:
        read_squad(path)
    message = str(raised.value)
    assert f"{path}:id 56be4db0acb8" in message
    assert "'Broncos' is not at answer_start 8" in message
    assert "occurs at 7" in message
    assert "on_mismatch='skip'" in message
    assert "\n" not in message


def test_skip_mode_drops_bad_answers_and_counts_them(tmp_path: Path) -> None:
    questions = [
        qa("keep", "Who won?", ("Denver Broncos", 0), ("Broncos", 3)),  # second answer is bad
        qa("drop", "Where?", ("Santa Clara", 30)),  # its only answer is bad
        qa("fine", "Which?", ("Super Bowl 50", 19)),
    ]
    path = squad_json(tmp_path / "dev.json", [{"context": CONTEXT, "qas": questions}])
    report = read_squad(path, on_mismatch="skip")
    assert [ex.id for ex in report.examples] == ["keep", "fine"]
    assert report.examples[0].answers == ["Denver Broncos"]
    assert report.skipped_answers == 2
    assert report.dropped_questions == 1
    assert "skipped 2 answers" in (report.notice() or "")


def test_malformed_jsonl_line_is_named(tmp_path: Path) -> None:
    good = {"id": "a", "question": "Who?", "context": CONTEXT, "answers": []}
    path = jsonl(tmp_path / "train.jsonl", [good, '{"id": "b", "question": '])
    with pytest.raises(DataError, match=r"train\.jsonl:line 2: invalid JSON"):
        read_squad(path)


def test_missing_fields_name_the_line_or_question(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "train.jsonl", [{"id": "a", "question": "Who?", "contxt": CONTEXT}])
    with pytest.raises(DataError, match=r"train\.jsonl:line 1: no column 'context'.*did you mean"):
        read_squad(path)

    answers = {"id": "a", "question": "Who?", "context": CONTEXT, "answers": [{"text": "x"}]}
    path = jsonl(tmp_path / "answers.jsonl", [answers])
    with pytest.raises(DataError, match=r"line 1 \(id a\) answer: no column 'answer_start'"):
        read_squad(path)

    nested = squad_json(tmp_path / "dev.json", [{"context": CONTEXT, "qas": [{"id": "q1"}]}])
    with pytest.raises(DataError, match=r"paragraph 1 question 1: no column 'question'"):
        read_squad(nested)

    bad_start = qa("q7", "Who?", ("Broncos", 7))
    bad_start["answers"][0]["answer_start"] = "7"
    nested = squad_json(tmp_path / "start.json", [{"context": CONTEXT, "qas": [bad_start]}])
    with pytest.raises(DataError, match=r"id q7: field 'answers.answer_start' must be"):
        read_squad(nested)


def test_duplicate_question_ids_are_an_error(tmp_path: Path) -> None:
    questions = [qa("q1", "Who won?", ("Broncos", 7)), qa("q1", "Where?", ("Santa Clara", 36))]
    path = squad_json(tmp_path / "dev.json", [{"context": CONTEXT, "qas": questions}])
    with pytest.raises(DataError, match=r"id q1: duplicate question id \(first seen at"):
        read_squad(path)


def test_unsupported_suffix_and_empty_document_are_errors(tmp_path: Path) -> None:
    csv_path = tmp_path / "dev.csv"
    csv_path.write_text("id,question\n1,who\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"must be \.json or \.jsonl"):
        read_squad(csv_path)
    empty = squad_json(tmp_path / "empty.json", [])
    with pytest.raises(DataError, match="has no questions"):
        read_squad(empty)


def test_records_to_examples_converts_hub_rows() -> None:
    rows = [
        {
            "id": "5733be28",
            "title": "Notre_Dame",
            "question": "Who won?",
            "context": CONTEXT,
            "answers": {"text": ["Broncos"], "answer_start": [7]},
        },
        {
            "id": 17,
            "question": "Where?",
            "context": CONTEXT,
            "answers": {"text": ["x"], "answer_start": [0]},
        },
    ]
    report = records_to_examples(rows, "squad:validation", on_mismatch="skip")
    assert report.examples == [
        QAExample(
            "5733be28",
            "Who won?",
            CONTEXT,
            ["Broncos"],
            [7],
            "squad:validation:row 1 (id 5733be28)",
        )
    ]
    assert report.skipped_answers == 1 and report.dropped_questions == 1
    with pytest.raises(DataError, match=r"squad:validation:row 2 \(id 17\): answer 'x'"):
        records_to_examples(rows, "squad:validation")


def test_records_to_examples_accepts_numpy_formatted_rows() -> None:
    import numpy as np

    answers = {"text": np.array(["Santa Clara"]), "answer_start": np.array([36])}
    row = {"id": "n", "question": "Where?", "context": CONTEXT, "answers": answers}
    (example,) = records_to_examples([row], "hub").examples
    assert (example.answers, example.answer_starts) == (["Santa Clara"], [36])
    assert type(example.answer_starts[0]) is int


def test_the_shared_squad_files_read_cleanly(shared_data: Path) -> None:
    folder = shared_data / "squad"
    if not (folder / "train.json").is_file():
        pytest.skip(f"no SQuAD data in {folder}")
    train, dev = read_squad(folder / "train.json"), read_squad(folder / "dev.json")
    assert (len(train.examples), len(dev.examples)) == (5740, 1190)
    assert train.skipped_answers == dev.skipped_answers == 0
    for example in dev.examples:
        for text, start in zip(example.answers, example.answer_starts, strict=True):
            assert example.context[start : start + len(text)] == text
