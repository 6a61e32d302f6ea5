"""The model view as a PNG: a layers x heads grid of small attention heat maps (matplotlib, Agg)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bertcli.attention.extract import Sample
from bertcli.attention.patterns import HeadPattern

SHORT = {
    "next": "next",
    "previous": "prev",
    "same": "same",
    "other_sentence": "other",
    "subword": "piece",
    "delimiter": "delim",
    "broad": "broad",
}


def write_grid(path: str | Path, sample: Sample, heads: Sequence[HeadPattern], model: str) -> Path:
    # Figure without pyplot: no global state and no display backend, so it works headless.
    from matplotlib.figure import Figure

    layers, n_heads = sample.attention.shape[:2]
    size = 1.15
    fig = Figure(figsize=(n_heads * size + 0.6, layers * size + 0.9), dpi=110)
    axes = fig.subplots(layers, n_heads, squeeze=False)
    named = {(h.layer, h.head): h for h in heads}
    for layer in range(layers):
        for head in range(n_heads):
            ax = axes[layer][head]
            ax.imshow(sample.attention[layer, head], cmap="Blues", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            found = named.get((layer, head))
            if found:
                ax.set_title(f"{SHORT[found.pattern]} {found.score:.2f}", fontsize=7, pad=2)
            if head == 0:
                ax.set_ylabel(f"L{layer}", fontsize=8)
    pair = f" / {sample.pair}" if sample.pair else ""
    fig.suptitle(f"{model}: {sample.text}{pair}"[:110], fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
