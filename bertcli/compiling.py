"""torch.compile: whether a run uses it, and the batch shapes it is given."""

from __future__ import annotations

import importlib.util
import shutil
from typing import Any, Literal

from bertcli.console import notice
from bertcli.errors import ConfigError

# Lengths are rounded up to this when compiling, so a run meets a handful of shapes (64, 128,
# ... max_length) instead of every length: each new shape costs a recompile.
COMPILE_MULTIPLE = 64
# Without compiling, GPU matmuls still prefer lengths that are multiples of 8 (tensor cores).
GPU_MULTIPLE = 8
OFF_HINTS = {"train.compile": "--set train.compile=false", "--compile": "drop --compile"}


def _missing_toolchain(device_type: str) -> str | None:
    """What torch.compile's default backend needs on this device and cannot find, if anything."""
    if device_type == "cuda":
        return None if importlib.util.find_spec("triton") else "the triton package"
    if not any(shutil.which(cc) for cc in ("g++", "c++", "clang++")):
        return "a C++ compiler (g++ or clang++) on PATH"
    return None


def use_compile(
    setting: bool | Literal["auto"], device_type: str, option: str = "train.compile"
) -> bool:
    """train.compile (or predict's `option`, --compile) resolved for this device.

    auto is off wherever it has been measured (benchmarks/RESULTS.md): on a 2-core AVX-512 CPU
    compiled MiniLM training steps ran 1.1-1.5x slower than eager, after 92 s of compiling; on
    an H200 a 200-step BERT-base run, 14 s of eager training, had not finished compiling and
    training after 200 s. `true` is for long GPU runs, where the warm-up can be repaid.
    """
    if setting == "auto" or not setting:
        return False
    missing = _missing_toolchain(device_type)
    if missing:
        raise ConfigError(
            f"{option}: torch.compile on {device_type} needs {missing}",
            f"install it, or leave compiling off ({OFF_HINTS.get(option, option)})",
        )
    return True


def pad_multiple(configured: int | None, compiled: bool, device_type: str) -> int:
    """train.pad_to_multiple_of, or its default for this run."""
    if configured:
        return configured
    if compiled:
        return COMPILE_MULTIPLE
    return GPU_MULTIPLE if device_type == "cuda" else 1


def compile_model(model: Any, *, inference: bool = False) -> Any:
    """Compile `model` in place (its parameters, state dict and class stay as they are).

    Training: dynamic=None, so shapes start static and become symbolic after the first
    recompile (the few padded lengths share one graph). Inference: weights frozen into the graph
    (inductor's `freezing`, which pre-packs them for the CPU's matmul kernels) and symbolic shapes
    from the start, since every batch of a length-sorted stream has its own length.
    """
    if inference:
        import torch._inductor.config

        torch._inductor.config.freezing = True
    first = "batches are" if inference else "steps of each new batch shape are"
    notice(f"compiling the model (torch.compile): the first {first} slow")
    model.compile(dynamic=True if inference else None)
    return model
