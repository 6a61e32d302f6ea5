"""Small task heads that sit on an encoder's hidden states, and the tasks' losses."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bertcli.data.word_windows import IGNORE


def masked_mean(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """(batch, seq, hidden) -> (batch, hidden), averaging only real (unpadded) tokens."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


class MeanPoolHead(nn.Module):
    """Classification from the mean of the last hidden states instead of the [CLS] vector."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(masked_mean(hidden, attention_mask)))  # (batch, labels)


def mean_pool_head(config: Any) -> MeanPoolHead:
    """A mean-pooling head sized and regularised like the model's own classifier."""
    from bertcli.modeling.traits import ModelTraits

    # Each family names its dropout keys its own way (hidden_dropout_prob, dropout, ...).
    dropout = ModelTraits.from_config(config).head_dropout(config)
    return MeanPoolHead(config.hidden_size, config.num_labels, dropout)


def sequence_loss(
    logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """(batch, labels) logits against (batch,) label ids; `weight`: one per label."""
    return F.cross_entropy(logits.float(), labels, weight=weight)


def token_loss(
    logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """(batch, seq, labels) logits against (batch, seq) label ids, IGNORE between words."""
    flat = logits.float().flatten(0, 1)
    return F.cross_entropy(flat, labels.flatten(), weight=weight, ignore_index=IGNORE)


def span_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(batch, seq, 2) start/end logits against (batch, 2) answer positions, 0 = [CLS]."""
    start = F.cross_entropy(logits[..., 0].float(), labels[:, 0])
    return (start + F.cross_entropy(logits[..., 1].float(), labels[:, 1])) / 2
