"""Tagging and QA splits from a hub dataset (faked in memory: the hub is unreachable here)."""

from __future__ import annotations

import datasets
import pytest

from bertcli.config import load_config
from bertcli.data.splits import load_data

HUB_TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch) -> dict:
    """`datasets.load_dataset(name, subset, split=...)` answered from in-memory datasets."""
    tables: dict = {}

    def load_dataset(name, subset=None, split=None):
        return tables[(name, split)]

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.setattr("bertcli.hub.hub_reachable", lambda: True)
    return tables


def test_hub_tag_ids_are_named_by_the_datasets_class_labels(fake_hub: dict) -> None:
    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=HUB_TAGS)),
        }
    )
    rows = {
        "tokens": [["Angela", "Merkel", "in", "Paris"], ["Rome", "again"]],
        "ner_tags": [[1, 2, 0, 3], [3, 0]],
    }
    for split in ("train", "validation"):
        fake_hub[("org/ner", split)] = datasets.Dataset.from_dict(rows, features=features)
    config = load_config(
        None,
        {"task": "tagging", "data.dataset": "org/ner", "data.train": "train",
         "data.validation": "validation", "data.test": None},
    )  # fmt: skip
    data = load_data(config)
    assert data.label_names == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    first = data.train[0]
    assert first.words == ["Angela", "Merkel", "in", "Paris"]
    assert [data.label_names[t] for t in first.tags] == ["B-PER", "I-PER", "O", "B-LOC"]
    assert first.text[slice(*first.spans[3])] == "Paris"


def test_hub_squad_rows_become_checked_qa_examples(fake_hub: dict) -> None:
    context = "Angela Merkel visited Paris on Tuesday."
    rows = {
        "id": ["a", "b"],
        "title": ["t", "t"],
        "context": [context, context],
        "question": ["Who visited Paris?", "Where did she go?"],
        "answers": [
            {"text": ["Angela Merkel"], "answer_start": [0]},
            {"text": ["Paris"], "answer_start": [22]},
        ],
    }
    for split in ("train", "validation"):
        fake_hub[("org/squad", split)] = datasets.Dataset.from_dict(rows)
    config = load_config(
        None,
        {"task": "qa", "data.dataset": "org/squad", "data.train": "train",
         "data.validation": "validation", "data.test": None, "train.max_length": 384},
    )  # fmt: skip
    data = load_data(config)
    assert [e.answers for e in data.validation] == [["Angela Merkel"], ["Paris"]]
    assert data.label_names == []
    rows["answers"][1] = {"text": ["Paris"], "answer_start": [3]}  # wrong offset
    fake_hub[("org/squad", "train")] = datasets.Dataset.from_dict(rows)
    with pytest.raises(Exception, match=r"row 2.*\bb\b"):
        load_data(config)
