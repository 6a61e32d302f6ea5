"""Attention in fp32 while training in bf16 on a CPU.

PyTorch's CPU flash-attention kernel is slower backwards in bf16 than in fp32 (forward and
backward of 16 x 12 heads x 256 tokens x 32: 53 ms against 34 ms on an AMX Xeon; at 128 tokens
36 against 11 ms), so a bf16 training step spends most of its attention time there. Inside
`fp32_training_attention()`, the transformers "sdpa" attention of a module in training mode, on a
CPU, in bf16, runs on fp32 copies of its query, key and value and hands back bf16; everything else
(evaluation, prediction, GPUs, fp32 runs) goes to the original function untouched. Families whose
attention does not go through transformers' attention interface (DeBERTa) are unaffected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

KERNEL = "sdpa"


def _fp32_on_cpu(original: Callable[..., Any]) -> Callable[..., Any]:
    def attention(
        module: torch.nn.Module,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attention_mask: torch.Tensor | None,
        **kwargs: Any,
    ) -> Any:
        if not (module.training and query.device.type == "cpu" and query.dtype == torch.bfloat16):
            return original(module, query, key, value, attention_mask, **kwargs)
        if attention_mask is not None and attention_mask.is_floating_point():
            attention_mask = attention_mask.float()  # an additive mask; boolean ones stay
        # Autocast would cast the fp32 copies straight back to bf16 for the kernel.
        with torch.autocast("cpu", enabled=False):
            out, weights = original(
                module, query.float(), key.float(), value.float(), attention_mask, **kwargs
            )
        return out.to(query.dtype), weights

    return attention


@contextmanager
def fp32_training_attention() -> Iterator[None]:
    """Swap transformers' sdpa attention for `_fp32_on_cpu` of it, for the `with` block."""
    from transformers import AttentionInterface
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    original = ALL_ATTENTION_FUNCTIONS[KERNEL]
    AttentionInterface.register(KERNEL, _fp32_on_cpu(original))
    try:
        yield
    finally:
        AttentionInterface.register(KERNEL, original)
