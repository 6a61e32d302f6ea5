"""What the training loop optimises with: AdamW parameter groups, the learning-rate schedule,
and how many steps a run takes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from bertcli.config import TrainConfig


@dataclass
class Plan:
    steps_per_epoch: int
    total_steps: int
    epochs: int


def plan_steps(batches_per_epoch: int, cfg: TrainConfig) -> Plan:
    steps_per_epoch = max(1, math.ceil(batches_per_epoch / cfg.grad_accum))
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))
    return Plan(steps_per_epoch, total, math.ceil(total / steps_per_epoch))


def make_optimizer(
    model: torch.nn.Module, cfg: TrainConfig, head_lr: float | None = None
) -> torch.optim.Optimizer:
    """AdamW; biases and LayerNorm weights (all 1-d parameters) get no weight decay, and the task
    head (and CRF) may learn at its own rate. Encoder groups come first: the progress bar shows
    the first group's learning rate."""
    head_ids = {id(p) for p in getattr(model, "head_parameters", lambda: [])()}
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {
        (h, d): [] for h in (False, True) for d in (True, False)
    }
    for param in model.parameters():
        if param.requires_grad:
            groups[(id(param) in head_ids, param.ndim >= 2)].append(param)
    return torch.optim.AdamW(
        [
            {
                "params": params,
                "weight_decay": cfg.weight_decay if decay else 0.0,
                "lr": (head_lr or cfg.lr) if head else cfg.lr,
            }
            for (head, decay), params in groups.items()
            if params
        ],
        lr=cfg.lr,
    )


def make_schedule(optimizer: torch.optim.Optimizer, total: int, warmup_ratio: float) -> Any:
    """Linear warm-up to the peak learning rate, then linear decay to zero."""
    warmup = int(total * warmup_ratio)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
