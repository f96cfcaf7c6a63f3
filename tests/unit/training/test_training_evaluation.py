from __future__ import annotations

import numpy as np
import pytest

from convclass.artifacts import DataSizes
from convclass.training.evaluation import build_metrics, expected_calibration_error
from convclass.training.trainer import class_weights, epoch_batches


def test_ece_is_zero_when_confidence_matches_accuracy() -> None:
    # Four predictions at confidence 0.75, three of them right.
    probabilities = np.array([[0.75, 0.25]] * 4)
    assert expected_calibration_error(probabilities, np.array([0, 0, 0, 1])) == pytest.approx(0.0)


def test_ece_measures_overconfidence() -> None:
    probabilities = np.array([[0.99, 0.01]] * 2)
    assert expected_calibration_error(probabilities, np.array([0, 1])) == pytest.approx(0.49)


def test_metrics_match_a_hand_computed_case() -> None:
    probabilities = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.6, 0.4, 0.0], [0.1, 0.2, 0.7]])
    metrics = build_metrics(
        probabilities=probabilities,
        y_true=np.array([0, 1, 1, 2]),
        labels=("a", "b", "c"),
        data=DataSizes(train=8, validation=0, test=4, n_labels=3),
        training_seconds=1.0,
        epochs=1,
        architecture="cnn",
        versions={},
        evaluated_on="test",
    )
    assert metrics.accuracy == 0.75
    assert metrics.confusion_matrix == ((1, 0, 0), (1, 1, 0), (0, 0, 1))
    assert metrics.per_label["a"].precision == 0.5
    assert metrics.per_label["b"].recall == 0.5
    assert metrics.per_label["c"].f1 == 1.0
    assert metrics.macro_f1 == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert metrics.weighted_f1 == pytest.approx((2 / 3 * 1 + 2 / 3 * 2 + 1 * 1) / 4)


def test_balanced_weights_give_each_label_the_same_total() -> None:
    y = np.array([0] * 8 + [1] * 2)
    weights = class_weights(y, 2, "balanced")
    assert weights[y == 0].sum() == pytest.approx(weights[y == 1].sum())
    assert weights.mean() == pytest.approx(1.0)
    assert (class_weights(y, 2, "none") == 1).all()


def test_epoch_batches_cover_every_row_once_and_depend_only_on_the_seed() -> None:
    lengths = np.random.default_rng(0).integers(1, 60, size=1003)
    first = list(epoch_batches(lengths, 32, np.random.default_rng([7, 1])))
    again = list(epoch_batches(lengths, 32, np.random.default_rng([7, 1])))
    assert np.array_equal(np.sort(np.concatenate(first)), np.arange(1003))
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert max(len(b) for b in first) == 32


def test_prior_correction_is_kept_when_it_lifts_validation_macro_f1() -> None:
    from convclass.training.evaluation import fit_prior_correction

    # Label 1 is rare in training and the model leans away from it: its rows score 0.45 against 0.55.
    y = np.array([0] * 8 + [1] * 4)
    probabilities = np.array([[0.9, 0.1]] * 8 + [[0.55, 0.45]] * 4)
    correction = fit_prior_correction(probabilities, y, train_counts=np.array([90, 10]))
    assert correction is not None
    assert correction.strength > 0
    assert correction.label_bias[1] > correction.label_bias[0]
    assert sum(correction.label_bias) == pytest.approx(0.0)
    assert correction.validation_macro_f1_after > correction.validation_macro_f1_before
    corrected = np.log(probabilities) + np.array(correction.label_bias)
    assert (corrected.argmax(axis=1) == y).all()


def test_no_prior_correction_when_it_does_not_help_or_nothing_to_fit_on() -> None:
    from convclass.training.evaluation import fit_prior_correction

    y = np.array([0, 0, 1, 1])
    right = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.1, 0.9]])
    assert fit_prior_correction(right, y, train_counts=np.array([90, 10])) is None
    assert fit_prior_correction(right[:0], y[:0], train_counts=np.array([90, 10])) is None
