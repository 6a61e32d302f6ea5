"""Pick the numeric precision: bf16 where the hardware runs it fast, fp32 elsewhere."""

from __future__ import annotations

import contextlib
from functools import cache
from pathlib import Path

from bertcli.errors import ConfigError


@cache
def cpu_has_fast_bf16() -> bool:
    """AVX-512 BF16 or AMX tiles: a bf16 matmul runs several times faster than fp32 there."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(requested: str, device_type: str) -> str:
    """Map auto|bf16|fp16|no to what accelerate's `mixed_precision` takes on this device."""
    import torch

    if requested == "auto":
        if device_type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        if device_type == "cpu":
            return "bf16" if cpu_has_fast_bf16() else "no"
        return "no"
    if requested == "fp16" and device_type == "cpu":
        raise ConfigError(
            "precision fp16 needs a GPU", "use --precision bf16 or no (fp32) on a CPU"
        )
    return requested


def autocast(precision: str, device_type: str) -> contextlib.AbstractContextManager:
    import torch

    if precision == "no":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device_type, dtype=dtype)
