"""`train.class_weights`: auto and given weights, reaching the classification and tagging loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bertcli.class_weights import resolve_class_weights
from bertcli.config import TrainConfig, load_config
from bertcli.console import configure
from bertcli.data.word_windows import IGNORE
from bertcli.errors import ConfigError
from bertcli.finetune import finetune
from bertcli.modeling.heads import token_loss


def test_auto_is_inverse_frequency_and_lists_are_checked() -> None:
    counts = np.array([30, 10, 0])
    # total 40 over 3 labels: 40 / (3 x 30), 40 / (3 x 10), an unseen label as if seen once
    assert resolve_class_weights("auto", counts, ["a", "b", "c"]) == pytest.approx(
        [40 / 90, 40 / 30, 40 / 3]
    )
    assert resolve_class_weights([1, 2, 3], counts, ["a", "b", "c"]) == [1.0, 2.0, 3.0]
    with pytest.raises(ConfigError, match="2 weights for 3 labels"):
        resolve_class_weights([1, 2], counts, ["a", "b", "c"])
    with pytest.raises(ConfigError, match="no class weights"):
        resolve_class_weights("auto", None, ["a"])
    with pytest.raises(ConfigError, match="positive"):
        TrainConfig(class_weights=[1.0, -1.0])
    assert load_config(None, {"train.class_weights": "2,1"}).train.class_weights == [2.0, 1.0]
    assert load_config(None, {"train.class_weights": "auto"}).train.class_weights == "auto"


def test_weighted_token_loss_equals_the_hand_computed_weighted_mean() -> None:
    logits = torch.tensor([[[2.0, 0.0], [0.0, 1.0], [5.0, 5.0]]])
    labels = torch.tensor([[0, 1, IGNORE]])
    weight = torch.tensor([1.0, 3.0])
    nll = [-torch.log_softmax(logits[0, 0], 0)[0], -torch.log_softmax(logits[0, 1], 0)[1]]
    expected = (1.0 * nll[0] + 3.0 * nll[1]) / (1.0 + 3.0)
    assert token_loss(logits, labels, weight) == pytest.approx(float(expected), rel=1e-6)


def test_class_weights_change_training_and_are_in_the_summary(
    tiny_model_dir, sentiment_csv, tmp_path, run_config
) -> None:
    configure(quiet=True)
    try:
        plain = finetune(
            run_config(tiny_model_dir, sentiment_csv, tmp_path / "a", {"train.max_steps": 3})
        )
        weighted = finetune(
            run_config(
                tiny_model_dir,
                sentiment_csv,
                tmp_path / "b",
                {"train.max_steps": 3, "train.class_weights": [1.0, 9.0]},
            )
        )
    finally:
        configure(quiet=False)
    assert "class_weights" not in plain.metrics
    assert weighted.metrics["class_weights"] == {"neg": 1.0, "pos": 9.0}
    from safetensors.torch import load_file

    a = load_file(str(tmp_path / "a" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "model.safetensors"))
    assert any(not torch.equal(a[k], b[k]) for k in a), "the weights moved the training"


@pytest.mark.parametrize("head", ["crf", "globalpointer"])
def test_crf_and_span_heads_refuse_class_weights(head: str) -> None:
    with pytest.raises(ConfigError, match=f"the {head} head has no per-tag loss"):
        load_config(
            None,
            {"task": "tagging", "tagging.head": head, "train.class_weights": "auto"},
        )


def test_tagging_loss_reads_the_model_s_weights_and_counts_every_word_tag() -> None:
    from types import SimpleNamespace

    from bertcli.data.load import Example
    from bertcli.tasks.tagging import TaggingTask

    logits = torch.randn(2, 4, 3)
    labels = torch.tensor([[0, 1, IGNORE, 2], [2, IGNORE, 0, 0]])
    weight = torch.tensor([0.5, 2.0, 4.0])
    model = SimpleNamespace(crf=None, class_weights=weight)
    expected = token_loss(logits, labels, weight)
    assert torch.equal(TaggingTask.loss(model, logits, labels), expected)
    assert not torch.equal(expected, token_loss(logits, labels))
    train = [Example("a b", tags=[0, 2]), Example("c", tags=[0])]
    assert TaggingTask.label_counts(train, 3).tolist() == [2, 0, 1]
