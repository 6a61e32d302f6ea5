"""PyTorch inference: window logits in length-sorted batches, and the PyTorch Predictor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from bertcli.data.batching import WindowOutputs, pad_labels, pad_windows, sorted_batches
from bertcli.data.windows import Windows
from bertcli.precision import autocast, resolve_precision
from bertcli.predictor import BasePredictor

# bf16 prediction casts the encoder's weights, not only autocasts (False: autocast over fp32
# weights, the earlier behaviour; benchmarks/predict_throughput.py measures both).
BF16_ENCODER_WEIGHTS = True


@torch.inference_mode()
def window_logits(
    model: torch.nn.Module,
    windows: Windows,
    *,
    pad_id: int,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    precision: str = "no",
) -> np.ndarray | list[np.ndarray]:
    """Logits for every window, computed in length-sorted batches and returned in window order:
    (windows, labels), or one (length, labels) array per window for token-level heads; what of
    them the model's task keeps (`Task.kept_outputs`, given the windows' labels if any)."""
    model.eval()
    device = torch.device(device)
    out = WindowOutputs(windows)
    kind = getattr(model, "kind", None)
    for indices in sorted_batches(windows.lengths(), batch_size):
        padded = pad_windows(windows, indices, pad_id)
        batch = {k: torch.from_numpy(v).to(device) for k, v in padded.items()}
        with autocast(precision, device.type):
            logits = model(**batch)
        if kind is not None:
            labels = pad_labels(windows, indices, padded["input_ids"].shape[1])
            labels = None if labels is None else torch.from_numpy(labels).to(device)
            logits = kind.kept_outputs(logits, labels)
        out.add(logits.float().cpu().numpy(), indices)
    return out.result()


class Predictor(BasePredictor):
    """A saved bertcli model run with PyTorch: in bf16 (encoder weights and autocast) where the
    hardware is fast at it."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        precision: str = "auto",
        batch_size: int = 64,
        device: str | None = None,
        threads: int | None = None,
        long_inputs: dict[str, Any] | None = None,
        compile: bool = False,
    ) -> None:
        """`long_inputs` overrides the long-input settings saved with the model (strategy, ...);
        `compile` runs the model through torch.compile (slow first batches, faster after)."""
        from bertcli.compiling import compile_model, use_compile
        from bertcli.modeling.model import load_model

        if threads:
            torch.set_num_threads(threads)
        self.model, self.tokenizer, meta = load_model(model_dir)
        super().__init__(meta, long_inputs, model_dir)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self.device)
        self.precision = resolve_precision(precision, self.device.type)
        if self.precision == "bf16" and BF16_ENCODER_WEIGHTS:
            # Autocast re-casts every fp32 weight per batch and runs LayerNorm/GELU in fp32:
            # bf16 encoder weights skip both (9-15% more texts/s on an AMX Xeon, 99.9% of labels
            # as in fp32: benchmarks/RESULTS.md).
            # The task's heads (CRF, scorer) keep fp32 parameters; autocast still governs them.
            self.model.hf.base_model.to(torch.bfloat16)
        self.batch_size = batch_size
        if use_compile(compile, self.device.type, "--compile"):
            compile_model(self.model, inference=True)

    def window_logits(self, windows: Windows) -> np.ndarray | list[np.ndarray]:
        return window_logits(
            self.model,
            windows,
            pad_id=self.pad_id,
            batch_size=self.batch_size,
            device=self.device,
            precision=self.precision,
        )
