"""Turn start/end logits of QA windows into answer spans of the original contexts (numpy only).

A span's score is start_logit[start] + end_logit[end]. Each window proposes its best spans among
context tokens; an example's answer is its best span over all its windows, mapped back to the
context's characters through the window offsets, so the text is always an exact slice of the
context. SQuAD v2's "no answer" is the [CLS] span: an example's null score is the lowest [CLS]
score over its windows, as in the official v2 post-processing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bertcli.data.qa_windows import CLS_POSITION, Offset, QAWindows
from bertcli.data.windows import max_context_owners

if TYPE_CHECKING:
    from bertcli.data.squad import QAExample

NO_ANSWER = -1  # start and end of an empty answer: no character position, and context[-1:-1] == ""


@dataclass
class Answer:
    """A predicted answer: `context[start:end] == text`; text "" and start = end = -1 for none.

    `score` is the answer's probability among the example's `n_best` best distinct spans: a
    softmax over their span scores, joined by the null score in v2 mode (then an empty answer's
    score is the null probability; in v1 mode it is 0.0, which happens only when no span was
    possible). `null_margin` is best span score - null score in logits: the larger, the surer
    the context holds an answer; -inf when no span was possible at all (e.g. an empty context).
    """

    text: str
    start: int
    end: int
    score: float
    null_margin: float
    # v2: the best span's text even when the threshold answered "" (what `best_f1` re-tunes).
    best_span: str = ""


def best_answers(
    start_logits: Sequence[np.ndarray],
    end_logits: Sequence[np.ndarray],
    windows: QAWindows,
    contexts: Sequence[str],
    *,
    n_best: int = 20,
    max_answer_length: int = 30,
    null_threshold: float | None = None,
    window_scores: Sequence[float] | None = None,
) -> list[Answer]:
    """One answer per context from per-window logits over each window's real positions.

    With `null_threshold` (SQuAD v2) an example gets the empty answer when
    null score - best span score > null_threshold; without it (v1) the best span always wins.
    `window_scores` (a passage ranker's) are added to the score of every span of their window.
    """
    if not len(start_logits) == len(end_logits) == len(windows):
        raise ValueError(
            f"{len(start_logits)} start and {len(end_logits)} end logit rows "
            f"for {len(windows)} windows"
        )
    spans: list[dict[Offset, float]] = [{} for _ in contexts]  # (char start, end) -> best score
    null = np.full(len(contexts), np.inf)
    owned = max_context_starts(windows)
    for w, example in enumerate(windows.example_index):
        start = np.asarray(start_logits[w], dtype=np.float64)  # (seq,)
        end = np.asarray(end_logits[w], dtype=np.float64)  # (seq,)
        offsets = windows.offsets[w]
        if start.shape != (len(offsets),) or end.shape != (len(offsets),):
            raise ValueError(
                f"window {w}: logits of shape {start.shape} and {end.shape} "
                f"for {len(offsets)} positions"
            )
        null[example] = min(null[example], start[CLS_POSITION] + end[CLS_POSITION])
        found = spans[example]
        # The same characters can be proposed by two overlapping windows: keep the better score.
        bonus = window_scores[w] if window_scores is not None else 0.0
        proposed = window_spans(start, end, offsets, n_best, max_answer_length, owned[w])
        for span, score in proposed:
            score += bonus
            if score > found.get(span, -math.inf):
                found[span] = score
    missing = [i for i, score in enumerate(null) if score == np.inf]
    if missing:
        raise ValueError(f"examples {missing[:5]} have no windows")
    return [
        _choose(spans[i], float(null[i]), contexts[i], n_best, null_threshold)
        for i in range(len(contexts))
    ]


def window_spans(
    start: np.ndarray,
    end: np.ndarray,
    offsets: Sequence[Offset | None],
    n_best: int,
    max_answer_length: int,
    starts_allowed: np.ndarray | None = None,
) -> list[tuple[Offset, float]]:
    """Up to `n_best` best (char span, score) pairs of one window, best first.

    Only the `n_best` best start and end positions among context tokens are paired, which is
    where the best `n_best` spans lie; pairs with end < start or longer than `max_answer_length`
    tokens are dropped. `starts_allowed` (a mask over positions) limits where spans may start.
    """
    positions = np.array([i for i, offset in enumerate(offsets) if offset is not None], dtype=int)
    first = positions if starts_allowed is None else positions[starts_allowed[positions]]
    if first.size == 0:
        return []
    starts = first[_top(start[first], min(n_best, first.size))]  # (k starts,)
    ends = positions[_top(end[positions], min(n_best, positions.size))]  # (k ends,)
    scores = start[starts][:, None] + end[ends][None, :]  # (k starts, k ends)
    length = ends[None, :] - starts[:, None] + 1  # tokens, (k, k)
    scores = np.where((length >= 1) & (length <= max_answer_length), scores, -np.inf)
    flat = _top(scores.ravel(), min(n_best, scores.size))
    out = []
    for index in flat[np.argsort(-scores.ravel()[flat], kind="stable")]:
        score = float(scores.ravel()[index])
        if score == -np.inf:
            break
        a, b = divmod(int(index), len(ends))
        out.append(((offsets[starts[a]][0], offsets[ends[b]][1]), score))  # type: ignore[index]
    return out


def max_context_starts(windows: QAWindows) -> list[np.ndarray | None]:
    """Per window, a mask over its positions: True where no other window of the same context
    gives that token more context (BERT's `_check_is_max_context`); None for the window of a
    context that fits one window, where every context token may start a span.

    A token's context in a window is min(tokens left of it, tokens right of it) + 0.01 x the
    window's context length; ties go to the earlier window. Spans start only at such tokens.
    Without it, a window that holds half of a paragraph (the rest cut off by the window's edge)
    proposes spans from half the evidence, and on a long document they often beat the right
    span of the window that holds the whole paragraph.
    """
    masks: list[np.ndarray | None] = [None] * len(windows.offsets)
    for group in windows.example_groups():
        if len(group) < 2:
            continue
        # The windows cover consecutive runs of the context's tokens, known by first character.
        places = [windows.context_positions(w) for w in group]
        starts = [
            [windows.offsets[w][i][0] for i in place]  # type: ignore[index]
            for w, place in zip(group, places, strict=True)
        ]
        token = {char: n for n, char in enumerate(sorted({c for s in starts for c in s}))}
        ranges = [(token[s[0]], token[s[-1]] + 1) if s else (0, 0) for s in starts]
        owner = max_context_owners([1] * len(token), ranges)
        for k, (w, place, chars) in enumerate(zip(group, places, starts, strict=True)):
            masks[w] = np.zeros(len(windows.offsets[w]), dtype=bool)
            masks[w][place] = [owner[token[c]] == k for c in chars]  # type: ignore[index]
    return masks


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values, unordered: O(n) instead of a full sort."""
    if k >= values.size:
        return np.arange(values.size)
    return np.argpartition(-values, k - 1)[:k]


def _choose(
    spans: dict[Offset, float],
    null_score: float,
    context: str,
    n_best: int,
    null_threshold: float | None,
) -> Answer:
    ranked = sorted(spans.items(), key=lambda item: -item[1])[:n_best]
    scores = [score for _, score in ranked]
    best = scores[0] if scores else -math.inf
    margin = best - null_score
    v2 = null_threshold is not None
    probabilities = _softmax([*scores, null_score] if v2 else scores)
    span = context[ranked[0][0][0] : ranked[0][0][1]] if ranked else ""
    if not ranked or (v2 and null_score - best > null_threshold):  # type: ignore[operator]
        score = float(probabilities[-1]) if v2 else 0.0
        return Answer("", NO_ANSWER, NO_ANSWER, score, margin, span)
    (char_start, char_end), _ = ranked[0]
    return Answer(
        context[char_start:char_end], char_start, char_end, float(probabilities[0]), margin
    )


def _softmax(scores: Sequence[float]) -> np.ndarray:
    values = np.asarray(scores, dtype=np.float64)
    if values.size == 0:
        return values
    exp = np.exp(values - values.max())
    return exp / exp.sum()


def tune_null_threshold(
    answers: Sequence[Answer], examples: Sequence[QAExample]
) -> tuple[float, float]:
    """The null threshold maximising F1 over labelled examples, and that F1 in percent.

    `answers` must come from `best_answers(..., null_threshold=None)`, so each holds its best
    span whether or not it will be dropped. Passing the threshold back to `best_answers`
    reproduces the returned F1. Every distinct margin is tried, as SQuAD v2's
    `find_best_thresh`; thresholds sit midway between consecutive margins.
    """
    # Imported here: the metric module pulls in `evaluate`, which costs seconds at import.
    from bertcli.metrics.squad import f1_score

    if len(answers) != len(examples) or not examples:
        raise ValueError(f"{len(answers)} answers for {len(examples)} examples")
    if any(a.text == "" and math.isfinite(a.null_margin) for a in answers):
        raise ValueError("answers were already thresholded: use best_answers(null_threshold=None)")
    # An example predicts its span when null score - span score = -null_margin <= threshold.
    diffs = np.array([-a.null_margin for a in answers], dtype=np.float64)
    with_span = np.array(
        [f1_score(a.text, ex.answers) for a, ex in zip(answers, examples, strict=True)]
    )
    without = np.array([f1_score("", ex.answers) for ex in examples])
    order = np.argsort(diffs, kind="stable")
    d = diffs[order]
    # gained[j]: F1 added by letting the j smallest diffs answer with their span.
    gained = np.concatenate([[0.0], np.cumsum((with_span - without)[order])])
    best_j, best_total = 0, -math.inf
    for j in range(len(d) + 1):
        # Only cut between distinct, finite diffs: a threshold cannot split a tie.
        splits_tie = 0 < j < len(d) and d[j - 1] == d[j]
        if splits_tie or (j > 0 and not math.isfinite(d[j - 1])):
            continue
        if gained[j] > best_total:
            best_j, best_total = j, gained[j]
    return _threshold(d, best_j), 100.0 * float(without.sum() + best_total) / len(examples)


def _threshold(d: np.ndarray, j: int) -> float:
    """A threshold that lets exactly the first j sorted diffs answer."""
    finite = d[np.isfinite(d)]
    if j == 0:
        return float(finite[0] - 1.0) if finite.size else 0.0
    if j == len(d) or not math.isfinite(d[j]):
        return float(d[j - 1] + 1.0)
    return float((d[j - 1] + d[j]) / 2)
