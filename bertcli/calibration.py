"""Temperature scaling (Guo et al. 2017) and expected calibration error, in numpy.

A classifier's softmax probabilities are usually over-confident after fine-tuning; dividing the
logits by one temperature T fitted on validation (minimum negative log-likelihood) makes them
honest without changing any argmax. Multi-label heads get one T per label (sigmoid per label).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

ECE_BINS = 15  # Guo et al.'s and most papers' bin count
# Fewer validation examples than this fit noise, not calibration: T stays 1.
MIN_EXAMPLES = 100
# T is searched in [0.05, 20]: beyond it a model is broken, not miscalibrated.
_LOG_T_RANGE = (math.log(0.05), math.log(20.0))
_GOLDEN = (math.sqrt(5) - 1) / 2


def _minimise(f: Callable[[float], float], low: float, high: float, steps: int = 80) -> float:
    """Golden-section search: the NLL is convex in 1/T, so unimodal in log T."""
    a, b = low, high
    c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(steps):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - _GOLDEN * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + _GOLDEN * (b - a)
            fd = f(d)
    return (a + b) / 2


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def softmax_nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of `labels` under softmax(logits / T)."""
    logp = log_softmax(np.asarray(logits, dtype=np.float64) / temperature)
    return float(-logp[np.arange(len(labels)), labels].mean())


def sigmoid_nll(logits: np.ndarray, targets: np.ndarray, temperature: float) -> float:
    """Mean binary cross-entropy of 0/1 `targets` under sigmoid(logits / T)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    # log(1 + e^z) - y z, computed without overflow
    return float((np.logaddexp(0.0, z) - np.asarray(targets, dtype=np.float64) * z).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T minimising softmax NLL of (examples, classes) `logits` against label ids.

    T stays 1 on fewer than MIN_EXAMPLES examples, and when every argmax is right: then the
    likelihood only grows as T falls to 0, which would make every prediction certain."""
    logits, labels = np.asarray(logits), np.asarray(labels, dtype=np.int64)
    if len(labels) < MIN_EXAMPLES or (logits.argmax(-1) == labels).all():
        return 1.0
    log_t = _minimise(lambda lt: softmax_nll(logits, labels, math.exp(lt)), *_LOG_T_RANGE)
    return round(math.exp(log_t), 4)


def fit_label_temperatures(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """One T per label minimising sigmoid NLL. As in `fit_temperature`, a label keeps T = 1 on
    few examples or when its logits' signs are never wrong (the optimum would be T -> 0)."""
    logits, targets = np.asarray(logits), np.asarray(targets)
    out = np.ones(logits.shape[1], dtype=np.float64)
    if len(targets) < MIN_EXAMPLES:
        return out
    for j in range(logits.shape[1]):
        z, y = logits[:, j], targets[:, j]
        if ((z > 0) != (y > 0.5)).any():
            log_t = _minimise(lambda lt, z=z, y=y: sigmoid_nll(z, y, math.exp(lt)), *_LOG_T_RANGE)
            out[j] = round(math.exp(log_t), 4)
    return out


def expected_calibration_error(
    confidence: np.ndarray, outcome: np.ndarray, bins: int = ECE_BINS
) -> float:
    """ECE: |mean outcome - mean confidence| per equal-width confidence bin, weighted by the
    bin's share of predictions. For single-label classification `confidence` is the top
    probability and `outcome` whether the top label was right; for multi-label, every
    (example, label) probability against whether the label is there."""
    confidence = np.asarray(confidence, dtype=np.float64).ravel()
    outcome = np.asarray(outcome, dtype=np.float64).ravel()
    if not len(confidence):
        return 0.0
    # Bin b holds (b/bins, (b+1)/bins]; a confidence of exactly 0 goes to the first bin.
    index = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        in_bin = index == b
        if in_bin.any():
            gap = abs(outcome[in_bin].mean() - confidence[in_bin].mean())
            total += in_bin.mean() * gap
    return round(float(total), 4)
