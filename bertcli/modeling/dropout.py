"""Dropout for CPU training, with masks cut from bulk random bytes.

PyTorch's CPU `nn.Dropout` samples its mask with a per-element Bernoulli draw; on a 2-core AMX
Xeon that took 9 ms per (16, 256, 384) hidden state, 18% of a MiniLM training step, while
building the byte mask takes 2.2 ms (benchmarks/RESULTS.md). Each byte becomes one keep/drop
decision, so the drop rate is p rounded to a multiple of 1/256 (0.1 -> 26/256 = 0.1016), and kept
values are scaled by exactly 1 / (1 - that rate). The bytes come from torch's global generator,
the one a checkpoint saves and a resumed run restores, so runs stay reproducible.
"""

from __future__ import annotations

import torch
from torch import nn

LEVELS = 256  # one byte per decision


def drop_threshold(p: float) -> int:
    """Bytes below this are dropped: p in steps of 1/256, and never 0 for a p > 0."""
    return min(LEVELS - 1, max(1, round(p * LEVELS))) if p > 0 else 0


def byte_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    threshold = drop_threshold(p)
    if threshold == 0:
        return x
    n = x.numel()
    # Full-range 64-bit draws: every byte uniform (a plain `random_()` leaves the top bit 0).
    words = torch.empty((n + 7) // 8, dtype=torch.int64, device=x.device)
    words.random_(-(2**63), None)
    keep = words.view(torch.uint8)[:n].view(x.shape) >= threshold
    return x * keep * (LEVELS / (LEVELS - threshold))


class ByteDropout(nn.Dropout):
    """`nn.Dropout` with `byte_dropout`'s sampler; still an `nn.Dropout` (same `p`, same repr),
    so code that reads `module.p` (attention kernels' `dropout_p`) sees no difference."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return byte_dropout(x, self.p)


def use_byte_dropout(model: nn.Module) -> int:
    """Swap every plain `nn.Dropout` in `model` for a `ByteDropout` of the same rate; the count.
    Dropout holds no weights, so the saved model is unchanged."""
    swapped = 0
    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child) is nn.Dropout:
                setattr(parent, name, ByteDropout(child.p).train(child.training))
                swapped += 1
    return swapped
