"""Windowing, window pooling and batching: pure functions checked against hand-built cases."""

from __future__ import annotations

import random
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import torch

from bertcli.aggregate import pool_windows
from bertcli.data.collate import Collator, EpochBatches
from bertcli.data.load import Example
from bertcli.data.windows import Windows, make_windows
from bertcli.tasks import ClassificationTask

VOCAB = Path(__file__).resolve().parents[1] / "assets" / "vocab.txt"
# Whole words only (no specials, pieces or single characters), so every word is one token.
WORDS = [w for w in VOCAB.read_text(encoding="utf-8").split() if w.isalpha() and len(w) > 1]


def document(n_words: int, seed: int) -> str:
    """A text whose tokens are all distinct-ish words, so overlaps cannot line up by accident."""
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


def content(tokenizer, ids: list[int]) -> list[int]:
    """Token ids of the first segment of a window: between [CLS] and the first [SEP]."""
    assert ids[0] == tokenizer.cls_token_id
    return ids[1 : ids.index(tokenizer.sep_token_id)]


def full_tokens(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


# ------------------------------------------------------------------------ make_windows


def test_single_window_truncates_to_max_length_one_window_per_example(tiny_tokenizer) -> None:
    texts = [document(50, seed=1), "good movie", document(30, seed=2)]
    windows = make_windows(tiny_tokenizer, texts, max_length=16, labels=[1, 0, 1])
    assert windows.example_index == [0, 1, 2]
    assert windows.labels == [1, 0, 1]
    assert windows.lengths() == [16, 4, 16]
    for ids, text in zip(windows.input_ids, texts, strict=True):
        assert ids[0] == tiny_tokenizer.cls_token_id
        assert ids[-1] == tiny_tokenizer.sep_token_id
        # Truncation keeps the beginning of the text.
        assert content(tiny_tokenizer, ids) == full_tokens(tiny_tokenizer, text)[:14]
    assert windows.windows_per_example(3) == [1, 1, 1]


@pytest.mark.parametrize(("max_length", "stride"), [(16, 4), (12, 1), (20, 7), (10, 0)])
def test_windows_cover_the_whole_document_and_overlap_by_stride(
    tiny_tokenizer, max_length: int, stride: int
) -> None:
    texts = [document(97, seed=3), document(8, seed=4), document(41, seed=5)]
    windows = make_windows(
        tiny_tokenizer, texts, max_length=max_length, strategy="chunk", stride=stride, max_windows=0
    )
    for example, text in enumerate(texts):
        own = [
            ids
            for ids, e in zip(windows.input_ids, windows.example_index, strict=True)
            if e == example
        ]
        assert own, f"example {example} has no window"
        for ids in own:
            assert len(ids) <= max_length
            assert ids[0] == tiny_tokenizer.cls_token_id
            assert ids[-1] == tiny_tokenizer.sep_token_id
        parts = [content(tiny_tokenizer, ids) for ids in own]
        for before, after in pairwise(parts):
            if stride:
                assert before[-stride:] == after[:stride], "consecutive windows must overlap"
            # Only the overlap is shared: the next window carries new tokens.
            assert len(after) > stride
        rebuilt = parts[0] + [t for part in parts[1:] for t in part[stride:]]
        assert rebuilt == full_tokens(tiny_tokenizer, text)


def test_windows_of_an_example_are_consecutive_and_in_example_order(tiny_tokenizer) -> None:
    texts = [document(40, seed=s) for s in range(5)]
    windows = make_windows(
        tiny_tokenizer, texts, max_length=12, strategy="chunk", stride=3, max_windows=0
    )
    assert windows.example_index == sorted(windows.example_index)
    assert set(windows.example_index) == set(range(5))


def test_pair_text_is_repeated_in_every_window(tiny_tokenizer) -> None:
    text, pair = document(60, seed=6), "the second text"
    windows = make_windows(
        tiny_tokenizer,
        [text, "a short one"],
        [pair, pair],
        max_length=16,
        strategy="chunk",
        stride=2,
        max_windows=0,
    )
    pair_ids = full_tokens(tiny_tokenizer, pair)
    assert windows.windows_per_example(2)[0] > 3
    for ids, types in zip(windows.input_ids, windows.token_type_ids, strict=True):
        first = content(tiny_tokenizer, ids)
        assert ids[len(first) + 2 :] == [*pair_ids, tiny_tokenizer.sep_token_id]
        # [CLS] first [SEP] are segment 0; pair [SEP] are segment 1.
        assert types == [0] * (len(first) + 2) + [1] * (len(pair_ids) + 1)
    rebuilt = [
        t
        for n, ids in enumerate(windows.input_ids[: windows.windows_per_example(2)[0]])
        for t in content(tiny_tokenizer, ids)[(2 if n else 0) :]
    ]
    assert rebuilt == full_tokens(tiny_tokenizer, text)


def test_pairs_get_segment_ids_without_chunking(tiny_tokenizer) -> None:
    windows = make_windows(tiny_tokenizer, ["good movie"], ["bad plot !"], max_length=32)
    assert windows.token_type_ids == [[0, 0, 0, 0, 1, 1, 1, 1]]


def test_max_windows_caps_windows_per_example_keeping_the_first(tiny_tokenizer) -> None:
    texts = [document(200, seed=7), "good", document(200, seed=8)]
    chunk = {"max_length": 16, "strategy": "chunk", "stride": 4}
    capped = make_windows(tiny_tokenizer, texts, **chunk, max_windows=3, labels=[0, 1, 0])
    free = make_windows(tiny_tokenizer, texts, **chunk, max_windows=0)
    assert capped.windows_per_example(3) == [3, 1, 3]
    assert free.windows_per_example(3)[0] > 3
    assert capped.labels == [0, 0, 0, 1, 0, 0, 0]
    kept = [ids for ids, e in zip(free.input_ids, free.example_index, strict=True) if e == 0][:3]
    assert capped.input_ids[:3] == kept


def test_stride_must_be_smaller_than_max_length(tiny_tokenizer) -> None:
    with pytest.raises(ValueError, match="stride"):
        make_windows(tiny_tokenizer, ["good"], max_length=8, strategy="chunk", stride=8)


# ----------------------------------------------------------------------- pool_windows


def test_pool_windows_mean_and_max_by_hand_with_windows_out_of_order() -> None:
    logits = np.array(
        [
            [1.0, -2.0],  # example 2
            [0.0, 4.0],  # example 0
            [3.0, 0.0],  # example 2
            [-1.0, -1.0],  # example 1
            [2.0, 2.0],  # example 0
            [5.0, -6.0],  # example 2
        ]
    )
    index = [2, 0, 2, 1, 0, 2]
    mean = pool_windows(logits, index, 3, "mean")
    expected_mean = np.array([[1.0, 3.0], [-1.0, -1.0], [3.0, -8.0 / 3.0]])
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-6)
    most = pool_windows(logits, index, 3, "max")
    np.testing.assert_array_equal(most, [[2.0, 4.0], [-1.0, -1.0], [5.0, 0.0]])


def test_pool_windows_is_the_identity_for_one_window_per_example() -> None:
    logits = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    for how in ("mean", "max"):
        np.testing.assert_allclose(pool_windows(logits, [0, 1, 2, 3], 4, how), logits)


def test_pool_windows_accepts_half_precision_logits() -> None:
    logits = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float16)
    pooled = pool_windows(logits, [0, 0], 1, "mean")
    assert pooled.dtype == np.float32
    np.testing.assert_allclose(pooled, [[2.0, 3.0]])


def test_pool_windows_rejects_unknown_aggregation() -> None:
    with pytest.raises(ValueError, match="median"):
        pool_windows(torch.zeros(1, 2), [0], 1, "median")


def test_task_predicts_per_example_and_reports_window_counts() -> None:
    task = ClassificationTask(["neg", "pos"], max_length=16, stride=2, max_windows=4)
    windows = Windows(input_ids=[[2, 3]] * 3, token_type_ids=[[0, 0]] * 3, example_index=[1, 0, 1])
    logits = torch.tensor([[0.0, 2.0], [3.0, 0.0], [0.0, 4.0]])
    predictions = task.predict(logits, windows, [Example("a"), Example("b")])
    first, second = task.format(predictions, 0), task.format(predictions, 1)
    assert first["label"] == "neg"
    assert first["windows"] == 1
    assert second["label"] == "pos"
    assert second["windows"] == 2
    expected = torch.tensor([0.0, 3.0]).softmax(-1)[1].item()
    assert second["score"] == pytest.approx(expected, abs=1e-6)
    assert sum(second["scores"].values()) == pytest.approx(1.0, abs=1e-5)


# ------------------------------------------------------------------------- batching


def lengths_for(n: int, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(4, 256) for _ in range(n)]


def padding(batches: list[list[int]], lengths: list[int]) -> int:
    return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)


@pytest.mark.parametrize("group_by_length", [True, False])
def test_epoch_batches_are_a_function_of_seed_and_epoch(group_by_length: bool) -> None:
    lengths = lengths_for(500)

    def batches(seed: int, epoch: int) -> list[list[int]]:
        sampler = EpochBatches(
            lengths, 16, shuffle=True, group_by_length=group_by_length, seed=seed
        )
        sampler.set_epoch(epoch)
        return list(sampler)

    assert batches(1, 0) == batches(1, 0)
    assert batches(1, 3) == batches(1, 3)
    assert batches(1, 0) != batches(1, 1)
    assert batches(1, 0) != batches(2, 0)
    for epoch in range(3):
        found = batches(1, epoch)
        flat = [i for b in found for i in b]
        assert sorted(flat) == list(range(500)), "every window exactly once per epoch"
        assert all(1 <= len(b) <= 16 for b in found)
        assert len(found) == len(
            EpochBatches(lengths, 16, shuffle=True, group_by_length=False, seed=1)
        )


def test_length_grouping_pads_less_than_random_batches() -> None:
    lengths = lengths_for(1000, seed=1)
    grouped = EpochBatches(lengths, 16, shuffle=True, group_by_length=True, seed=0).batches()
    shuffled = EpochBatches(lengths, 16, shuffle=True, group_by_length=False, seed=0).batches()
    assert padding(grouped, lengths) < padding(shuffled, lengths) / 3


def test_inference_order_sorts_by_length_and_keeps_everything() -> None:
    lengths = lengths_for(100, seed=2)
    batches = EpochBatches(lengths, 8, shuffle=False, group_by_length=True, seed=0).batches()
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(100))
    assert [lengths[i] for i in flat] == sorted(lengths)
    plain = EpochBatches(lengths, 8, shuffle=False, group_by_length=False, seed=0).batches()
    assert [i for b in plain for i in b] == list(range(100))


def test_collator_pads_with_the_pad_id_and_masks_padding() -> None:
    windows = Windows(
        input_ids=[[2, 10, 11, 3], [2, 12, 3], [2, 13, 14, 15, 16, 3]],
        token_type_ids=[[0, 0, 0, 0], [0, 0, 1], [0, 0, 0, 1, 1, 1]],
        example_index=[0, 1, 1],
        labels=[1, 0, 0],
    )
    batch = Collator(windows, pad_id=7)([1, 0])
    assert batch["input_ids"].tolist() == [[2, 12, 3, 7], [2, 10, 11, 3]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]
    assert batch["token_type_ids"].tolist() == [[0, 0, 1, 0], [0, 0, 0, 0]]
    assert batch["labels"].tolist() == [0, 1]
    assert batch["window_index"].tolist() == [1, 0]
    wide = Collator(windows, pad_id=7)([0, 2])
    assert wide["input_ids"].shape == (2, 6)
    assert wide["input_ids"][0, 4:].tolist() == [7, 7]


def test_collator_without_labels_has_no_labels_key() -> None:
    windows = Windows(input_ids=[[2, 3]], token_type_ids=[[0, 0]], example_index=[0])
    assert "labels" not in Collator(windows, pad_id=0)([0])
