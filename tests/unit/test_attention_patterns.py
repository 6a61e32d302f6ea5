"""The head-pattern classifier on hand-built attention: each pattern's ideal head scores ~1."""

from __future__ import annotations

import numpy as np
import pytest

from bertcli.attention.patterns import BROAD, Tokens, classify, pattern_masks

# [CLS] i went to the store . [SEP] at the store , i bought fresh straw ##berries . [SEP]
TOKENS = Tokens(
    [
        *("[CLS]", "i", "went", "to", "the", "store", ".", "[SEP]"),
        *("at", "the", "store", ",", "i", "bought", "fresh", "straw", "##berries", ".", "[SEP]"),
    ],
    [None, 0, 1, 2, 3, 4, 5, None, 6, 7, 8, 9, 10, 11, 12, 13, 13, 14, None],
    [None, 0, 0, 0, 0, 0, 0, None, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, None],
)
N = len(TOKENS.tokens)


def head_from(mask: np.ndarray) -> np.ndarray:
    """Rows spread evenly over the mask; rows with an empty mask attend to the last [SEP]."""
    rows = mask.astype(float)
    rows[rows.sum(axis=1) == 0, -1] = 1.0
    return rows / rows.sum(axis=1, keepdims=True)


def one_head(matrix: np.ndarray) -> np.ndarray:
    return matrix[None, None]  # (layers 1, heads 1, seq, seq)


@pytest.mark.parametrize(
    "pattern", ["next", "previous", "same", "other_sentence", "subword", "delimiter"]
)
def test_an_ideal_head_scores_about_one_for_its_pattern(pattern: str) -> None:
    attention = one_head(head_from(pattern_masks(TOKENS)[pattern]))
    [head] = classify([(attention, TOKENS)])
    assert head.pattern == pattern
    assert head.score == pytest.approx(1.0, abs=1e-6)


def test_next_token_head_built_by_shifting_the_identity() -> None:
    attention = one_head(np.eye(N, k=1) + np.eye(N, k=-(N - 1)))  # last row wraps to [CLS]
    [head] = classify([(attention, TOKENS)])
    assert (head.pattern, head.score) == ("next", pytest.approx(1.0))
    assert head.scores["previous"] == pytest.approx(0.0)


def test_uniform_attention_is_broad_with_full_spread() -> None:
    attention = one_head(np.full((N, N), 1.0 / N))
    [head] = classify([(attention, TOKENS)])
    assert head.pattern == BROAD
    assert head.score == pytest.approx(1.0)


def test_straw_and_berries_are_pieces_of_one_word() -> None:
    mask = pattern_masks(TOKENS)["subword"]
    straw, berries = 15, 16
    assert mask[straw, berries] and mask[berries, straw]
    assert mask.sum() == 2  # no other word is split


def test_same_word_in_the_other_sentence_links_store_to_store() -> None:
    mask = pattern_masks(TOKENS)["other_sentence"]
    assert mask[5, 10] and mask[10, 5]  # store <-> store
    assert not mask[5, 5]


def test_scores_average_over_inputs_and_layers_heads_are_kept_apart() -> None:
    next_head = head_from(pattern_masks(TOKENS)["next"])
    delim_head = head_from(pattern_masks(TOKENS)["delimiter"])
    attention = np.stack([np.stack([next_head, delim_head])] * 2)  # (2 layers, 2 heads)
    heads = classify([(attention, TOKENS), (attention, TOKENS)])
    assert [(h.layer, h.head, h.pattern) for h in heads] == [
        (0, 0, "next"),
        (0, 1, "delimiter"),
        (1, 0, "next"),
        (1, 1, "delimiter"),
    ]


def test_a_single_text_has_no_other_sentence_pattern() -> None:
    single = Tokens(["[CLS]", "a", "b", "a", "[SEP]"], [None, 0, 1, 2, None], [None, 0, 0, 0, None])
    attention = one_head(head_from(pattern_masks(single)["same"]))
    [head] = classify([(attention, single)])
    assert "other_sentence" not in head.scores
    assert head.pattern == "same"
