"""Run an encoder with eager attention and keep every layer's and head's weights per input."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bertcli.attention.patterns import Tokens
from bertcli.errors import DataError, ModelError

DEFAULT_MAX_LENGTH = 128  # tokens per window: 12 x 12 heads x 128^2 weights is already 2.4M


@dataclass
class Sample:
    """One window of one input: its tokens and attention, (layers, heads, seq, seq)."""

    text: str
    pair: str | None
    window: int  # 1-based
    windows: int
    tokens: Tokens
    attention: np.ndarray


def read_inputs(path: str | Path) -> list[tuple[str, str | None]]:
    """Inputs from a file: JSON lines with "text" (and "pair"), or one text per line with an
    optional TAB before its pair text."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file", "pass --input with a text or JSONL file")
    inputs: list[tuple[str, str | None]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        if path.suffix.lower() == ".jsonl":
            try:
                record = json.loads(line)
                inputs.append((str(record["text"]), record.get("pair")))
            except (ValueError, KeyError, TypeError):
                raise DataError(
                    f'{path}:{number}: expected a JSON object with "text" (and "pair")'
                ) from None
        else:
            text, _, pair = line.partition("\t")
            inputs.append((text, pair or None))
    if not inputs:
        raise DataError(f"{path}: no inputs (one text per line, TAB before a pair text)")
    return inputs


def load_encoder(name: str) -> tuple[Any, Any, str]:
    """The encoder (any BERT-family AutoModel, or the encoder of a fine-tuned directory) with eager
    attention - SDPA and flash kernels never materialise the weights - and its tokenizer."""
    from transformers import AutoModel

    from bertcli.hub import resolve_model
    from bertcli.modeling.loading import load_pretrained, load_tokenizer
    from bertcli.modeling.model import quiet_transformers

    quiet_transformers()
    source = resolve_model(name)
    # Shared loaders: no remote code, safetensors only, one-line errors naming the file.
    tokenizer = load_tokenizer(source.path, local_files_only=source.local_files_only)
    model = load_pretrained(
        AutoModel,
        source.path,
        local_files_only=source.local_files_only,
        attn_implementation="eager",
    )
    model.eval()
    return model, tokenizer, source.path


def _windows(tokenizer: Any, text: str, pair: str | None, max_length: int) -> Any:
    """The input's windows of at most `max_length` tokens: a long text is cut into consecutive
    windows; with a pair, the pair text is cut and the first text repeated."""
    enc = tokenizer(
        text,
        pair,
        truncation="only_second" if pair else True,
        max_length=max_length,
        return_overflowing_tokens=True,
        stride=0,
    )
    return enc


def attention_samples(
    model: Any,
    tokenizer: Any,
    inputs: Sequence[tuple[str, str | None]],
    *,
    max_length: int = DEFAULT_MAX_LENGTH,
    window: int | None = None,
) -> list[Sample]:
    """Attention of each input's window `window` (1-based; all windows when None)."""
    import torch

    positions = getattr(model.config, "max_position_embeddings", None) or max_length
    max_length = min(max_length, positions)
    samples = []
    for number, (text, pair) in enumerate(inputs, start=1):
        if not text.strip():
            raise DataError(f"input {number}: empty text")
        try:
            enc = _windows(tokenizer, text, pair, max_length)
        except Exception as exc:  # the tokenizer's "sequence too long to truncate" and kin
            raise DataError(
                f"input {number}: the first text does not fit {max_length} tokens beside its pair "
                f"({type(exc).__name__})",
                "shorten it or raise --max-length",
            ) from None
        count = len(enc["input_ids"])
        if window is not None and not 1 <= window <= count:
            raise DataError(
                f"--window {window}: input {number} has {count} window(s) of {max_length} tokens",
                f"choose 1..{count}",
            )
        chosen = range(count) if window is None else [window - 1]
        for index in chosen:
            ids = enc["input_ids"][index]
            feed = {"input_ids": torch.tensor([ids])}
            if "token_type_ids" in enc and getattr(model.config, "type_vocab_size", 1) > 1:
                feed["token_type_ids"] = torch.tensor([enc["token_type_ids"][index]])
            with torch.no_grad():
                out = model(**feed, output_attentions=True)
            if not out.attentions or out.attentions[0] is None:
                raise ModelError(f"{type(model).__name__} returned no attention weights")
            # layers x (1, heads, seq, seq) -> (layers, heads, seq, seq)
            attention = torch.stack([a[0] for a in out.attentions]).float().numpy()
            sequence = enc.sequence_ids(index)
            tokens = Tokens(
                tokenizer.convert_ids_to_tokens(ids),
                _words(enc.word_ids(index), sequence),
                list(sequence),
            )
            samples.append(Sample(text, pair, index + 1, count, tokens, attention))
    return samples


def _words(word_ids: list[int | None], sequence: list[int | None]) -> list[int | None]:
    """Word ids unique across both texts of a pair (the tokenizer restarts them at 0)."""
    offset = 1 + max(
        (w for w, s in zip(word_ids, sequence, strict=True) if s == 0 and w is not None), default=-1
    )
    return [
        None if w is None else w + (offset if s == 1 else 0)
        for w, s in zip(word_ids, sequence, strict=True)
    ]
