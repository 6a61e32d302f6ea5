"""The attention page: one self-contained HTML file (inline CSS, JS and data; nothing fetched)."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import asdict
from importlib import resources
from pathlib import Path

import numpy as np

from bertcli.attention.extract import Sample
from bertcli.attention.patterns import BROAD, PATTERNS, HeadPattern


def _label(sample: Sample, number: int) -> str:
    short = sample.text if len(sample.text) <= 48 else sample.text[:45] + "..."
    window = f" (window {sample.window}/{sample.windows})" if sample.windows > 1 else ""
    return f"{number}. {short}{window}"


def page_data(model: str, samples: Sequence[Sample], heads: Sequence[HeadPattern]) -> dict:
    """Everything the page's script draws from; weights as base64 bytes (0-255), a quarter of the
    size of JSON floats and precise enough to draw."""
    layers, n_heads = samples[0].attention.shape[:2]
    return {
        "model": model,
        "layers": int(layers),
        "heads": int(n_heads),
        "pattern_names": {**PATTERNS, BROAD: "broad attention"},
        "patterns": [
            {"layer": h.layer, "head": h.head, "pattern": h.pattern, "score": h.score}
            for h in heads
        ],
        "samples": [
            {
                "label": _label(s, i),
                "text": s.text,
                "pair": s.pair,
                "window": s.window,
                "windows": s.windows,
                **{k: v for k, v in asdict(s.tokens).items() if k in ("tokens", "segments")},
                "attention": base64.b64encode(
                    np.clip(np.rint(s.attention * 255), 0, 255).astype(np.uint8).tobytes()
                ).decode("ascii"),
            }
            for i, s in enumerate(samples, start=1)
        ],
    }


def render_page(model: str, samples: Sequence[Sample], heads: Sequence[HeadPattern]) -> str:
    template = resources.files("bertcli.attention").joinpath("view.html").read_text("utf-8")
    # "</" inside the JSON would end the <script> element early (a token such as "</s>").
    data = json.dumps(page_data(model, samples, heads)).replace("</", "<\\/")
    title = f"bertcli attention: {model}".replace("<", "&lt;")
    return template.replace("__TITLE__", title).replace("__DATA__", data)


def write_page(
    path: str | Path, model: str, samples: Sequence[Sample], heads: Sequence[HeadPattern]
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_page(model, samples, heads), encoding="utf-8")
    return path
