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


class WindowScorer(nn.Module):
    """One score per window from its [CLS] (or mean) vector: v . tanh(W h), as in the additive
    attention of Bahdanau et al. Attention pooling weighs a document's windows by it; QA's
    ranker says by it which window holds the answer."""

    def __init__(self, hidden_size: int, dropout: float, pooling: str = "cls") -> None:
        super().__init__()
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.score = nn.Linear(hidden_size, 1)
        # All windows start equal (attention pooling starts as mean pooling) and learn from there.
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(batch, seq, hidden) -> (batch, 1)."""
        vector = masked_mean(hidden, attention_mask) if self.pooling == "mean" else hidden[:, 0]
        return self.score(torch.tanh(self.dense(self.dropout(vector))))


def window_scorer(config: Any, pooling: str = "cls") -> WindowScorer:
    from bertcli.modeling.traits import ModelTraits

    dropout = ModelTraits.from_config(config).head_dropout(config)
    return WindowScorer(config.hidden_size, dropout, pooling)


def group_logsumexp(values: torch.Tensor, group: torch.Tensor, n_groups: int) -> torch.Tensor:
    """(n,) values and their group numbers 0..n_groups-1 -> (n_groups,) log-sum-exp per group;
    -inf values count as absent (a group of only -inf gives -inf)."""
    top = values.new_full((n_groups,), -torch.inf).scatter_reduce(
        0, group, values, "amax", include_self=True
    )
    # The shift cancels out of the result (and so of its gradient).
    safe = torch.where(torch.isfinite(top), top, torch.zeros_like(top)).detach()
    total = values.new_zeros(n_groups).index_add(0, group, torch.exp(values - safe[group]))
    return torch.log(total) + safe


def document_groups(example: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Windows' example ids -> a group number per window (0..n-1, one per document) and n."""
    ids, group = torch.unique(example, return_inverse=True)
    return group, int(ids.numel())


def attention_pooled(
    outputs: torch.Tensor, example: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(windows, classes + 1) outputs (the last column: attention scores) and each window's
    example id -> (documents, classes) logits pooled with softmax weights per document, and the
    document number of each window. The torch twin of `bertcli.aggregate.attention_pool`."""
    group, n = document_groups(example)
    scores = outputs[:, -1].float()
    weights = torch.exp(scores - group_logsumexp(scores, group, n)[group])  # (windows,)
    logits = outputs[:, :-1].float()
    pooled = logits.new_zeros((n, logits.shape[-1])).index_add(0, group, weights[:, None] * logits)
    return pooled, group


def global_span_loss(
    logits: torch.Tensor, labels: torch.Tensor, ranker: bool = False
) -> torch.Tensor:
    """Start/end cross-entropy over all positions of all windows of a question (shared
    normalisation, Clark & Gardner 2018; Multi-passage BERT, Wang et al. 2019).

    `logits`: (windows, seq, 2), or (windows, seq, 3) whose last channel holds each window's
    ranker score; `labels`: (windows, 4) = answer start, end (0, 0 where the window does not
    hold it), example id, window length. The target is the answer's positions in every window
    holding it; [CLS] of every window when none does (no answer, or v2). With `ranker`, a
    softmax over the question's windows learns which of them hold the answer.
    """
    group, n = document_groups(labels[:, 2])
    width = logits.shape[1]
    real = torch.arange(width, device=logits.device)[None, :] < labels[:, 3:4]  # (windows, seq)
    holds = labels[:, 0] > 0
    # float32 whatever the autocast precision of the logits (bf16 under --precision auto).
    found = torch.zeros(n, device=logits.device).index_add(0, group, holds.float()) > 0
    target_window = torch.where(found[group], holds, torch.ones_like(holds))
    loss = torch.zeros((), device=logits.device)
    for channel in (0, 1):
        scores = logits[..., channel].float().masked_fill(~real, -torch.inf)
        everything = group_logsumexp(scores.logsumexp(1), group, n)
        picked = scores.gather(1, labels[:, channel : channel + 1]).squeeze(1)
        target = group_logsumexp(picked.masked_fill(~target_window, -torch.inf), group, n)
        loss = loss + (everything - target).mean() / 2
    if ranker:
        rank = logits[:, 0, 2].float()
        everything = group_logsumexp(rank, group, n)
        # Questions no window answers rank every window as a target: a loss of 0, no NaN.
        targets = holds | ~found[group]
        target = group_logsumexp(rank.masked_fill(~targets, -torch.inf), group, n)
        loss = loss + (everything - target).sum() / found.sum().clamp(min=1)
    return loss
