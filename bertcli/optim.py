"""What the training loop optimises with: AdamW parameter groups, the learning-rate schedule,
and how many steps a run takes."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import torch

from bertcli.config import TrainConfig

# Where AdamW runs as one fused kernel. MiniLM, batch 16 x 256, per step: 0.074 -> 0.017 s on an
# Intel Xeon with AMX (+11% samples/s), no change on an AMD EPYC without it (benchmarks/RESULTS.md).
FUSED_ADAMW_DEVICES = ("cuda", "cpu")


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
    model: torch.nn.Module, cfg: TrainConfig, head_lr: float | None = None, fused: bool = False
) -> torch.optim.Optimizer:
    """AdamW; biases and LayerNorm weights (all 1-d parameters) get no weight decay, and the task
    head (and CRF) may learn at its own rate. With `train.layer_lr_decay` d < 1 the top encoder
    layer learns at lr, each layer below at d times the one above it, the embeddings lowest.
    Encoder groups come first, top layer first: the progress bar shows the first group's rate.
    `fused`: one kernel for the whole update (see FUSED_ADAMW_DEVICES)."""
    head_ids = {id(p) for p in getattr(model, "head_parameters", lambda: [])()}
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    depths = layer_depths([n for n, p in named if id(p) not in head_ids])
    groups: dict[tuple[bool, int, bool], list[torch.nn.Parameter]] = {}
    for name, param in named:
        head = id(param) in head_ids
        key = (head, 0 if head else depths[name], param.ndim >= 2)
        groups.setdefault(key, []).append(param)
    return torch.optim.AdamW(
        [
            {
                "params": groups[key],
                "weight_decay": cfg.weight_decay if decay else 0.0,
                "lr": (head_lr or cfg.lr) if head else cfg.lr * cfg.layer_lr_decay**depth,
            }
            for key in sorted(groups)
            for head, depth, decay in [key]
        ],
        lr=cfg.lr,
        fused=fused or None,
    )


_LAYER = re.compile(r"\.layers?\.(\d+)\.")


def layer_depths(names: list[str]) -> dict[str, int]:
    """How far below the top each encoder parameter sits: 0 for the top layer (and anything
    above it: pooler, final norm), 1 for the layer under it, ..., layers for the embeddings.
    Layers are numbered `layer.N.` / `layers.N.` in every family's parameter names (ALBERT
    shares one layer across depths: it counts as the top, its embeddings one step below)."""
    index = {name: int(m.group(1)) for name in names if (m := _LAYER.search(name))}
    layers = max(index.values(), default=0) + 1
    return {
        name: layers - 1 - index[name] if name in index else (layers if "embed" in name else 0)
        for name in names
    }


def make_schedule(optimizer: torch.optim.Optimizer, total: int, warmup_ratio: float) -> Any:
    """Linear warm-up to the peak learning rate, then linear decay to zero."""
    warmup = int(total * warmup_ratio)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
