"""Inference: window logits for a batch of examples, and a streaming Predictor for model dirs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from bertcli.data.collate import Collator, EpochBatches
from bertcli.data.load import Example
from bertcli.data.windows import Windows
from bertcli.precision import autocast, resolve_precision
from bertcli.tasks import ClassificationTask


@torch.inference_mode()
def window_logits(
    model: torch.nn.Module,
    windows: Windows,
    *,
    pad_id: int,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    precision: str = "no",
) -> torch.Tensor:
    """Logits for every window, computed in length-sorted batches and returned in window order."""
    model.eval()
    collate = Collator(windows, pad_id)
    order = EpochBatches(
        windows.lengths(), batch_size, shuffle=False, group_by_length=True, seed=0
    ).batches()
    out: torch.Tensor | None = None
    device = torch.device(device)
    for indices in order:
        batch = {k: v.to(device) for k, v in collate(indices).items()}
        with autocast(precision, device.type):
            logits = model(**batch).float()  # (batch, labels)
        if out is None:
            out = torch.empty((len(windows), logits.shape[-1]))
        out[batch["window_index"].cpu()] = logits.cpu()
    return out if out is not None else torch.empty((0, 0))


def resolve_long_inputs(saved: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The model's saved long-input settings with command-line overrides, validated."""
    from dataclasses import asdict

    from bertcli.config import LongInputsConfig, build

    merged = {**saved, **{k: v for k, v in overrides.items() if v is not None}}
    return asdict(build(LongInputsConfig, merged, "long_inputs."))


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class Predictor:
    """A saved bertcli model ready to predict; `predict_stream` keeps memory flat in input size."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        precision: str = "auto",
        batch_size: int = 64,
        device: str | None = None,
        threads: int | None = None,
        long_inputs: dict[str, Any] | None = None,
    ) -> None:
        """`long_inputs` overrides the long-input settings saved with the model (strategy, ...)."""
        from bertcli.modeling.model import load_classifier

        if threads:
            torch.set_num_threads(threads)
        self.model, self.tokenizer, self.meta = load_classifier(model_dir)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self.device)
        self.precision = resolve_precision(precision, self.device.type)
        self.batch_size = batch_size
        settings = resolve_long_inputs(self.meta.get("long_inputs", {}), long_inputs or {})
        self.task = ClassificationTask.from_settings(
            self.meta["labels"], self.meta["max_length"], settings
        )

    @property
    def clean(self) -> list[str]:
        return list(self.meta.get("clean", []))

    def predict_examples(self, examples: list[Example]) -> Any:
        windows = self.task.windows(self.tokenizer, examples)
        logits = window_logits(
            self.model,
            windows,
            pad_id=self.tokenizer.pad_token_id or 0,
            batch_size=self.batch_size,
            device=self.device,
            precision=self.precision,
        )
        return self.task.predict(logits, windows, len(examples))

    def predict_stream(
        self, examples: Iterable[Example], chunk: int | None = None
    ) -> Iterator[tuple[Example, dict[str, Any]]]:
        """Predict chunk by chunk (several batches, so length sorting pays), in input order."""
        for group in batched(examples, chunk or self.batch_size * 8):
            predictions = self.predict_examples(group)
            for i, example in enumerate(group):
                yield example, self.task.format(predictions, i)
