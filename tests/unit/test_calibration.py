"""Temperature scaling and the auto-apply threshold on tiny, hand-checkable data."""

from __future__ import annotations

import numpy as np
import pytest

from convclass.calibration import (
    apply_temperature,
    coverage_at,
    fit_temperature,
    precision_threshold,
)
from convclass.training.evaluation import expected_calibration_error


def _overconfident(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three labels, always ~0.98 confident, right 70 % of the time."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    predicted = np.where(rng.random(n) < 0.7, y, (y + 1) % 3)
    probabilities = np.full((n, 3), 0.01)
    probabilities[np.arange(n), predicted] = 0.98
    return probabilities, y


def test_temperature_keeps_the_top_label_and_sums_to_one() -> None:
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], dtype=np.float32)
    scaled = apply_temperature(probabilities, 2.5)
    assert (scaled.argmax(axis=1) == probabilities.argmax(axis=1)).all()
    assert np.allclose(scaled.sum(axis=1), 1.0, atol=1e-6)
    assert scaled[0, 0] < probabilities[0, 0]
    assert apply_temperature(probabilities, 1.0) is probabilities


def test_fitted_temperature_softens_an_overconfident_model_and_lowers_ece() -> None:
    probabilities, y = _overconfident()
    temperature = fit_temperature(probabilities, y)
    assert temperature > 1.5
    before = expected_calibration_error(probabilities, y)
    after = expected_calibration_error(apply_temperature(probabilities, temperature), y)
    assert before > 0.2
    assert after < 0.05


def test_no_validation_rows_means_no_scaling() -> None:
    assert fit_temperature(np.zeros((0, 3)), np.zeros(0, dtype=int)) == 1.0


def test_threshold_is_the_lowest_confidence_reaching_the_target() -> None:
    # Confidences 0.9 (right), 0.8 (right), 0.7 (wrong), 0.6 (right), 0.5 (wrong).
    confidence = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    probabilities = np.stack([confidence, 1 - confidence], axis=1)
    y = np.array([0, 0, 1, 0, 1])
    found = precision_threshold(probabilities, y, target=0.95)
    assert found.threshold == pytest.approx(0.8)
    assert found.coverage == pytest.approx(0.4)
    assert found.precision == 1.0
    # 3 of 4 right at 0.6: a 0.75 target reaches further down.
    lower = precision_threshold(probabilities, y, target=0.75)
    assert lower.threshold == pytest.approx(0.6)
    assert lower.coverage == pytest.approx(0.8)
    assert coverage_at(probabilities, y, lower.threshold) == lower


def test_ties_are_applied_together() -> None:
    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4]])
    y = np.array([0, 1, 0])
    # Both 0.9 rows come together (1 of 2 right): 95 % is out of reach at any threshold.
    found = precision_threshold(probabilities, y, target=0.95)
    assert found.threshold is None
    assert found.coverage == 0.0
    assert coverage_at(probabilities, y, None).coverage == 0.0
