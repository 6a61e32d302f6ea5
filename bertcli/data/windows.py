"""Tokenize examples into model windows, keeping a mapping from each window back to its example.

Training, evaluation and prediction all go through `make_windows`, so an example is tokenized the
same way everywhere. Long texts are handled by one of four strategies:

* `head`, `tail`, `head+tail`: one window per example, keeping the first tokens, the last tokens, or
  the first `head_tokens` and the rest from the end (Sun et al. 2019: head+tail works best on IMDb);
* `chunk`: the first text is split into windows of `max_length` tokens, consecutive windows sharing
  `stride` tokens, each with [CLS] ... [SEP] and the pair text; at most `max_windows` per example
  (0: no limit), keeping the first ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

STRATEGIES = ("head", "tail", "head+tail", "chunk")


@dataclass
class Windows:
    """Model inputs for a list of examples; `example_index[w]` is the example window w came from.

    `labels` holds one label id per window (classification) or one per position (tagging, -100
    where the loss ignores it). Tagging windows also list the (word, position) pairs whose
    prediction they own: each word is owned by exactly one window, and `words` gives each
    window's first word and the first-piece position of every word it holds (owned or not).
    `spans` (span heads) lists each window's labelled spans as (first position, last position,
    type id), the spans whose words all lie in the window.
    """

    input_ids: list[list[int]] = field(default_factory=list)
    token_type_ids: list[list[int]] = field(default_factory=list)
    example_index: list[int] = field(default_factory=list)
    labels: list[Any] | None = None
    owned: list[list[tuple[int, int]]] | None = None
    words: list[tuple[int, list[int]]] | None = None
    spans: list[list[tuple[int, int, int]]] | None = None

    def __len__(self) -> int:
        return len(self.input_ids)

    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.input_ids]

    def windows_per_example(self, n_examples: int) -> list[int]:
        counts = [0] * n_examples
        for index in self.example_index:
            counts[index] += 1
        return counts

    def example_groups(self) -> list[list[int]]:
        """The window indices of each example, in order (examples without windows left out)."""
        groups: dict[int, list[int]] = {}
        for window, example in enumerate(self.example_index):
            groups.setdefault(example, []).append(window)
        return list(groups.values())

    def add(self, ids: list[int], types: list[int], example: int, label: int | None) -> None:
        self.input_ids.append(ids)
        self.token_type_ids.append(types)
        self.example_index.append(example)
        if self.labels is not None:
            self.labels.append(int(label))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Template:
    """Where a tokenizer puts its special tokens: [CLS] a [SEP] (b [SEP]) for BERT."""

    prefix: tuple[int, ...]
    middle: tuple[int, ...]
    suffix: tuple[int, ...]
    single_prefix: tuple[int, ...]
    single_suffix: tuple[int, ...]

    def build(self, a: list[int], b: list[int] | None) -> tuple[list[int], list[int]]:
        if b is None:
            ids = [*self.single_prefix, *a, *self.single_suffix]
            return ids, [0] * len(ids)
        first = [*self.prefix, *a, *self.middle]
        return first + b + list(self.suffix), [0] * len(first) + [1] * (len(b) + len(self.suffix))

    def specials(self, pair: bool) -> int:
        if pair:
            return len(self.prefix) + len(self.middle) + len(self.suffix)
        return len(self.single_prefix) + len(self.single_suffix)


def _split_around(full: list[int], parts: list[list[int]]) -> list[tuple[int, ...]]:
    """The special-token runs around `parts` inside `full` (parts appear in order)."""
    runs, pos = [], 0
    for part in parts:
        start = next(i for i in range(pos, len(full)) if full[i : i + len(part)] == part)
        runs.append(tuple(full[pos:start]))
        pos = start + len(part)
    runs.append(tuple(full[pos:]))
    return runs


@cache
def _template(tokenizer: Any) -> Template:
    a = tokenizer("a", add_special_tokens=False)["input_ids"]
    b = tokenizer("b", add_special_tokens=False)["input_ids"]
    single_prefix, single_suffix = _split_around(tokenizer("a")["input_ids"], [a])
    prefix, middle, suffix = _split_around(tokenizer("a", "b")["input_ids"], [a, b])
    return Template(prefix, middle, suffix, single_prefix, single_suffix)


def select_tokens(ids: list[int], budget: int, strategy: str, head_tokens: int) -> list[int]:
    """Keep `budget` of `ids` by strategy: the head, the tail, or head_tokens of head + the tail."""
    if len(ids) <= budget:
        return ids
    if strategy == "tail":
        return ids[len(ids) - budget :]
    if strategy == "head+tail":
        head = min(head_tokens, budget)
        return ids[:head] + ids[len(ids) - (budget - head) :]
    return ids[:budget]


def make_windows(
    tokenizer: Any,
    texts: Sequence[str],
    pairs: Sequence[str] | None = None,
    *,
    max_length: int,
    labels: Sequence[int] | None = None,
    strategy: str = "head",
    head_tokens: int = 128,
    stride: int = 0,
    max_windows: int = 1,
) -> Windows:
    """Tokenize `texts` (and `pairs`) into windows of at most `max_length` tokens."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown long-input strategy {strategy!r}")
    windows = Windows(labels=[] if labels is not None else None)
    if strategy == "chunk":
        return _chunk(tokenizer, texts, pairs, max_length, labels, stride, max_windows, windows)
    template = _template(tokenizer)
    text_ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    pair_ids = tokenizer(list(pairs), add_special_tokens=False)["input_ids"] if pairs else None
    for i, ids in enumerate(text_ids):
        b = pair_ids[i] if pair_ids is not None else None
        budget = max_length - template.specials(b is not None)
        if b is not None:
            # The pair is kept whole unless it would leave the text less than half the window.
            b = b[: max(0, budget - min(len(ids), budget // 2))]
            budget -= len(b)
        a = select_tokens(ids, budget, strategy, head_tokens)
        window, types = template.build(a, b)
        windows.add(window, types, i, labels[i] if labels is not None else None)
    return windows


def _chunk(
    tokenizer: Any,
    texts: Sequence[str],
    pairs: Sequence[str] | None,
    max_length: int,
    labels: Sequence[int] | None,
    stride: int,
    max_windows: int,
    windows: Windows,
) -> Windows:
    """Windows over the first text, each with the (possibly shortened) pair text.

    Built from the template rather than the tokenizer's overflow mode, which panics when the pair
    leaves the first text no more room than `stride`: such a pair is cut to leave the text
    `stride + 1` tokens (at least half the window), so every window still moves forward.
    """
    if stride >= max_length:
        raise ValueError(f"stride {stride} must be smaller than max_length {max_length}")
    template = _template(tokenizer)
    text_ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    pair_ids = tokenizer(list(pairs), add_special_tokens=False)["input_ids"] if pairs else None
    for i, ids in enumerate(text_ids):
        b = pair_ids[i] if pair_ids is not None else None
        room = max(1, max_length - template.specials(b is not None))
        if b is not None:
            if len(ids) + len(b) > room and room - len(b) <= stride:
                b = b[: room - min(len(ids), max(stride + 1, room // 2), room)]
            room = max(1, room - len(b))
        step = room - stride if stride < room else max(1, room // 2)
        label = labels[i] if labels is not None else None
        for n, start in enumerate(range(0, max(len(ids) - room, 0) + step, step)):
            if max_windows and n >= max_windows:
                break
            window, types = template.build(ids[start : start + room], b)
            windows.add(window, types, i, label)
            if start + room >= len(ids):
                break
    return windows


def max_context_owners(lengths: Sequence[int], ranges: Sequence[tuple[int, int]]) -> list[int]:
    """BERT's "max context" rule (`_check_is_max_context`): for each unit (a word of `lengths`
    tokens, or one token), the window where it has the most context, min(tokens before, tokens
    after), of windows covering units [start, end); ties go to the earlier window."""
    if len(ranges) == 1:
        return [0] * len(lengths)
    best = [(-1.0, 0)] * len(lengths)
    for w, (start, end) in enumerate(ranges):
        total = sum(lengths[start:end])
        before = 0
        for word in range(start, end):
            after = total - before - lengths[word]
            # The small length bonus breaks ties toward the bigger window, as BERT's code does.
            score = min(before, after) + 0.01 * total
            if score > best[word][0]:
                best[word] = (score, w)
            before += lengths[word]
    return [w for _, w in best]
