"""`bertcli attention`: every layer's and head's attention, drawn and named by pattern."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bertcli.attention.extract import (
    DEFAULT_MAX_LENGTH,
    Sample,
    attention_samples,
    load_encoder,
    read_inputs,
)
from bertcli.attention.patterns import BROAD, PATTERNS, HeadPattern, classify

__all__ = [
    "BROAD",
    "DEFAULT_MAX_LENGTH",
    "PATTERNS",
    "AttentionResult",
    "HeadPattern",
    "Sample",
    "attention_samples",
    "classify",
    "explain",
    "read_inputs",
]


@dataclass
class AttentionResult:
    samples: list[Sample]
    heads: list[HeadPattern]
    html: Path | None = None
    png: Path | None = None

    def to_json(self) -> dict:
        return {
            "heads": [
                {"layer": h.layer, "head": h.head, "pattern": h.pattern, "score": h.score}
                for h in self.heads
            ]
        }


def explain(
    model: str,
    inputs: Sequence[tuple[str, str | None]],
    *,
    html: str | Path | None = None,
    png: str | Path | None = None,
    max_length: int = DEFAULT_MAX_LENGTH,
    window: int | None = None,
) -> AttentionResult:
    """Attention of `model` on `inputs` (text, pair-or-None), heads named by pattern; writes the
    HTML page and the model-view PNG (of the first window) when asked."""
    encoder, tokenizer, _ = load_encoder(model)
    samples = attention_samples(encoder, tokenizer, inputs, max_length=max_length, window=window)
    heads = classify([(s.attention, s.tokens) for s in samples])
    result = AttentionResult(samples, heads)
    if html is not None:
        from bertcli.attention.page import write_page

        result.html = write_page(html, model, samples, heads)
    if png is not None:
        from bertcli.attention.picture import write_grid

        result.png = write_grid(png, samples[0], heads, model)
    return result
