"""Confidence a customer can act on: temperature scaling and the auto-apply threshold.

Training fits both on the validation split (never on test): the temperature ``T`` that minimises the
negative log-likelihood of ``softmax(log p / T)`` (Guo et al., 2017), then the lowest calibrated confidence
at which the predictions at or above it reach the target precision. Serving applies the same temperature to
the model's probabilities and answers ``auto_apply: true`` when the top label's calibrated probability
reaches the threshold. Temperature scaling never changes which label is on top.

NumPy only (SciPy for the fit), so serving imports it without TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_TARGET_PRECISION = 0.95
_TEMPERATURE_BOUNDS = (0.05, 20.0)


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log p / T)`` row by row; ``T == 1`` returns the probabilities unchanged."""
    if temperature == 1.0 or probabilities.size == 0:
        return probabilities
    logits = np.log(np.clip(probabilities.astype(np.float64), 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    result: np.ndarray = (exp / exp.sum(axis=1, keepdims=True)).astype(probabilities.dtype)
    return result


def _nll(probabilities: np.ndarray, y: np.ndarray, temperature: float) -> float:
    scaled = apply_temperature(probabilities.astype(np.float64), temperature)
    return float(-np.log(np.clip(scaled[np.arange(len(y)), y], 1e-12, 1.0)).mean())


def fit_temperature(probabilities: np.ndarray, y: np.ndarray) -> float:
    """The temperature minimising validation NLL (bounded search in log space); 1.0 without data."""
    if len(y) == 0:
        return 1.0
    from scipy.optimize import minimize_scalar

    low, high = np.log(_TEMPERATURE_BOUNDS[0]), np.log(_TEMPERATURE_BOUNDS[1])
    found = minimize_scalar(
        lambda log_t: _nll(probabilities, y, float(np.exp(log_t))),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-4},
    )
    temperature = float(np.exp(found.x))
    # Never worse than leaving the model as it is.
    return temperature if _nll(probabilities, y, temperature) <= _nll(probabilities, y, 1.0) else 1.0


@dataclass(frozen=True)
class Coverage:
    """Rows whose confidence reaches ``threshold``: their share of all rows and how many are right."""

    threshold: float | None
    coverage: float
    precision: float


def coverage_at(probabilities: np.ndarray, y: np.ndarray, threshold: float | None) -> Coverage:
    """How many rows a threshold auto-applies and how precise those are (``None``: nothing is applied)."""
    if threshold is None or len(y) == 0:
        return Coverage(threshold, 0.0, 0.0)
    applied = probabilities.max(axis=1) >= threshold
    if not applied.any():
        return Coverage(threshold, 0.0, 0.0)
    correct = probabilities.argmax(axis=1) == y
    return Coverage(threshold, float(applied.mean()), float(correct[applied].mean()))


def precision_threshold(probabilities: np.ndarray, y: np.ndarray, target: float) -> Coverage:
    """The lowest confidence at which the rows at or above it are right at least ``target`` of the time.

    The lowest such threshold gives the most coverage. ``threshold`` is ``None`` when no confidence level
    reaches the target (then nothing is auto-applied).
    """
    if len(y) == 0:
        return Coverage(None, 0.0, 0.0)
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == y).astype(np.float64)
    order = np.argsort(-confidence, kind="stable")
    confidence, correct = confidence[order], correct[order]
    # Only the last row of each run of equal confidences is a real cut: a threshold takes all ties.
    last_of_run = np.append(confidence[1:] != confidence[:-1], True)
    counts = np.arange(1, len(y) + 1)[last_of_run]
    precision = np.cumsum(correct)[last_of_run] / counts
    reaching = np.flatnonzero(precision >= target)
    if not len(reaching):
        return Coverage(None, 0.0, 0.0)
    best = int(reaching[-1])
    return Coverage(
        float(confidence[last_of_run][best]), float(counts[best] / len(y)), float(precision[best])
    )
