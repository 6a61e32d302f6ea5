"""Token tagging without training: word splitting, alignment, long sentences, decoding, entities."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from bertcli.data.load import Example
from bertcli.data.tagging import join_words, split_words, text_example
from bertcli.data.word_windows import IGNORE, make_word_windows, spans
from bertcli.modeling.crf import CRF, bio_allowed
from bertcli.modeling.model import first_pieces
from bertcli.tasks import TaggingTask
from bertcli.viterbi import CrfScores, viterbi

LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
TRICKY = [
    ["Angela", "Merkel", "visited", "Paris", "."],
    ["1996-08-22", "3.5", "1,000", "(", "U.S.", ")", "!"],
    ["Zoë", "Ünal", "naïve", "東京", "🙂", "déjà-vu"],
    ["supercalifragilisticexpialidocious", "antidisestablishmentarianism"],
    ["a"],
]


def tags_for(words: list[str], seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, len(LABELS), len(words)).tolist()


def one_hot_logits(windows, n_labels: int) -> list[np.ndarray]:
    """Window logits that put all mass on each position's training label."""
    out = []
    for labels in windows.labels:
        logits = np.zeros((len(labels), n_labels), dtype=np.float32)
        for position, label in enumerate(labels):
            if label != IGNORE:
                logits[position, label] = 10.0
        out.append(logits)
    return out


@pytest.mark.parametrize("max_length", [64, 12])
def test_word_tags_survive_the_round_trip_through_wordpieces(tiny_tokenizer, max_length) -> None:
    """word tags -> wordpiece labels -> window logits -> word tags, for every tricky word."""
    tags = [tags_for(words, i) for i, words in enumerate(TRICKY)]
    windows = make_word_windows(tiny_tokenizer, TRICKY, tags, max_length=max_length, stride=3)
    assert max(windows.lengths()) <= max_length
    task = TaggingTask(LABELS, max_length)
    predicted = task.predict(
        one_hot_logits(windows, len(LABELS)), windows, [Example("")] * len(TRICKY)
    )
    assert [p.tags for p in predicted] == tags
    # Only the first piece of each word carries a label.
    for ids, labels in zip(windows.input_ids, windows.labels, strict=True):
        assert ids[0] == tiny_tokenizer.cls_token_id and labels[0] == IGNORE
        assert labels[-1] == IGNORE


def test_label_all_subwords_marks_continuations_inside_an_entity(tiny_tokenizer) -> None:
    task = TaggingTask(LABELS, 64, label_all_subwords=True)
    example = Example("paris", words=["paris"], spans=[(0, 5)], tags=[1])  # B-LOC, 5 pieces
    (labels,) = task.windows(tiny_tokenizer, [example]).labels
    assert labels == [IGNORE, 1, 2, 2, 2, 2, IGNORE]  # B-LOC then I-LOC on later pieces


def test_long_sentence_windows_own_every_word_once_with_most_context(tiny_tokenizer) -> None:
    words = ["ab", "cd"] * 20  # 2 pieces each: 80 pieces in all
    windows = make_word_windows(tiny_tokenizer, [words], None, max_length=20, stride=6)
    assert len(windows) > 4 and max(windows.lengths()) <= 20
    owned = sorted(word for pairs in windows.owned for word, _ in pairs)
    assert owned == list(range(40))  # no word dropped, none twice
    # The middle of a window owns its words; a word near a window's edge belongs to the next one.
    first = dict(windows.owned[0])
    assert 0 in first and max(first) < 8  # window 0 holds 9 words but gives its tail away


def test_a_word_longer_than_the_window_is_kept() -> None:
    assert spans([2, 30, 2], budget=10, stride=2) == [(0, 1), (1, 2), (2, 3)]
    assert spans([3, 3, 3], budget=10, stride=3) == [(0, 3)]
    ranges = spans([1] * 12, budget=5, stride=2)
    assert ranges[0] == (0, 5) and ranges[-1][1] == 12
    assert all(b[0] == a[1] - 2 for a, b in itertools.pairwise(ranges))  # 2 shared tokens


def test_words_that_normalise_to_nothing_still_get_a_tag(tiny_tokenizer) -> None:
    words = [["hello", "\u200b", "world"]]
    windows = make_word_windows(tiny_tokenizer, words, [[0, 1, 0]], max_length=32, stride=4)
    assert sorted(w for w, _ in windows.owned[0]) == [0, 1, 2]


def test_pretokenizer_splits_punctuation_and_keeps_offsets() -> None:
    text = "Angela Merkel visited Paris on Tuesday. U.S. GDP rose 3.5% (1996-08-22), Merkel's"
    words, offsets = split_words(text)
    assert words[:7] == ["Angela", "Merkel", "visited", "Paris", "on", "Tuesday", "."]
    for token in ("U.S.", "3.5", "%", "1996-08-22", "'s"):
        assert token in words
    assert all(text[a:b] == w for w, (a, b) in zip(words, offsets, strict=True))
    joined, join_spans = join_words(["New", "York"])
    assert joined == "New York" and join_spans == [(0, 3), (4, 8)]


def test_entities_have_character_offsets_into_the_input_line() -> None:
    line = "  Angela Merkel visited  Paris."
    example = text_example(line)
    task = TaggingTask(LABELS, 32)
    tags = [3, 4, 0, 1, 0]  # B-PER I-PER O B-LOC O
    probs = np.zeros((1, len(example.words), len(LABELS)), dtype=np.float32)
    probs[0, np.arange(len(tags)), tags] = 0.9
    predicted = [type("P", (), {"tags": tags, "probs": [0.9, 0.7, 0.99, 0.8, 0.99]})()]
    entities = task.format(predicted, 0, example)["entities"]
    assert [(e["type"], e["text"]) for e in entities] == [
        ("PER", "Angela Merkel"),
        ("LOC", "Paris"),
    ]
    for entity in entities:
        assert line[entity["start"] : entity["end"]] == entity["text"]
    assert entities[0]["score"] == pytest.approx(0.8)
    assert task.conll(predicted, 0, example).splitlines() == [
        "Angela\tB-PER",
        "Merkel\tI-PER",
        "visited\tO",
        "Paris\tB-LOC",
        ".\tO",
        "",
    ]


def _brute_force_best(emissions: np.ndarray, crf: CrfScores) -> list[int]:
    length, tags = emissions.shape
    best, best_path = -np.inf, None
    for path in itertools.product(range(tags), repeat=length):
        score = (
            crf.start[path[0]]
            + crf.end[path[-1]]
            + sum(emissions[i, t] for i, t in enumerate(path))
        )
        score += sum(crf.transitions[a, b] for a, b in itertools.pairwise(path))
        if score > best:
            best, best_path = score, list(path)
    return best_path


def test_numpy_viterbi_equals_brute_force_and_the_torch_crf() -> None:
    torch.manual_seed(0)
    allowed, start = bio_allowed(LABELS)
    crf = CRF(len(LABELS), allowed=allowed, start_allowed=start)
    with torch.no_grad():
        for p in (crf.transitions, crf.start_transitions, crf.end_transitions):
            p.normal_()
    scores = CrfScores.from_state({"crf." + k: v.numpy() for k, v in crf.state_dict().items()})
    rng = np.random.default_rng(1)
    lengths = [1, 4, 3, 5]
    emissions = rng.normal(size=(4, 5, len(LABELS))).astype(np.float32)
    paths = viterbi(emissions, lengths, scores)
    mask = torch.arange(5)[None, :] < torch.tensor(lengths)[:, None]
    assert paths == crf.decode(torch.from_numpy(emissions), mask)
    for row, n, path in zip(emissions, lengths, paths, strict=True):
        assert path == _brute_force_best(row[:n], scores)
        # The BIO ban holds: no I-X unless it continues X.
        for a, b in itertools.pairwise(["O", *(LABELS[t] for t in path)]):
            assert not b.startswith("I-") or a[2:] == b[2:]


def test_crf_loss_runs_over_first_pieces_only() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 7, len(LABELS))
    labels = torch.tensor(
        [[IGNORE, 1, IGNORE, 2, 0, IGNORE, IGNORE], [IGNORE, 3, 4, IGNORE, IGNORE, IGNORE, IGNORE]]
    )
    emissions, tags, mask = first_pieces(logits, labels)
    assert tags.tolist() == [[1, 2, 0], [3, 4, 0]]
    assert mask.tolist() == [[True, True, True], [True, True, False]]
    assert torch.equal(emissions[0], logits[0, [1, 3, 4]])
    assert torch.equal(emissions[1, :2], logits[1, [1, 2]])


def test_crf_marginals_equal_brute_force_enumeration() -> None:
    from bertcli.viterbi import marginals

    rng = np.random.default_rng(3)
    tags = 3
    allowed, start = bio_allowed(["O", "B-X", "I-X"])
    crf = CrfScores(
        rng.normal(size=tags) + np.where(start.numpy(), 0.0, -1e4),
        rng.normal(size=(tags, tags)) + np.where(allowed.numpy(), 0.0, -1e4),
        rng.normal(size=tags),
    )
    lengths = [4, 2, 1]
    emissions = rng.normal(size=(3, 4, tags)).astype(np.float32)
    got = marginals(emissions, lengths, crf)
    for row, n, probs in zip(emissions, lengths, got, strict=True):
        expected = np.zeros((4, tags))
        total = 0.0
        for path in itertools.product(range(tags), repeat=n):
            score = crf.start[path[0]] + crf.end[path[-1]]
            score += sum(row[i, t] for i, t in enumerate(path))
            score += sum(crf.transitions[a, b] for a, b in itertools.pairwise(path))
            weight = np.exp(score)
            total += weight
            for i, t in enumerate(path):
                expected[i, t] += weight
        np.testing.assert_allclose(probs, expected / total, atol=1e-5)
        assert probs[n:].sum() == 0.0
