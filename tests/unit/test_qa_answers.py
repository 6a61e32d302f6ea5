"""Best-span post-processing and the v2 null threshold, on hand-built logits and brute force."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from bertcli.data.qa_windows import QAWindows
from bertcli.data.squad import QAExample
from bertcli.metrics.squad import f1_score
from bertcli.qa_answers import NO_ANSWER, Answer, best_answers, tune_null_threshold

CONTEXT = "one two three four five six"
SPANS = [(0, 3), (4, 7), (8, 13), (14, 18), (19, 23), (24, 27)]  # one token per word
Q = 2  # question tokens per window: [CLS] q q [SEP] context... [SEP]


def build(windows_of: list[tuple[int, list[tuple[int, int]]]]) -> QAWindows:
    """Windows from (example, context token char spans), laid out as [CLS] q q [SEP] ... [SEP]."""
    windows = QAWindows()
    for example, spans in windows_of:
        offsets = [None] * (Q + 2) + list(spans) + [None]
        ids = list(range(len(offsets)))
        windows.add(ids, [0] * (Q + 2) + [1] * (len(spans) + 1), example, None, offsets)
    return windows


def logits(windows: QAWindows, w: int, points: dict[int, float]) -> np.ndarray:
    """Zeros over window w except at the given context token indices (0 = first context token)."""
    values = np.zeros(windows.lengths()[w])
    for token, value in points.items():
        values[Q + 2 + token] = value
    return values


def test_best_span_over_all_windows_of_an_example_wins() -> None:
    # Window 0 holds tokens one..four, window 1 holds three..six.
    windows = build([(0, SPANS[:4]), (0, SPANS[2:])])
    starts = [logits(windows, 0, {0: 3.0}), logits(windows, 1, {2: 4.0})]
    ends = [logits(windows, 0, {1: 3.0}), logits(windows, 1, {3: 4.0})]
    (answer,) = best_answers(starts, ends, windows, [CONTEXT])
    assert (answer.text, answer.start, answer.end) == ("five six", 19, 27)
    assert answer.text == CONTEXT[answer.start : answer.end]
    # Null score: the lower [CLS] score of the two windows (both 0 here, then 1 + 1 = 2).
    assert answer.null_margin == pytest.approx(8.0)
    starts[0][0] = ends[0][0] = 1.0
    starts[1][0] = ends[1][0] = 3.0
    (answer,) = best_answers(starts, ends, windows, [CONTEXT])
    assert answer.null_margin == pytest.approx(8.0 - 2.0)
    # Weaken the span of window 1 (8 -> 2): the span of window 0 (6) wins.
    starts[1][Q + 4] = ends[1][Q + 5] = 1.0
    (answer,) = best_answers(starts, ends, windows, [CONTEXT])
    assert answer.text == "one two"


def test_end_before_start_is_never_chosen() -> None:
    windows = build([(0, SPANS)])
    # The best start (four) comes after the best end (two): that pair scores 18 but is reversed.
    starts = [logits(windows, 0, {3: 9.0})]
    ends = [logits(windows, 0, {1: 9.0, 4: 2.0})]
    (answer,) = best_answers(starts, ends, windows, [CONTEXT])
    assert answer.text == "four five"


def test_max_answer_length_counts_tokens() -> None:
    windows = build([(0, SPANS)])
    starts = [logits(windows, 0, {0: 9.0})]
    ends = [logits(windows, 0, {5: 9.0, 1: 4.0})]
    (answer,) = best_answers(starts, ends, windows, [CONTEXT], max_answer_length=6)
    assert answer.text == CONTEXT  # six tokens, score 18
    (answer,) = best_answers(starts, ends, windows, [CONTEXT], max_answer_length=5)
    assert answer.text == "one two"  # the best span of at most five tokens, score 13


def test_question_and_special_positions_are_never_answers() -> None:
    windows = build([(0, SPANS)])
    start, end = logits(windows, 0, {2: 1.0}), logits(windows, 0, {2: 1.0})
    start[1] = end[1] = start[-1] = end[-1] = 50.0  # a question token and the final [SEP]
    (answer,) = best_answers([start], [end], windows, [CONTEXT])
    assert answer.text == "three"


def test_random_logits_match_brute_force_enumeration() -> None:
    rng = np.random.default_rng(0)
    windows = build([(0, SPANS[:4]), (0, SPANS[2:]), (1, SPANS[:3])])
    for _ in range(50):
        starts = [rng.normal(size=n) for n in windows.lengths()]
        ends = [rng.normal(size=n) for n in windows.lengths()]
        answers = best_answers(starts, ends, windows, [CONTEXT, CONTEXT], max_answer_length=3)
        for example, answer in enumerate(answers):
            best, best_span = -math.inf, None
            for w, index in enumerate(windows.example_index):
                if index != example:
                    continue
                context = windows.context_positions(w)
                for s in context:
                    if not has_max_context(windows, w, s):
                        continue
                    for e in context:
                        if s <= e < s + 3 and starts[w][s] + ends[w][e] > best:
                            best = starts[w][s] + ends[w][e]
                            best_span = (windows.offsets[w][s][0], windows.offsets[w][e][1])
            assert (answer.start, answer.end) == best_span


def has_max_context(windows: QAWindows, w: int, position: int) -> bool:
    """BERT's rule, by hand: no window of the same example gives the token more context
    (min of tokens left and right, + 0.01 x context length), an earlier one winning ties."""

    def context(v: int) -> float | None:
        positions = windows.context_positions(v)
        char = windows.offsets[w][position][0]
        rank = next((i for i, p in enumerate(positions) if windows.offsets[v][p][0] == char), None)
        if rank is None:
            return None
        return min(rank, len(positions) - 1 - rank) + 0.01 * len(positions)

    mine = context(w)
    for v, example in enumerate(windows.example_index):
        theirs = context(v) if example == windows.example_index[w] and v != w else None
        if theirs is not None and (theirs > mine or (theirs == mine and v < w)):
            return False
    return True


def test_a_span_starts_in_the_window_that_gives_it_most_context() -> None:
    """A long context cut into windows: the window that ends right after "three" scores its
    span "three" higher (half the evidence), but "three" sits in the middle of the other
    window, which proposes "three four": that one wins."""
    windows = build([(0, SPANS[:3]), (0, SPANS[1:6])])
    starts = [logits(windows, 0, {2: 5.0}), logits(windows, 1, {1: 2.0})]
    ends = [logits(windows, 0, {2: 1.5}), logits(windows, 1, {2: 2.0})]
    (answer,) = best_answers(starts, ends, windows, [CONTEXT])
    assert answer.text == "three four"
    # A context that fits one window is not affected: its edge tokens still start spans.
    (alone,) = best_answers([starts[0]], [ends[0]], build([(0, SPANS[:3])]), [CONTEXT])
    assert alone.text == "three"


def test_v2_threshold_decides_between_span_and_no_answer() -> None:
    windows = build([(0, SPANS)])
    start, end = logits(windows, 0, {2: 2.0}), logits(windows, 0, {3: 2.0})
    start[0] = end[0] = 3.0  # null score 6 > span score 4
    (v1,) = best_answers([start], [end], windows, [CONTEXT])
    assert v1.text == "three four" and v1.null_margin == pytest.approx(-2.0)
    (empty,) = best_answers([start], [end], windows, [CONTEXT], null_threshold=0.0)
    assert (empty.text, empty.start, empty.end) == ("", NO_ANSWER, NO_ANSWER)
    assert empty.null_margin == pytest.approx(-2.0)
    assert 0.5 < empty.score < 1.0  # the null candidate's probability
    (span,) = best_answers([start], [end], windows, [CONTEXT], null_threshold=2.5)
    assert span.text == "three four"


def test_score_is_a_probability_over_distinct_spans() -> None:
    # Two windows propose the same single-token span: one candidate, probability 1.
    windows = build([(0, [SPANS[2]]), (0, [SPANS[2]])])
    starts = [logits(windows, w, {0: 1.0}) for w in range(2)]
    ends = [logits(windows, w, {0: 1.0}) for w in range(2)]
    (answer,) = best_answers(starts, ends, windows, [CONTEXT])
    assert answer.text == "three" and answer.score == pytest.approx(1.0)
    # In v2 mode the null score (0) joins the softmax against the span score (2).
    (answer,) = best_answers(starts, ends, windows, [CONTEXT], null_threshold=0.0)
    assert answer.score == pytest.approx(1 / (1 + math.exp(-2.0)))


def test_logits_must_match_window_lengths() -> None:
    windows = build([(0, SPANS)])
    with pytest.raises(ValueError, match="window 0: logits of shape"):
        best_answers([np.zeros(3)], [np.zeros(3)], windows, [CONTEXT])


def example(qid: str, *answers: str) -> QAExample:
    starts = [CONTEXT.index(answer) for answer in answers]
    return QAExample(qid, "q?", CONTEXT, list(answers), starts, f"test:id {qid}")


def test_tuned_threshold_gets_a_clear_case_right() -> None:
    # Confident spans are right; unsure spans belong to unanswerable questions.
    examples = [example("a", "two"), example("b", "five six"), example("c"), example("d")]
    answers = [
        Answer("two", 4, 7, 0.9, null_margin=3.0),
        Answer("five six", 19, 27, 0.8, null_margin=1.0),
        Answer("one", 0, 3, 0.4, null_margin=-1.5),
        Answer("four", 14, 18, 0.3, null_margin=-4.0),
    ]
    threshold, best = tune_null_threshold(answers, examples)
    assert best == pytest.approx(100.0)
    assert -1.0 < threshold < 1.5  # answer iff -null_margin <= threshold
    # With threshold None every span is kept: only half the questions are right.
    assert sum(f1_score(a.text, ex.answers) for a, ex in zip(answers, examples, strict=True)) == 2


def test_tuned_threshold_reproduces_its_f1_through_best_answers() -> None:
    rng = np.random.default_rng(1)
    windows = build([(i, SPANS) for i in range(12)])
    starts = [rng.normal(size=n) for n in windows.lengths()]
    ends = [rng.normal(size=n) for n in windows.lengths()]
    contexts = [CONTEXT] * 12
    raw = best_answers(starts, ends, windows, contexts, max_answer_length=2)
    rand = random.Random(0)
    examples = [
        example(str(i), raw[i].text) if rand.random() < 0.5 else example(str(i)) for i in range(12)
    ]
    threshold, best = tune_null_threshold(raw, examples)
    final = best_answers(
        starts, ends, windows, contexts, max_answer_length=2, null_threshold=threshold
    )
    f1 = 100 * np.mean(
        [f1_score(a.text, ex.answers) for a, ex in zip(final, examples, strict=True)]
    )
    assert f1 == pytest.approx(best)
    # Brute force: no threshold on a fine grid does better.
    for t in np.linspace(-6, 6, 241):
        kept = [a.text if -a.null_margin <= t else "" for a in raw]
        grid_f1 = 100 * np.mean(
            [f1_score(k, ex.answers) for k, ex in zip(kept, examples, strict=True)]
        )
        assert grid_f1 <= best + 1e-9


def test_tuning_rejects_already_thresholded_answers() -> None:
    answers = [Answer("", NO_ANSWER, NO_ANSWER, 0.7, null_margin=-1.0)]
    with pytest.raises(ValueError, match="already thresholded"):
        tune_null_threshold(answers, [example("a")])
