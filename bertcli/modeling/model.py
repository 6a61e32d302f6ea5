"""Encoder + classification head; saved as a plain Hugging Face directory plus bertcli extras.

With `pooling: cls` the model *is* `AutoModelForSequenceClassification` (the [CLS] vector through
the pooler and a linear layer), so the saved directory loads as-is in `transformers.pipeline`.
Extra bertcli-only heads (mean pooling) live in `bertcli_head.safetensors` beside it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bertcli.errors import ModelError
from bertcli.modeling.heads import MeanPoolHead
from bertcli.predictor import META_FILE, read_meta

HEAD_FILE = "bertcli_head.safetensors"


class SequenceClassifier(nn.Module):
    def __init__(self, hf_model: nn.Module, pooling: str = "cls") -> None:
        super().__init__()
        self.hf = hf_model
        self.pooling = pooling
        config = hf_model.config
        self.head: nn.Module | None = None
        if pooling == "mean":
            dropout = getattr(config, "classifier_dropout", None) or config.hidden_dropout_prob
            self.head = MeanPoolHead(config.hidden_size, config.num_labels, dropout)

    @property
    def config(self) -> Any:
        return self.hf.config

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        **_: Any,
    ) -> torch.Tensor:
        if self.head is None:
            return self.hf(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).logits  # (batch, labels)
        hidden = self.hf.base_model(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state  # (batch, seq, hidden)
        return self.head(hidden, attention_mask)


def quiet_transformers() -> None:
    """bertcli draws its own progress; transformers' per-file bars would interleave with it."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def build_classifier(
    path: str,
    label_names: Sequence[str],
    *,
    pooling: str = "cls",
    dropout: float | None = None,
    attention_dropout: float | None = None,
    local_files_only: bool = True,
) -> tuple[SequenceClassifier, Any]:
    """A pretrained encoder with a freshly initialised classification head, and its tokenizer."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    quiet_transformers()  # "Some weights were newly initialized" is expected: we train the head.
    id2label = dict(enumerate(label_names))
    extra: dict[str, float] = {}
    if dropout is not None:
        extra["classifier_dropout"] = dropout
    if attention_dropout is not None:
        # Dropout on the (batch, heads, seq, seq) attention probabilities forces PyTorch's
        # unfused attention path; without it scaled_dot_product_attention runs fused.
        extra["attention_probs_dropout_prob"] = attention_dropout
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local_files_only)
        hf_model = AutoModelForSequenceClassification.from_pretrained(
            path,
            num_labels=len(label_names),
            id2label=id2label,
            label2id={v: k for k, v in id2label.items()},
            local_files_only=local_files_only,
            **extra,
        )
    except OSError as exc:
        raise ModelError(f"{path}: cannot load model ({str(exc).splitlines()[0]})") from None
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(f"{path}: bertcli needs a fast (Rust) tokenizer; none found")
    return SequenceClassifier(hf_model, pooling), tokenizer


def load_classifier(model_dir: str | Path) -> tuple[SequenceClassifier, Any, dict[str, Any]]:
    """Load a directory written by `save_model` (or a checkpoint's model folder)."""
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    meta = read_meta(model_dir)
    quiet_transformers()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        hf_model = AutoModelForSequenceClassification.from_pretrained(
            str(model_dir), local_files_only=True
        )
    except (OSError, ValueError) as exc:
        raise ModelError(f"{model_dir}: cannot load model ({str(exc).splitlines()[0]})") from None
    model = SequenceClassifier(hf_model, meta.get("pooling", "cls"))
    if model.head is not None:
        head_path = Path(model_dir) / HEAD_FILE
        if not head_path.is_file():
            raise ModelError(f"{model_dir}: {HEAD_FILE} is missing (mean-pooling head)")
        model.head.load_state_dict(load_file(str(head_path)))
    model.eval()
    return model, tokenizer, meta


def write_json_atomic(path: Path, data: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; model files are meant to be shared
    os.replace(tmp, path)


def save_model(
    model: SequenceClassifier, tokenizer: Any, out_dir: Path, meta: dict[str, Any]
) -> None:
    """Write model, tokenizer and bertcli.json into `out_dir` without ever leaving it half-written.

    Everything is written to a temporary sibling folder first, then moved file by file with atomic
    renames; bertcli.json goes last, so its presence marks a complete model.
    """
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=".saving-"))
    try:
        model.hf.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        if model.head is not None:
            state = {k: v.contiguous() for k, v in model.head.state_dict().items()}
            save_file(state, str(staging / HEAD_FILE))
        (out_dir / META_FILE).unlink(missing_ok=True)
        for item in sorted(staging.iterdir()):
            os.chmod(item, 0o644)
            os.replace(item, out_dir / item.name)
        write_json_atomic(out_dir / META_FILE, meta)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
