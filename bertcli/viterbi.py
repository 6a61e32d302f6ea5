"""Torch-free CRF decoding: the saved transition scores and a batched numpy Viterbi.

Prediction decodes whole sentences after their windows are merged (a word's emission scores come
from the window that owns it), so decoding runs here, on numpy, for PyTorch and ONNX models alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class CrfScores:
    """Start (tags,), transition (from, to) and end (tags,) scores, bans already applied."""

    start: np.ndarray
    transitions: np.ndarray
    end: np.ndarray

    @classmethod
    def from_state(cls, state: Mapping[str, np.ndarray], prefix: str = "crf.") -> CrfScores:
        """From a CRF module's state (as saved in bertcli_head.safetensors)."""

        def get(name: str) -> np.ndarray:
            return np.asarray(state[prefix + name], dtype=np.float32)

        return cls(
            get("start_transitions") + get("start_penalty"),
            get("transitions") + get("transition_penalty"),
            get("end_transitions"),
        )

    @classmethod
    def from_file(cls, path: str | Path) -> CrfScores:
        from safetensors.numpy import load_file

        return cls.from_state(load_file(str(path)))


def viterbi(emissions: np.ndarray, lengths: Sequence[int], crf: CrfScores) -> list[list[int]]:
    """Best tag path of each sequence: (batch, seq, tags) emissions, true lengths >= 0.

    Vectorised over the batch and the tags; the only loop is over positions.
    """
    batch, seq, tags = emissions.shape
    if batch == 0 or seq == 0:
        return [[] for _ in range(batch)]
    lengths_arr = np.asarray(lengths)
    score = crf.start + emissions[:, 0]  # (batch, tags)
    identity = np.broadcast_to(np.arange(tags), (batch, tags))
    backpointers = np.empty((seq, batch, tags), dtype=np.int64)
    backpointers[0] = identity
    for t in range(1, seq):
        candidates = score[:, :, None] + crf.transitions  # (batch, from, to)
        previous = candidates.argmax(1)  # (batch, to)
        best = np.take_along_axis(candidates, previous[:, None, :], 1)[:, 0]
        live = (t < lengths_arr)[:, None]
        score = np.where(live, best + emissions[:, t], score)
        # Past a sequence's end, each tag points at itself so the last real tag carries forward.
        backpointers[t] = np.where(live, previous, identity)
    last = (score + crf.end).argmax(1)  # (batch,)
    path = np.empty((batch, seq), dtype=np.int64)
    path[:, -1] = last
    for t in range(seq - 1, 0, -1):
        path[:, t - 1] = np.take_along_axis(backpointers[t], path[:, t, None], 1)[:, 0]
    return [row[:n].tolist() for row, n in zip(path, lengths_arr, strict=True)]
