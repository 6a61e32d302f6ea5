"""Tokenize examples into model windows, keeping a mapping from each window back to its example.

Training, evaluation and prediction all go through `make_windows`, so an example is tokenized the
same way everywhere. One example may become several windows (`max_windows > 1`): consecutive
windows overlap by `stride` tokens and each carries [CLS] ... [SEP] (and the pair text).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Windows:
    """Model inputs for a list of examples; `example_index[w]` is the example window w came from."""

    input_ids: list[list[int]] = field(default_factory=list)
    token_type_ids: list[list[int]] = field(default_factory=list)
    example_index: list[int] = field(default_factory=list)
    labels: list[int] | None = None

    def __len__(self) -> int:
        return len(self.input_ids)

    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.input_ids]

    def windows_per_example(self, n_examples: int) -> list[int]:
        counts = [0] * n_examples
        for index in self.example_index:
            counts[index] += 1
        return counts


def make_windows(
    tokenizer: Any,
    texts: Sequence[str],
    pairs: Sequence[str] | None = None,
    *,
    max_length: int,
    labels: Sequence[int] | None = None,
    stride: int = 0,
    max_windows: int = 1,
) -> Windows:
    """Tokenize `texts` (and `pairs`) into windows of at most `max_length` tokens.

    With `max_windows == 1` the text is truncated after its first `max_length` tokens; with more,
    the first text is split into overlapping windows and the pair is repeated in each.
    """
    if stride and stride >= max_length:
        raise ValueError(f"stride {stride} must be smaller than max_length {max_length}")
    chunked = max_windows > 1
    enc = tokenizer(
        list(texts),
        list(pairs) if pairs is not None else None,
        truncation="only_first" if (chunked and pairs is not None) else True,
        max_length=max_length,
        stride=stride if chunked else 0,
        return_overflowing_tokens=chunked,
        return_token_type_ids=True,
        return_attention_mask=False,
        padding=False,
    )
    mapping = enc["overflow_to_sample_mapping"] if chunked else range(len(texts))
    windows = Windows(labels=[] if labels is not None else None)
    seen: dict[int, int] = {}
    for w, example in enumerate(mapping):
        seen[example] = seen.get(example, 0) + 1
        if seen[example] > max_windows:
            continue
        windows.input_ids.append(enc["input_ids"][w])
        windows.token_type_ids.append(enc["token_type_ids"][w])
        windows.example_index.append(int(example))
        if windows.labels is not None:
            windows.labels.append(int(labels[example]))  # type: ignore[index]
    return windows
