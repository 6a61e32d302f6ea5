"""Strict IOB2 entity metrics against hand-computed cases and, when installed, seqeval."""

from __future__ import annotations

import json
import random

import pytest

from bertcli.errors import DataError
from bertcli.metrics import EntityF1, entity_metrics
from bertcli.metrics.seqeval import get_entities


def _tags(text: str) -> list[str]:
    """Space-separated tags, so that aligned hand cases stay readable."""
    return text.split()


def test_get_entities_strict() -> None:
    tags = _tags("B-PER I-PER O B-LOC B-LOC I-LOC I-PER O I-ORG I-ORG B-MISC")
    assert get_entities(tags) == [
        ("PER", 0, 1),
        ("LOC", 3, 3),
        ("LOC", 4, 5),
        # the I-PER after LOC and the I-ORG run open nothing in strict mode
        ("MISC", 10, 10),
    ]
    assert get_entities([]) == []
    assert get_entities(["O", "O"]) == []
    assert get_entities(["B-PER", "I-LOC"]) == [("PER", 0, 0)]


def test_get_entities_rejects_non_iob2_tags() -> None:
    with pytest.raises(DataError, match="token 2: 'S-PER' is not an IOB2 tag"):
        get_entities(["O", "S-PER"])


def _scores(result: dict, rules: str = "strict") -> tuple[float, float, float]:
    return tuple(result[f"{key}_{rules}"] for key in ("precision", "recall", "f1"))  # type: ignore[return-value]


def test_perfect_prediction() -> None:
    refs = [["B-PER", "I-PER", "O"], ["B-LOC", "O", "B-ORG"]]
    result = entity_metrics(refs, refs)
    assert _scores(result) == (1.0, 1.0, 1.0)
    assert result["num_sentences"] == 2
    assert result["per_type"]["PER"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert set(result["per_type"]) == {"LOC", "ORG", "PER"}


def test_one_missed_entity() -> None:
    refs = [["B-PER", "I-PER", "O", "B-LOC"]]
    preds = [["B-PER", "I-PER", "O", "O"]]
    result = entity_metrics(preds, refs)
    assert _scores(result) == pytest.approx((1.0, 0.5, 2 / 3))
    assert result["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_wrong_type_counts_as_miss_and_false_alarm() -> None:
    result = entity_metrics([["B-ORG", "I-ORG", "O"]], [["B-PER", "I-PER", "O"]])
    assert _scores(result) == (0.0, 0.0, 0.0)
    assert result["per_type"]["ORG"]["support"] == 0
    assert result["per_type"]["PER"]["support"] == 1


def test_wrong_boundary_is_wrong() -> None:
    refs = [["B-PER", "I-PER", "I-PER", "O", "B-LOC"]]
    preds = [["B-PER", "I-PER", "O", "O", "B-LOC"]]
    result = entity_metrics(preds, refs)
    assert _scores(result) == pytest.approx((0.5, 0.5, 0.5))
    assert result["per_type"]["PER"]["f1"] == 0.0
    assert result["per_type"]["LOC"]["f1"] == 1.0


def test_stray_inside_tag_opens_no_entity() -> None:
    refs = [["O", "B-PER", "I-PER", "O"]]
    # I-PER after O starts an entity in seqeval's default mode, but not in strict mode.
    preds = [["O", "I-PER", "I-PER", "O"]]
    result = entity_metrics(preds, refs)
    assert _scores(result) == (0.0, 0.0, 0.0)
    strict = {"PER": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}}
    assert result["per_type_strict"] == strict
    # A stray I- in the reference is not a gold entity either.
    assert entity_metrics([["B-PER"]], [["I-PER"]])["per_type_strict"]["PER"]["support"] == 0
    # conlleval (the main score) opens an entity at I-PER after O: the prediction is right.
    assert _scores(result, "conlleval") == (1.0, 1.0, 1.0)
    assert entity_metrics([["B-PER"]], [["I-PER"]])["per_type"]["PER"]["support"] == 1


def test_conlleval_and_strict_differ_only_where_an_inside_tag_opens_an_entity() -> None:
    refs = [["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG", "I-ORG"]]
    # I-LOC after O and I-MISC after ORG open entities only under conlleval's rules
    preds = [["B-PER", "I-PER", "O", "I-LOC", "O", "B-ORG", "I-MISC"]]
    result = entity_metrics(preds, refs)
    # strict: PER right; LOC never opened; ORG is (5, 5) vs gold (5, 6): 1 of 2 predicted, 1 of 3
    assert _scores(result) == pytest.approx((1 / 2, 1 / 3, 2 * 1 / (2 + 3)))
    # conlleval: PER and LOC right; ORG (5, 5) and MISC (6, 6) wrong: 2 of 4 predicted, 2 of 3
    assert _scores(result, "conlleval") == pytest.approx((2 / 4, 2 / 3, 2 * 2 / (4 + 3)))
    assert set(result["per_type"]) == {"PER", "LOC", "ORG", "MISC"}


def test_no_entities_anywhere_is_zero_not_nan() -> None:
    result = entity_metrics([["O", "O"]], [["O", "O"]])
    assert _scores(result) == (0.0, 0.0, 0.0)
    assert result["per_type"] == {}


def test_result_is_plain_json() -> None:
    result = entity_metrics([["B-PER", "O"], ["B-LOC"]], [["B-PER", "O"], ["O"]])
    assert all(type(value) is float for value in _scores(result))
    assert json.loads(json.dumps(result)) == result


def test_mismatched_lengths_and_bad_tags_are_data_errors() -> None:
    with pytest.raises(DataError, match="2 predictions but 1 references"):
        entity_metrics([["O"], ["O"]], [["O"]])
    with pytest.raises(DataError, match="sentence 2: 1 predicted tags but 2 reference tags"):
        entity_metrics([["O"], ["O"]], [["O"], ["O", "O"]])
    with pytest.raises(DataError, match="no examples"):
        entity_metrics([], [])
    with pytest.raises(DataError, match="'E-PER', 'S-PER' are not IOB2"):
        entity_metrics([["S-PER", "E-PER"]], [["O", "O"]])


def test_metric_runs_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    result = EntityF1(keep_in_memory=True).compute(
        predictions=[["B-PER", "I-PER", "O"]], references=[["B-PER", "O", "O"]]
    )
    assert result is not None
    assert (result["precision"], result["recall"], result["f1"]) == (0.0, 0.0, 0.0)


def _random_tags(rng: random.Random, length: int) -> list[str]:
    # Any IOB2 tag in any order, so stray I- and type switches are common.
    return [rng.choice(["O", "O", "B-A", "I-A", "B-B", "I-B", "B-C", "I-C"]) for _ in range(length)]


# seqeval's macro average warns on a batch with no entities at all; that case is still checked.
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_matches_seqeval_strict_on_random_cases() -> None:
    pytest.importorskip("seqeval")
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    rng = random.Random(0)
    for _ in range(100):
        refs = [_random_tags(rng, rng.randrange(1, 9)) for _ in range(rng.randrange(1, 5))]
        preds = [
            [tag if rng.random() < 0.7 else rng.choice(["O", "B-A", "I-A", "B-B"]) for tag in ref]
            for ref in refs
        ]
        ours = entity_metrics(preds, refs)
        theirs = classification_report(
            refs, preds, mode="strict", scheme=IOB2, output_dict=True, zero_division=0
        )
        micro = theirs.pop("micro avg")
        assert _scores(ours) == pytest.approx(
            (micro["precision"], micro["recall"], micro["f1-score"])
        )
        for name in ("macro avg", "weighted avg"):
            theirs.pop(name)
        fields = {"precision": "precision", "recall": "recall", "f1": "f1-score"}
        ours_flat = {
            (kind, ours_key): scores[ours_key]
            for kind, scores in ours["per_type_strict"].items()
            for ours_key in (*fields, "support")
        }
        theirs_flat = {
            (kind, ours_key): scores[fields.get(ours_key, ours_key)]
            for kind, scores in theirs.items()
            for ours_key in (*fields, "support")
        }
        assert ours_flat == pytest.approx(theirs_flat)
