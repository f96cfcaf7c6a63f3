"""Agreement, PSI and drift against figures computed by hand from the fixtures."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from feedback_fixtures import DAY, confirmation, four_cases, prediction

from convclass.feedback.metrics import agreement, daily_agreement, drift, psi, psi_band, trend


def test_agreement_matches_the_hand_computed_figures() -> None:
    predictions, confirmations = four_cases()
    found = agreement(predictions, confirmations)
    assert found.confirmations == 5  # c1..c5, c1 once (its latest label)
    assert found.matched == 4  # c5 has no prediction
    assert found.top1 == pytest.approx(1 / 4)
    assert found.top3 == pytest.approx(3 / 4)
    quality = {label: (q.precision, q.recall) for label, q in found.per_label.items()}
    assert quality == {"a": (0.5, 0.5), "b": (0.0, 0.0), "c": (0.0, None), "d": (None, 0.0)}
    bands = [(c.threshold, c.count, c.share, c.accuracy) for c in found.coverage]
    assert bands == [
        (0.5, 3, pytest.approx(0.75), pytest.approx(1 / 3)),
        (0.7, 2, pytest.approx(0.5), pytest.approx(0.5)),
        (0.9, 1, pytest.approx(0.25), pytest.approx(1.0)),
    ]


def test_agreement_without_confirmations_has_no_rates() -> None:
    found = agreement([prediction("c1", ["a"], [0.9])], [])
    assert (found.confirmations, found.matched, found.top1, found.top3) == (0, 0, None, None)
    assert [c.share for c in found.coverage] == [None, None, None]


def test_the_earliest_prediction_of_a_conversation_counts() -> None:
    earlier = prediction("c1", ["a"], [0.9], at=DAY)
    later = prediction("c1", ["b"], [0.9], at=DAY + timedelta(hours=1)).model_copy(update={"event_id": "p2"})
    assert agreement([later, earlier], [confirmation("c1", "a")]).top1 == 1.0


def test_psi_matches_the_hand_computed_value() -> None:
    # (0.8 - 0.5) ln(0.8 / 0.5) + (0.2 - 0.5) ln(0.2 / 0.5)
    expected = 0.3 * math.log(1.6) + (-0.3) * math.log(0.4)
    assert psi({"a": 50, "b": 50}, {"a": 80, "b": 20}) == pytest.approx(expected)
    assert expected == pytest.approx(0.415888, abs=1e-6)
    assert psi({"a": 1, "b": 3}, {"a": 10, "b": 30}) == pytest.approx(0.0)


def test_psi_counts_a_label_missing_on_one_side_as_epsilon() -> None:
    value = psi({"a": 1}, {"a": 1, "b": 1}, epsilon=1e-4)
    by_hand = (0.5 - 1.0) * math.log(0.5 / 1.0) + (0.5 - 1e-4) * math.log(0.5 / 1e-4)
    assert value == pytest.approx(by_hand)


@pytest.mark.parametrize(
    ("value", "band"),
    [(0.0, "none"), (0.099, "none"), (0.1, "moderate"), (0.25, "moderate"), (0.2501, "major")],
)
def test_psi_bands(value: float, band: str) -> None:
    assert psi_band(value) == band


def test_trend_is_the_least_squares_slope() -> None:
    assert trend([(0, 90.0), (1, 85.0), (2, 80.0)]) == pytest.approx(-5.0)
    assert trend([(0, 90.0)]) is None


def test_drift_reports_psi_unknown_labels_and_the_daily_trend() -> None:
    predictions, confirmations = four_cases()
    next_day = DAY + timedelta(days=1)
    predictions.append(prediction("c6", ["a", "b", "c"], [0.9, 0.05, 0.05], at=next_day))
    confirmations.append(confirmation("c6", "a", at=next_day))
    found = drift({"a": 60, "b": 30, "c": 10}, predictions, confirmations)
    # predicted top labels: a (c1, c3, c6), b (c2), c (c4) → 3/5, 1/5, 1/5 against 0.6, 0.3, 0.1
    by_hand = (0.2 - 0.3) * math.log(0.2 / 0.3) + (0.2 - 0.1) * math.log(0.2 / 0.1)
    assert (found.known_labels, found.predictions) == (3, 5)
    assert found.psi == pytest.approx(by_hand)
    assert found.band == "moderate"  # 0.110
    assert found.unknown_labels == {"d": 1}
    # day 1: 1 of 4 right (25 %), day 2: 1 of 1 (100 %): +75 points per day
    assert [(day, top1) for day, top1 in found.daily_top1] == [(DAY.date(), 0.25), (next_day.date(), 1.0)]
    assert found.top1_trend_points_per_day == pytest.approx(75.0)
    assert [a.day for a in daily_agreement(predictions, confirmations)] == [DAY.date(), next_day.date()]
