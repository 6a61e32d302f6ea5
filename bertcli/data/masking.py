"""Masked-LM inputs: documents packed into full windows, and BERT's 80/10/10 masking.

Both are pure functions of their arguments (masks of a seeded generator), so training can draw
fresh masks every epoch and still resume exactly: the masks of (seed, epoch, window) never change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bertcli.data.word_windows import IGNORE

NO_WORD = -1  # word id of special tokens and document separators: never masked


@dataclass(frozen=True)
class MaskingPlan:
    """How tokens are chosen and replaced (BERT: 15% chosen; of those 80% [MASK], 10% random)."""

    probability: float
    mask: float
    random: float
    whole_word: bool
    mask_id: int
    normal_ids: np.ndarray  # the vocabulary without special tokens: what a random token may be


def mask_tokens(
    ids: np.ndarray, words: np.ndarray, plan: MaskingPlan, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(corrupted ids, labels): labels hold the original id where a token was chosen, IGNORE
    elsewhere. `words[i]` is position i's word id (NO_WORD: special, never chosen); with
    `whole_word` a word's pieces are chosen together, then replaced one by one (as BERT-wwm)."""
    candidate = words != NO_WORD
    if plan.whole_word:
        # One draw per distinct word id; positions look their word's draw up.
        unique, position_word = np.unique(words, return_inverse=True)
        chosen = (rng.random(len(unique)) < plan.probability)[position_word] & candidate
    else:
        chosen = (rng.random(len(ids)) < plan.probability) & candidate
    labels = np.where(chosen, ids, IGNORE)
    draw = rng.random(len(ids))
    to_mask = chosen & (draw < plan.mask)
    to_random = chosen & (draw >= plan.mask) & (draw < plan.mask + plan.random)
    out = ids.copy()
    out[to_mask] = plan.mask_id
    out[to_random] = rng.choice(plan.normal_ids, size=int(to_random.sum()))
    return out, labels


@dataclass
class Packed:
    """Window contents before special tokens: token ids and their (window-local) word ids."""

    ids: list[list[int]]
    words: list[list[int]]
    first_document: list[int]  # index of the document each window starts in


def pack_documents(
    documents: Sequence[tuple[list[int], list[int | None]]], budget: int, separator: int
) -> Packed:
    """Concatenate documents' (ids, word ids) with `separator` between them and cut the stream
    into pieces of `budget` tokens (the last may be shorter): every token lands in exactly one
    window, none is padding. Word ids are made unique across documents."""
    ids: list[int] = []
    words: list[int] = []
    origin: list[int] = []  # the document of each position
    next_word = 0
    for index, (doc_ids, doc_words) in enumerate(documents):
        if not doc_ids:
            continue
        if ids:
            ids.append(separator)
            words.append(NO_WORD)
            origin.append(index)
        local = [NO_WORD if w is None else next_word + w for w in doc_words]
        next_word = max([w for w in local if w != NO_WORD], default=next_word - 1) + 1
        ids += doc_ids
        words += local
        origin += [index] * len(doc_ids)
    cuts = range(0, len(ids), budget)
    return Packed(
        [ids[i : i + budget] for i in cuts],
        [words[i : i + budget] for i in cuts],
        [origin[i] for i in cuts],
    )
