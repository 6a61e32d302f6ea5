"""`train.class_weights`: per-label loss weights, as given or by inverse label frequency."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bertcli.errors import ConfigError


def resolve_class_weights(
    setting: list[float] | str | None, counts: np.ndarray | None, names: Sequence[str]
) -> list[float] | None:
    """The weights of `setting` for labels `names` whose training counts are `counts` (None:
    the task takes no class weights). auto = total / (labels x count): a label seen half as
    often as the average weighs twice as much (scikit-learn's "balanced")."""
    if setting is None:
        return None
    if counts is None:
        raise ConfigError(
            "train.class_weights: this task takes no class weights",
            "they apply to classification and to tagging with the linear head",
        )
    if setting == "auto":
        total = float(counts.sum())
        return [round(total / (len(counts) * max(int(c), 1)), 6) for c in counts]
    if len(setting) != len(names):
        raise ConfigError(
            f"train.class_weights: {len(setting)} weights for {len(names)} labels "
            f"({', '.join(names)})",
            "give one weight per label, in that order, or use auto",
        )
    return [float(w) for w in setting]
