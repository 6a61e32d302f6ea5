"""GlobalPointer (Su et al. 2022, https://spaces.ac.cn/archives/8373): every (start, end) pair of
positions gets one score per entity type, so entities may nest or overlap.

For type t, s_t(i, j) = q_i^t . k_j^t / sqrt(d), with q and k linear projections of the hidden
states rotated by RoPE (rotary position embedding), so that the score sees the relative distance
j - i. Pairs with j < i and padding are masked. Trained with the multi-label categorical
cross-entropy of the paper, per (window, type): log(1 + sum_neg e^s) + log(1 + sum_pos e^-s).
"""

from __future__ import annotations

import math

import torch
from torch import nn

HEAD_SIZE = 64
# Masked cells: far below the 0 decision threshold, and representable in fp16 as well.
MASKED = -1e4


def rotary(x: torch.Tensor) -> torch.Tensor:
    """RoPE on (batch, seq, heads, dim): pairs (x_2i, x_2i+1) at position m rotate by
    m * 10000^(-2i/dim), so a rotated q_m . k_n depends on n - m only."""
    seq, dim = x.shape[1], x.shape[-1]
    position = torch.arange(seq, dtype=torch.float32, device=x.device)[:, None]  # (seq, 1)
    inverse = 10000 ** (-torch.arange(0, dim, 2, dtype=torch.float32, device=x.device) / dim)
    angle = position * inverse  # (seq, dim/2)
    cos = torch.stack([angle.cos(), angle.cos()], -1).reshape(1, seq, 1, dim).to(x.dtype)
    sin = torch.stack([angle.sin(), angle.sin()], -1).reshape(1, seq, 1, dim).to(x.dtype)
    turned = torch.stack([-x[..., 1::2], x[..., ::2]], -1).reshape(x.shape)
    return x * cos + turned * sin


class GlobalPointer(nn.Module):
    """(batch, seq, hidden) -> (batch, seq, seq, types) span scores; cell (i, j, t) scores the
    span from position i to position j (inclusive) as type t."""

    def __init__(self, hidden_size: int, types: int, dropout: float, head_size: int = HEAD_SIZE):
        super().__init__()
        self.types, self.head_size = types, head_size
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden_size, types * head_size * 2)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        batch, seq, _ = hidden.shape
        qk = self.dense(self.dropout(hidden)).view(batch, seq, self.types, 2, self.head_size)
        q, k = rotary(qk[..., 0, :]), rotary(qk[..., 1, :])  # (batch, seq, types, dim)
        scores = torch.einsum("bmtd,bntd->bmnt", q, k) / math.sqrt(self.head_size)
        real = attention_mask.bool()
        upper = torch.ones(seq, seq, dtype=torch.bool, device=hidden.device).triu()
        valid = real[:, :, None] & real[:, None, :] & upper  # (batch, seq, seq)
        return scores.masked_fill(~valid[..., None], MASKED)


def span_loss(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Multi-label categorical cross-entropy over span cells, mean over (window, type).

    `scores` (batch, seq, seq, types); `targets` the same shape: 1 for a gold span, 0 for a
    candidate that is not one, -1 for a cell that is no candidate (end before start, a position
    that starts no word, padding).
    """
    batch, seq, _, types = scores.shape
    s = scores.float().permute(0, 3, 1, 2).reshape(batch * types, seq * seq)
    y = targets.permute(0, 3, 1, 2).reshape(batch * types, seq * seq)
    negatives = s.masked_fill(y != 0, float("-inf"))
    positives = (-s).masked_fill(y != 1, float("-inf"))
    zero = torch.zeros_like(s[:, :1])  # the "1 +" inside each log
    loss = torch.logsumexp(torch.cat([zero, negatives], -1), -1)
    return (loss + torch.logsumexp(torch.cat([zero, positives], -1), -1)).mean()


def global_pointer_head(config: object, types: int) -> GlobalPointer:
    """A GlobalPointer sized to the encoder, regularised with its head dropout."""
    from bertcli.modeling.traits import ModelTraits

    dropout = ModelTraits.from_config(config).head_dropout(config)
    return GlobalPointer(config.hidden_size, types, dropout)  # type: ignore[attr-defined]


def span_targets(
    labels: torch.Tensor, spans: list[list[tuple[int, int, int]]], types: int
) -> torch.Tensor:
    """(batch, seq) word labels (IGNORE except at each word's first piece) and each window's
    gold spans (first position, last position, type) -> (batch, seq, seq, types) targets for
    `span_loss`: candidates are the pairs of first pieces in order, gold ones 1."""
    from bertcli.data.word_windows import IGNORE

    starts = labels != IGNORE  # (batch, seq)
    seq = labels.shape[1]
    upper = torch.ones(seq, seq, dtype=torch.bool).triu()
    candidate = starts[:, :, None] & starts[:, None, :] & upper  # (batch, seq, seq)
    targets = torch.where(candidate, 0.0, -1.0)[..., None].repeat(1, 1, 1, types)
    for row, window in enumerate(spans):
        for first, last, kind in window:
            targets[row, first, last, kind] = 1.0
    return targets
