"""Question + context windows: exact character offsets, answer labels across window edges."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bertcli.data.batching import pad_windows
from bertcli.data.qa_windows import QAWindows, answer_tokens, make_qa_windows
from bertcli.errors import ConfigError
from bertcli.qa_answers import best_answers

VOCAB = Path(__file__).resolve().parents[1] / "assets" / "vocab.txt"
# Whole words only, each one token of the tiny vocabulary, in a fixed order.
WORDS = [w for w in VOCAB.read_text(encoding="utf-8").split() if w.isalpha() and len(w) > 1]

# Accents, emoji, CJK, double spaces, a tab and newlines: the tokenizer lower-cases, strips
# accents and splits CJK characters, but offsets must still index the original characters.
MESSY = "The  Café\tserved crème brûlée 😀 and 電影 great\n\nfilm;  really\u3000good."


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import BertTokenizerFast

    # transformers 5 takes the vocab file as `vocab` (see tests/conftest.py).
    return BertTokenizerFast(vocab=str(VOCAB), do_lower_case=True)


def context_slices(windows: QAWindows, w: int, context: str) -> list[str]:
    return [context[s:e] for s, e in (windows.offsets[w][i] for i in windows.context_positions(w))]


def answer_text(windows: QAWindows, w: int, context: str) -> str:
    start, end = windows.labels[w]  # type: ignore[index]
    return context[windows.offsets[w][start][0] : windows.offsets[w][end][1]]  # type: ignore[index]


def test_offsets_cover_every_visible_character_of_a_messy_context(tokenizer) -> None:
    windows = make_qa_windows(tokenizer, ["what  is it ?"], [MESSY], max_length=128, stride=16)
    assert len(windows) == 1 and windows.labels is None
    pieces = context_slices(windows, 0, MESSY)
    # In order, without gaps or overlaps, the slices spell the context minus its whitespace.
    assert "".join(pieces) == "".join(MESSY.split())
    assert all(piece and piece == piece.strip() for piece in pieces)
    assert {"😀", "電", "影", "é"} <= set(pieces)
    # Question, [CLS] and [SEP] positions have no context offsets.
    sep = windows.input_ids[0].index(tokenizer.sep_token_id)
    assert windows.offsets[0][: sep + 1] == [None] * (sep + 1)
    assert windows.offsets[0][-1] is None
    assert windows.token_type_ids[0][sep + 1] == 1


@pytest.mark.parametrize("answer", ["Café", "crème brûlée 😀", "電影", "great\n\nfilm", "good"])
def test_answer_labels_map_back_to_the_exact_characters(tokenizer, answer: str) -> None:
    start = MESSY.index(answer)
    span = (start, start + len(answer))
    windows = make_qa_windows(
        tokenizer,
        ["where ?"],
        [MESSY],
        max_length=24,
        stride=8,
        max_question_tokens=8,
        answers=[span],
    )
    assert len(windows) > 1  # the context needs several windows
    holding = [w for w in range(len(windows)) if windows.labels[w] != (0, 0)]
    assert holding
    for w in holding:
        assert answer_text(windows, w, MESSY) == answer


def test_answer_across_a_window_edge_is_labelled_only_where_it_is_whole(tokenizer) -> None:
    # One token per word: with a one-token question, 16 positions leave 12 context tokens,
    # and windows start every 12 - 4 = 8 tokens (0-11, 8-19, 16-27, ...).
    words = WORDS[:30]
    context = " ".join(words)
    answer = " ".join(words[10:14])  # tokens 10-13 cross the end of window 0
    start = context.index(answer)
    windows = make_qa_windows(
        tokenizer,
        ["what"],
        [context],
        max_length=16,
        stride=4,
        max_question_tokens=4,
        answers=[(start, start + len(answer))],
    )
    assert windows.lengths()[0] == 16
    assert context_slices(windows, 0, context) == words[:12]
    assert context_slices(windows, 1, context) == words[8:20]
    assert windows.labels[0] == (0, 0)  # cut by the window edge: [CLS]
    # [CLS] what [SEP] then context token 8 at position 3: tokens 10..13 are positions 5..8.
    assert windows.labels[1] == (5, 8)
    assert answer_text(windows, 1, context) == answer
    assert all(label == (0, 0) for label in windows.labels[3:])

    # Logits that point at the answer in window 1 (and at a decoy in window 0, weaker)
    # come back as exactly the answer's characters.
    starts = [np.zeros(n) for n in windows.lengths()]
    ends = [np.zeros(n) for n in windows.lengths()]
    starts[1][5], ends[1][8] = 6.0, 6.0
    starts[0][4], ends[0][4] = 5.0, 5.0
    (found,) = best_answers(starts, ends, windows, [context])
    assert (found.text, found.start, found.end) == (answer, start, start + len(answer))


def test_long_question_is_truncated_and_every_window_fits(tokenizer) -> None:
    question = " ".join(WORDS[:40])
    context = " ".join(WORDS[40:100])
    windows = make_qa_windows(
        tokenizer, [question], [context], max_length=32, stride=4, max_question_tokens=10
    )
    assert max(windows.lengths()) == 32
    for ids in windows.input_ids:
        # [CLS] + 10 question tokens + [SEP]: the question keeps its first 10 words.
        assert ids.index(tokenizer.sep_token_id) == 11
        assert tokenizer.convert_ids_to_tokens(ids[1:11]) == WORDS[:10]
    # Every context word appears in some window.
    seen = {piece for w in range(len(windows)) for piece in context_slices(windows, w, context)}
    assert seen == set(WORDS[40:100])


def test_unanswerable_examples_are_labelled_cls_everywhere(tokenizer) -> None:
    contexts = [" ".join(WORDS[:50]), "good film"]
    windows = make_qa_windows(
        tokenizer,
        ["why", "who"],
        contexts,
        max_length=16,
        stride=2,
        max_question_tokens=4,
        answers=[None, (5, 9)],
    )
    counts = windows.windows_per_example(2)
    assert counts[0] > 1 and counts[1] == 1
    assert all(label == (0, 0) for label in windows.labels[: counts[0]])
    assert answer_text(windows, len(windows) - 1, contexts[1]) == "film"


def test_qa_windows_batch_like_plain_windows(tokenizer) -> None:
    windows = make_qa_windows(
        tokenizer,
        ["why", "who is it"],
        ["good film", "bad movie"],
        max_length=16,
        stride=2,
        max_question_tokens=4,
    )
    batch = pad_windows(windows, [0, 1], pad_id=tokenizer.pad_token_id)
    assert batch["input_ids"].shape == (2, max(windows.lengths()))
    assert batch["attention_mask"].sum(axis=1).tolist() == windows.lengths()


def test_window_too_small_for_question_and_stride_is_a_config_error(tokenizer) -> None:
    with pytest.raises(ConfigError, match="max_length 64 leaves 9 context tokens"):
        make_qa_windows(tokenizer, ["q"], ["c"], max_length=64, stride=16, max_question_tokens=52)


def test_answer_tokens_skips_blanks_at_the_answer_edges() -> None:
    offsets = [None, None, (0, 4), (6, 9), (10, 12), None]
    assert answer_tokens(offsets, (4, 9)) == (3, 3)  # "  abc" starts in the blank before it
    assert answer_tokens(offsets, (0, 12)) == (2, 4)
    assert answer_tokens(offsets, (11, 14)) == (0, 0)  # runs past the window
    assert answer_tokens(offsets, None) == (0, 0)
