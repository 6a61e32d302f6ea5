"""The report's pictures (matplotlib's Agg canvas, no display), each saved as a PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

INK, MUTED, ACCENT, BEST = "#1f2430", "#6b7280", "#2563eb", "#d97706"


def number(value: float) -> str:
    """Shares with four decimals, percentages (SQuAD's 0-100) with two."""
    return f"{value:.4f}" if abs(value) <= 1 else f"{value:.2f}"


def _figure(width: float, height: float) -> Any:
    # Figure without pyplot: no global state and no display backend, so it works headless.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    return fig


def _style(ax: Any, title: str, xlabel: str = "", ylabel: str = "") -> None:
    ax.set_title(title, fontsize=10, color=INK, loc="left")
    ax.set_xlabel(xlabel, fontsize=8, color=MUTED)
    ax.set_ylabel(ylabel, fontsize=8, color=MUTED)
    ax.tick_params(labelsize=8, colors=MUTED)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(alpha=0.25)


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    return path


def curves(path: Path, steps: Sequence[int], loss: Sequence[float], lr: Sequence[float]) -> Path:
    """Training loss and learning rate against the optimizer step, side by side."""
    fig = _figure(8.4, 2.8)
    left, right = fig.subplots(1, 2)
    left.plot(steps, loss, color=ACCENT, lw=1.6)
    _style(left, "training loss", "step")
    right.plot(steps, lr, color="#0891b2", lw=1.6)
    right.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    _style(right, "learning rate", "step")
    return _save(fig, path)


def evaluations(
    path: Path, steps: Sequence[int], values: Sequence[float], metric: str, best_step: int | None
) -> Path:
    """The validation metric at each evaluation, the best checkpoint's marked."""
    fig = _figure(8.4, 2.8)
    ax = fig.subplots()
    ax.plot(steps, values, color=ACCENT, lw=1.6, marker="o", ms=4)
    if best_step is not None and best_step in steps:
        value = values[list(steps).index(best_step)]
        ax.plot(
            [best_step], [value], marker="*", ms=16, color=BEST, ls="none", label="best checkpoint"
        )
        ax.annotate(
            number(value),
            (best_step, value),
            textcoords="offset points",
            xytext=(8, -14),
            fontsize=8,
            color=BEST,
        )
        ax.legend(fontsize=8, frameon=False, loc="lower right")
    _style(ax, f"validation {metric}", "step")
    return _save(fig, path)


def confusion(path: Path, labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> Path:
    """Counts by true (rows) and predicted (columns) label; colour by share of the true label."""
    import numpy as np

    counts = np.asarray(matrix, dtype=float)
    shares = counts / np.clip(counts.sum(axis=1, keepdims=True), 1, None)
    n = len(labels)
    side = min(9.0, 2.2 + 0.45 * n)
    fig = _figure(side + 1.0, side)
    ax = fig.subplots()
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(
        range(n),
        [str(x) for x in labels],
        rotation=45 if n > 4 else 0,
        ha="right" if n > 4 else "center",
    )
    ax.set_yticks(range(n), [str(x) for x in labels])
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(
                    j,
                    i,
                    f"{int(counts[i, j])}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if shares[i, j] > 0.55 else INK,
                )
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true label")
    ax.set_title("confusion matrix", fontsize=10, color=INK, loc="left")
    ax.set_xlabel("predicted", fontsize=8, color=MUTED)
    ax.set_ylabel("true", fontsize=8, color=MUTED)
    ax.tick_params(labelsize=8)
    return _save(fig, path)


def per_type(path: Path, scores: dict[str, dict[str, Any]]) -> Path:
    """Precision, recall and F1 of each entity type as grouped bars."""
    import numpy as np

    kinds = list(scores)
    x = np.arange(len(kinds))
    fig = _figure(max(5.0, 1.2 + 1.1 * len(kinds)), 3.0)
    ax = fig.subplots()
    for offset, (name, color) in zip(
        (-0.27, 0, 0.27),
        (("precision", "#93c5fd"), ("recall", "#60a5fa"), ("f1", ACCENT)),
        strict=True,
    ):
        ax.bar(x + offset, [scores[k][name] for k in kinds], width=0.26, color=color, label=name)
    ax.set_xticks(x, [f"{k}\n({scores[k].get('support', 0)})" for k in kinds])
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _style(ax, "per entity type (support)")
    return _save(fig, path)
