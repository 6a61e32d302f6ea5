"""Layer-wise learning-rate decay (`train.layer_lr_decay`): each layer's rate by hand."""

from __future__ import annotations

import pytest

from bertcli.config import TrainConfig
from bertcli.errors import ConfigError
from bertcli.modeling.model import build_model
from bertcli.optim import layer_depths, make_optimizer


def rates(model, optimizer) -> dict[str, float]:
    by_param = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    return {name: by_param[id(p)] for name, p in model.named_parameters()}


def test_each_layer_learns_at_decay_times_the_layer_above(tiny_model_dir) -> None:
    model, _ = build_model(str(tiny_model_dir), ["neg", "pos"])  # 2 layers
    optimizer = make_optimizer(model, TrainConfig(lr=1e-3, layer_lr_decay=0.5), head_lr=7e-3)
    lr = rates(model, optimizer)
    assert lr["hf.bert.encoder.layer.1.attention.self.query.weight"] == pytest.approx(1e-3)
    assert lr["hf.bert.encoder.layer.0.output.dense.bias"] == pytest.approx(5e-4)
    assert lr["hf.bert.embeddings.word_embeddings.weight"] == pytest.approx(2.5e-4)
    assert lr["hf.bert.pooler.dense.weight"] == pytest.approx(1e-3), "above the top layer"
    assert lr["hf.classifier.weight"] == pytest.approx(7e-3), "the head keeps its own rate"
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3), "progress shows the top rate"
    assert len(lr) == sum(len(g["params"]) for g in optimizer.param_groups)


def test_no_decay_keeps_one_rate_and_families_name_their_layers() -> None:
    names = [
        "model.embeddings.tok_embeddings.weight",  # ModernBERT
        "model.layers.0.attn.Wqkv.weight",
        "model.layers.11.mlp.Wo.weight",
        "model.final_norm.weight",
    ]
    assert layer_depths(names) == dict(zip(names, [12, 11, 0, 0], strict=True))
    albert = ["albert.embeddings.word_embeddings.weight", "albert.encoder.albert_layer_groups.0.x"]
    assert layer_depths(albert) == {albert[0]: 1, albert[1]: 0}
    with pytest.raises(ConfigError, match=r"train\.layer_lr_decay"):
        TrainConfig(layer_lr_decay=0)
