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


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    top = x.max(axis=axis, keepdims=True)
    return (top + np.log(np.exp(x - top).sum(axis=axis, keepdims=True))).squeeze(axis)


def marginals(emissions: np.ndarray, lengths: Sequence[int], crf: CrfScores) -> np.ndarray:
    """P(tag at position t | sentence) under the CRF, by forward-backward: (batch, seq, tags).

    These are the CRF's own confidences; softmaxed emission scores are not, since the
    transition scores also shape the decision. Positions past a sequence's length are 0.
    """
    batch, seq, tags = emissions.shape
    out = np.zeros((batch, seq, tags), dtype=np.float32)
    if batch == 0 or seq == 0:
        return out
    lengths_arr = np.asarray(lengths)
    emissions = emissions.astype(np.float64)
    transitions = crf.transitions.astype(np.float64)
    alpha = np.empty((seq, batch, tags))
    alpha[0] = crf.start + emissions[:, 0]
    for t in range(1, seq):
        step = _logsumexp(alpha[t - 1][:, :, None] + transitions, axis=1) + emissions[:, t]
        alpha[t] = np.where((t < lengths_arr)[:, None], step, alpha[t - 1])
    beta = np.zeros((seq, batch, tags))  # rows past a sequence's end stay finite
    # beta[t] = log-sum of paths from tag at t to the end; at a sequence's last position: end.
    beta[seq - 1] = np.broadcast_to(crf.end, (batch, tags))
    for t in range(seq - 2, -1, -1):
        step = _logsumexp(transitions + (emissions[:, t + 1] + beta[t + 1])[:, None, :], axis=2)
        last = (t == lengths_arr - 1)[:, None]
        beta[t] = np.where(last, crf.end, np.where((t < lengths_arr - 1)[:, None], step, beta[t]))
    log_z = _logsumexp(alpha[lengths_arr - 1, np.arange(batch)] + crf.end, axis=1)  # (batch,)
    live = (np.arange(seq)[:, None] < lengths_arr[None, :])[:, :, None]
    # Past a sequence's end alpha and beta hold leftovers: exp(-inf) = 0 there, no overflow.
    log_posterior = np.where(live, alpha + beta - log_z[None, :, None], -np.inf)
    return np.exp(log_posterior).transpose(1, 0, 2).astype(np.float32)  # (batch, seq, tags)
