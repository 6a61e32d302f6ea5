"""CPU training speed-ups that must not change what is learned: dropout masks from random bytes
(train.byte_dropout) and fp32 attention in bf16 runs (train.fp32_attention)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from bertcli.modeling import dropout as byte
from bertcli.modeling.cpu_attention import fp32_training_attention
from tests.conftest import sentiment_rows, write_csv


def test_byte_dropout_drops_at_its_rate_and_keeps_the_mean() -> None:
    torch.manual_seed(0)
    x = torch.ones(1_000_000)
    out = byte.byte_dropout(x, 0.1)
    threshold = byte.drop_threshold(0.1)
    assert threshold == 26
    dropped = (out == 0).float().mean().item()
    assert dropped == pytest.approx(threshold / 256, abs=0.002)
    kept = out[out != 0]
    assert torch.equal(kept, torch.full_like(kept, 256 / (256 - threshold)))  # exact scale
    assert out.mean().item() == pytest.approx(1.0, abs=0.005)
    assert byte.byte_dropout(x, 0.0) is x
    assert byte.drop_threshold(0.001) == 1, "a small rate still drops something"


def test_byte_dropout_follows_the_seed_and_its_gradient_is_the_mask() -> None:
    x = torch.randn(7, 33, dtype=torch.bfloat16, requires_grad=True)  # not a multiple of 8
    torch.manual_seed(3)
    first = byte.byte_dropout(x, 0.3)
    torch.manual_seed(3)
    again = byte.byte_dropout(x, 0.3)
    assert torch.equal(first, again)
    assert not torch.equal(first, byte.byte_dropout(x, 0.3)), "the generator moved on"
    assert first.dtype == torch.bfloat16 and first.shape == x.shape
    first.sum().backward()
    scale = 256 / (256 - byte.drop_threshold(0.3))
    expected = (first != 0).to(torch.bfloat16) * scale
    assert torch.equal(x.grad, expected)


def tiny_bert(**config: Any) -> torch.nn.Module:
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    settings = dict(
        vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=37, max_position_embeddings=64, attn_implementation="sdpa",
    )  # fmt: skip
    return BertModel(BertConfig(**{**settings, **config}))


def test_swapped_dropout_keeps_rates_and_leaves_evaluation_alone() -> None:
    model = tiny_bert(hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.0).eval()
    ids = torch.randint(1, 50, (3, 20))
    before = model(input_ids=ids).last_hidden_state
    rates = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert byte.use_byte_dropout(model) == len(rates) > 0
    swapped = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert all(isinstance(m, byte.ByteDropout) for m in swapped)
    assert [m.p for m in swapped] == rates
    assert torch.equal(model(input_ids=ids).last_hidden_state, before)
    model.train()
    assert not torch.equal(model(input_ids=ids).last_hidden_state, before)


def kernel_dtypes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bool, torch.dtype]]:
    """Record (training, query dtype) of every call that reaches transformers' sdpa kernel."""
    from transformers import AttentionInterface

    seen: list[tuple[bool, torch.dtype]] = []
    original = AttentionInterface._global_mapping["sdpa"]

    def spy(module: Any, query: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        seen.append((module.training, query.dtype))
        return original(module, query, *args, **kwargs)

    monkeypatch.setitem(AttentionInterface._global_mapping, "sdpa", spy)
    return seen


def test_fp32_training_attention_only_for_bf16_training_and_restored(monkeypatch) -> None:
    from transformers import AttentionInterface

    seen = kernel_dtypes(monkeypatch)
    spy = AttentionInterface._global_mapping["sdpa"]
    model = tiny_bert()
    ids = torch.randint(1, 50, (2, 12))
    mask = torch.ones_like(ids)
    mask[0, 8:] = 0  # padding: an attention mask reaches the kernel
    with fp32_training_attention(), torch.autocast("cpu", dtype=torch.bfloat16):
        trained = model.train()(input_ids=ids, attention_mask=mask).last_hidden_state
        model.eval()(input_ids=ids, attention_mask=mask)
    assert AttentionInterface._global_mapping["sdpa"] is spy, "restored after the block"
    assert seen == [(True, torch.float32)] * 2 + [(False, torch.bfloat16)] * 2
    trained.float().sum().backward()
    assert model.embeddings.word_embeddings.weight.grad is not None


@pytest.mark.parametrize(
    ("settings", "attention", "byte_masks"),
    [
        ({}, torch.float32, True),
        ({"train.fp32_attention": False, "train.byte_dropout": False}, torch.bfloat16, False),
    ],
)
def test_a_bf16_cpu_run_uses_the_speedups_its_config_asks_for(
    settings, attention, byte_masks, tiny_model_dir: Path, tmp_path: Path, run_config, monkeypatch
) -> None:
    from bertcli.console import configure
    from bertcli.finetune import finetune

    seen = kernel_dtypes(monkeypatch)
    calls = []
    monkeypatch.setattr(byte, "byte_dropout", lambda x, p: calls.append(p) or x)
    train = write_csv(tmp_path / "train.csv", sentiment_rows(24), ("text", "label"))
    config = run_config(
        tiny_model_dir,
        train,
        tmp_path / "out",
        {"train.max_steps": 2, "train.precision": "bf16", **settings},
    )
    configure(quiet=True)
    try:
        finetune(config)
    finally:
        configure(quiet=False)
    assert {dtype for training, dtype in seen if training} == {attention}
    assert {dtype for training, dtype in seen if not training} == {torch.bfloat16}
    assert bool(calls) is byte_masks
