"""Linear-chain conditional random field (batch-first): NLL for training, Viterbi for decoding."""

from __future__ import annotations

import torch
from torch import nn

# Added to the score of a forbidden transition. Finite rather than -inf, because an all -inf row
# makes logsumexp and its gradient NaN; still far beyond anything an emission can pay back.
FORBIDDEN = -1e4

REDUCTIONS = ("mean", "sum", "none")


def bio_allowed(labels: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(transitions (tags, tags), start (tags,)) bool masks of what IOB2 permits.

    `I-X` may only follow `B-X` or `I-X`, and may not open a sequence; everything else is allowed.
    `transitions[i, j]` is True when tag `j` may follow tag `i`.
    """
    n = len(labels)
    transitions = torch.ones(n, n, dtype=torch.bool)
    start = torch.ones(n, dtype=torch.bool)
    for j, label in enumerate(labels):
        if not label.startswith("I-"):
            continue
        entity = label[2:]
        start[j] = False
        for i, previous in enumerate(labels):
            transitions[i, j] = previous in (f"B-{entity}", f"I-{entity}")
    return transitions, start


def _penalty(allowed: torch.Tensor | None, shape: tuple[int, ...], what: str) -> torch.Tensor:
    """0 where `allowed` is True (or everywhere when it is None), FORBIDDEN elsewhere."""
    if allowed is None:
        return torch.zeros(shape)
    if allowed.dtype != torch.bool or tuple(allowed.shape) != shape:
        raise ValueError(
            f"{what} must be a bool tensor of shape {shape}, "
            f"got {allowed.dtype} of shape {tuple(allowed.shape)}"
        )
    return torch.where(allowed, 0.0, FORBIDDEN)


class CRF(nn.Module):
    """Linear-chain CRF over `num_tags` tags, in the style of pytorch-crf.

    Masks are prefix masks: True for the first L_b positions of sequence b, and L_b >= 1.
    `allowed[i, j]` / `start_allowed[j]` (e.g. from `bio_allowed`) forbid transitions i -> j and
    starting in j; the ban is a fixed score penalty, so training and decoding both respect it.
    """

    def __init__(
        self,
        num_tags: int,
        *,
        allowed: torch.Tensor | None = None,
        start_allowed: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if num_tags < 1:
            raise ValueError(f"num_tags must be at least 1, got {num_tags}")
        self.num_tags = num_tags
        self.start_transitions = nn.Parameter(torch.empty(num_tags))
        self.end_transitions = nn.Parameter(torch.empty(num_tags))
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))  # from i to j
        for p in (self.start_transitions, self.end_transitions, self.transitions):
            nn.init.uniform_(p, -0.1, 0.1)
        # Buffers, not constants: they follow .to(device) and are saved with the weights.
        shape = (num_tags, num_tags)
        self.register_buffer("transition_penalty", _penalty(allowed, shape, "allowed"))
        self.register_buffer("start_penalty", _penalty(start_allowed, (num_tags,), "start_allowed"))

    def forward(
        self,
        emissions: torch.Tensor,
        tags: torch.Tensor,
        mask: torch.Tensor | None = None,
        reduction: str = "mean",
    ) -> torch.Tensor:
        """Negative log-likelihood of `tags` (batch, seq); mean over the batch by default."""
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        emissions, mask = self._check(emissions, mask)
        if tags.shape != mask.shape:
            raise ValueError(f"tags shape {tuple(tags.shape)} != mask shape {tuple(mask.shape)}")
        # Padded positions often hold an ignore index (-100); any valid index will do, it is masked.
        tags = tags.masked_fill(~mask, 0)
        start, transitions, end = self._scores(emissions.dtype)
        nll = self._log_partition(emissions, mask, start, transitions, end) - self._path_score(
            emissions, tags, mask, start, transitions, end
        )  # (batch,)
        if reduction == "sum":
            return nll.sum()
        return nll.mean() if reduction == "mean" else nll

    @torch.no_grad()
    def decode_scores(
        self, emissions: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[list[list[int]], torch.Tensor]:
        """Viterbi: each sequence's best tag path (own length) and that path's score (batch,)."""
        emissions, mask = self._check(emissions, mask)
        start, transitions, end = self._scores(emissions.dtype)
        batch, seq, num_tags = emissions.shape
        identity = torch.arange(num_tags, device=emissions.device).expand(batch, num_tags)
        score = start + emissions[:, 0]  # (batch, tags): best score of a path ending in each tag
        backpointers = []
        for t in range(1, seq):
            best, previous = (score.unsqueeze(2) + transitions).max(dim=1)  # (batch, tags) each
            live = mask[:, t].unsqueeze(1)  # (batch, 1)
            score = torch.where(live, best + emissions[:, t], score)
            # Past a sequence's end, point each tag at itself so its last real tag carries forward.
            backpointers.append(torch.where(live, previous, identity))
        best_score, last = (score + end).max(dim=1)  # (batch,)
        path = [last]
        for pointers in reversed(backpointers):
            path.append(pointers.gather(1, path[-1].unsqueeze(1)).squeeze(1))
        paths = torch.stack(path[::-1], dim=1).tolist()  # (batch, seq)
        lengths = mask.sum(1).tolist()
        return [p[:n] for p, n in zip(paths, lengths, strict=True)], best_score

    def decode(self, emissions: torch.Tensor, mask: torch.Tensor | None = None) -> list[list[int]]:
        """Viterbi: each sequence's best tag path, of its own length."""
        return self.decode_scores(emissions, mask)[0]

    def _check(
        self, emissions: torch.Tensor, mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate shapes and the prefix mask; cast emissions up to at least float32."""
        if emissions.dim() != 3 or emissions.shape[2] != self.num_tags or emissions.shape[1] < 1:
            raise ValueError(
                f"emissions must be (batch, seq >= 1, {self.num_tags}), "
                f"got {tuple(emissions.shape)}"
            )
        if mask is None:
            mask = torch.ones(emissions.shape[:2], dtype=torch.bool, device=emissions.device)
        if mask.shape != emissions.shape[:2]:
            raise ValueError(
                f"mask shape {tuple(mask.shape)} != emissions (batch, seq) "
                f"{tuple(emissions.shape[:2])}"
            )
        mask = mask.bool()
        if not mask[:, 0].all():
            raise ValueError("mask[:, 0] must be all True: every sequence needs at least one token")
        if (mask[:, 1:] & ~mask[:, :-1]).any():
            raise ValueError("mask must be a prefix mask (True then False), found a gap")
        # logsumexp over many steps in bf16/fp16 loses too much; float64 is left as it is.
        return emissions.to(torch.promote_types(emissions.dtype, torch.float32)), mask

    def _scores(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(start, transitions, end) with bans applied, in `dtype` even if the module is bf16."""
        start = self.start_transitions.to(dtype) + self.start_penalty.to(dtype)
        transitions = self.transitions.to(dtype) + self.transition_penalty.to(dtype)
        return start, transitions, self.end_transitions.to(dtype)

    @staticmethod
    def _path_score(emissions, tags, mask, start, transitions, end) -> torch.Tensor:
        """Score of the given tag paths (batch,); fully vectorised, no loop at all."""
        live = mask.to(emissions.dtype)  # (batch, seq)
        emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # (batch, seq)
        moves = transitions[tags[:, :-1], tags[:, 1:]]  # (batch, seq - 1)
        last = tags.gather(1, (mask.sum(1) - 1).unsqueeze(1)).squeeze(1)  # (batch,)
        return (
            start[tags[:, 0]] + (emitted * live).sum(1) + (moves * live[:, 1:]).sum(1) + end[last]
        )

    @staticmethod
    def _log_partition(emissions, mask, start, transitions, end) -> torch.Tensor:
        """log Z (batch,) by the forward algorithm; the loop is over positions only."""
        alpha = start + emissions[:, 0]  # (batch, tags): log-sum of paths ending in each tag
        for t in range(1, emissions.shape[1]):
            # (batch, from, 1) + (from, to) + (batch, 1, to) -> logsumexp over from -> (batch, to)
            step = alpha.unsqueeze(2) + transitions + emissions[:, t].unsqueeze(1)
            alpha = torch.where(mask[:, t].unsqueeze(1), torch.logsumexp(step, dim=1), alpha)
        return torch.logsumexp(alpha + end, dim=1)
