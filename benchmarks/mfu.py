"""Model FLOPs utilisation: training FLOPs per token of an encoder, and the device's matmul peak.

FLOPs per trained token (forward + backward = 3 x forward, Kaplan et al. / PaLM appendix B):
6 N for the encoder layers' weights (N = L (4 h^2 + 2 h I), embeddings excluded: they are
lookups) plus 12 L h s for attention scores and their weighted sums over a sequence of s tokens.
Only real tokens count (padding is waste, not work), so MFU here is the conservative figure.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

# Dense bf16 matmul peak of an H100/H200 SXM by the vendor's datasheet (989.4 TFLOP/s).
H100_BF16_PEAK = 989.4e12


def train_flops_per_token(config_dir: str | Path, mean_tokens: float) -> float:
    config = json.loads((Path(config_dir) / "config.json").read_text())
    layers = config["num_hidden_layers"]
    hidden = config["hidden_size"]
    inner = config.get("intermediate_size", 4 * hidden)
    weights = layers * (4 * hidden * hidden + 2 * hidden * inner)
    return 6 * weights + 12 * layers * hidden * mean_tokens


def matmul_peak(device: str, dtype_name: str, size: int = 0, repeats: int = 0) -> float:
    """Measured FLOP/s of a large square matmul in `dtype_name` (bf16 or fp32) on `device`."""
    import torch

    dtype = torch.bfloat16 if dtype_name == "bf16" else torch.float32
    cuda = device == "cuda"
    size = size or (8192 if cuda else 2048)
    repeats = repeats or (10 if cuda else 5)
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    for _ in range(3 if cuda else 1):
        a @ b
    if cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if cuda:
        torch.cuda.synchronize()
    return 2 * size**3 * repeats / (time.perf_counter() - started)


def mfu(tokens_per_s: float, flops_per_token: float, peak: float) -> float:
    return tokens_per_s * flops_per_token / peak


def steady_samples_per_s(run_dir: Path) -> float | None:
    """A bertcli run's median logged samples/s over the second half of its training log: the
    rate a long run settles at, compile warm-up and first-call costs excluded."""
    log = (Path(run_dir) / "train_log.jsonl").read_text().splitlines()
    rates = [r["samples_per_s"] for r in map(json.loads, filter(None, log)) if "samples_per_s" in r]
    late = sorted(rates[len(rates) // 2 :])
    return late[len(late) // 2] if late else None
