"""Agreement between the deployed model and the agents' final labels, and drift of what it predicts.

Pure functions over stored feedback rows; no I/O. A conversation's final label is its latest confirmation;
its prediction is the earliest one (the first inbound email is what the inference workflow classifies).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from convclass.feedback.events import LabelConfirmed, PredictionRecord

#: Confidence thresholds reported by coverage (share auto-applied at the threshold, and its accuracy).
DEFAULT_BANDS = (0.5, 0.7, 0.9)
#: Proportion substituted for a label absent from one side, so PSI stays finite.
PSI_EPSILON = 1e-4
PSI_MODERATE = 0.1
PSI_MAJOR = 0.25

DriftBand = Literal["none", "moderate", "major"]


@dataclass(frozen=True)
class LabelQuality:
    """Precision and recall of one label against final labels (None when nothing to divide by)."""

    predicted: int
    confirmed: int
    correct: int

    @property
    def precision(self) -> float | None:
        return self.correct / self.predicted if self.predicted else None

    @property
    def recall(self) -> float | None:
        return self.correct / self.confirmed if self.confirmed else None


@dataclass(frozen=True)
class Coverage:
    """At ``threshold``: the share of predictions at or above it and how often those were right."""

    threshold: float
    count: int
    share: float | None
    accuracy: float | None


@dataclass(frozen=True)
class Agreement:
    confirmations: int
    #: Confirmations whose conversation has a captured prediction (what the rates are over).
    matched: int
    top1: float | None
    top3: float | None
    per_label: dict[str, LabelQuality] = field(default_factory=dict)
    coverage: list[Coverage] = field(default_factory=list)
    day: date | None = None


def final_labels(confirmations: Iterable[LabelConfirmed]) -> dict[str, LabelConfirmed]:
    """Conversation id → its latest confirmation (ties broken by event id, so the result is stable)."""
    latest: dict[str, LabelConfirmed] = {}
    for item in sorted(confirmations, key=lambda c: (c.confirmed_at, c.event_id)):
        latest[item.conversation_id] = item
    return latest


def first_predictions(predictions: Iterable[PredictionRecord]) -> dict[str, PredictionRecord]:
    """Conversation id → its earliest prediction."""
    first: dict[str, PredictionRecord] = {}
    for item in sorted(predictions, key=lambda p: (p.predicted_at, p.event_id), reverse=True):
        first[item.conversation_id] = item
    return first


def _rate(hits: int, total: int) -> float | None:
    return hits / total if total else None


def agreement(
    predictions: Iterable[PredictionRecord],
    confirmations: Iterable[LabelConfirmed],
    bands: Sequence[float] = DEFAULT_BANDS,
    day: date | None = None,
) -> Agreement:
    finals = final_labels(confirmations)
    predicted = first_predictions(predictions)
    pairs = [(predicted[cid], final.label) for cid, final in finals.items() if cid in predicted]
    top1 = sum(1 for p, label in pairs if p.top_label == label)
    top3 = sum(1 for p, label in pairs if label in p.labels[:3])
    per_predicted = Counter(p.top_label for p, _ in pairs)
    per_confirmed = Counter(label for _, label in pairs)
    per_correct = Counter(label for p, label in pairs if p.top_label == label)
    per_label = {
        label: LabelQuality(per_predicted[label], per_confirmed[label], per_correct[label])
        for label in sorted(set(per_predicted) | set(per_confirmed))
    }
    coverage = []
    for threshold in bands:
        above = [(p, label) for p, label in pairs if p.top_score >= threshold]
        right = sum(1 for p, label in above if p.top_label == label)
        coverage.append(
            Coverage(threshold, len(above), _rate(len(above), len(pairs)), _rate(right, len(above)))
        )
    return Agreement(
        confirmations=len(finals),
        matched=len(pairs),
        top1=_rate(top1, len(pairs)),
        top3=_rate(top3, len(pairs)),
        per_label=per_label,
        coverage=coverage,
        day=day,
    )


def daily_agreement(
    predictions: Sequence[PredictionRecord], confirmations: Sequence[LabelConfirmed]
) -> list[Agreement]:
    """Agreement per day of confirmation (a case counts on the day its label was confirmed)."""
    finals = final_labels(confirmations).values()
    days = sorted({c.confirmed_at.date() for c in finals})
    return [
        agreement(predictions, [c for c in finals if c.confirmed_at.date() == day], day=day) for day in days
    ]


def psi(expected: Mapping[str, float], actual: Mapping[str, float], epsilon: float = PSI_EPSILON) -> float:
    """Population stability index of ``actual`` against ``expected`` (counts or weights per label).

    ``sum((a - e) * ln(a / e))`` over the union of labels, with proportions; a label missing on one side
    counts as ``epsilon``.
    """
    total_e, total_a = sum(expected.values()), sum(actual.values())
    if total_e <= 0 or total_a <= 0:
        raise ValueError("both distributions need a positive total")
    value = 0.0
    for label in set(expected) | set(actual):
        e = expected.get(label, 0) / total_e or epsilon
        a = actual.get(label, 0) / total_a or epsilon
        value += (a - e) * math.log(a / e)
    return value


def psi_band(value: float) -> DriftBand:
    if value < PSI_MODERATE:
        return "none"
    return "moderate" if value <= PSI_MAJOR else "major"


def trend(points: Sequence[tuple[int, float]]) -> float | None:
    """Least-squares slope of (day index, value) points; None with fewer than two days."""
    if len({x for x, _ in points}) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    num = sum((x - mean_x) * (y - mean_y) for x, y in points)
    den = sum((x - mean_x) ** 2 for x, _ in points)
    return num / den


@dataclass(frozen=True)
class Drift:
    #: Labels the deployed model knows (its training split's).
    known_labels: int
    #: Predictions the PSI is over (None PSI when there were none).
    predictions: int
    psi: float | None
    band: DriftBand | None
    #: Confirmed labels the deployed model was not trained on, with how many conversations carry them.
    unknown_labels: dict[str, int]
    #: Top-1 agreement per day, and its slope in points per day (None with fewer than two days).
    daily_top1: list[tuple[date, float]]
    top1_trend_points_per_day: float | None
    #: When each unknown label was first confirmed (in the window the confirmations cover).
    unknown_first_seen: dict[str, datetime] = field(default_factory=dict)


def drift(
    training_counts: Mapping[str, int],
    predictions: Sequence[PredictionRecord],
    confirmations: Sequence[LabelConfirmed],
) -> Drift:
    """Drift of the predicted-label distribution against the training set's, unknown labels, and the trend.

    ``training_counts`` is the deployed model's training split (label → examples, from its dataset manifest);
    its keys are the labels the model knows.
    """
    predicted = Counter(p.top_label for p in first_predictions(predictions).values())
    value = psi(training_counts, predicted) if predicted else None
    novel = [c for c in final_labels(confirmations).values() if c.label not in training_counts]
    unknown = Counter(c.label for c in novel)
    first_seen: dict[str, datetime] = {}
    for c in novel:
        first_seen[c.label] = min(first_seen.get(c.label, c.confirmed_at), c.confirmed_at)
    daily = [
        (a.day, a.top1) for a in daily_agreement(predictions, confirmations) if a.day and a.top1 is not None
    ]
    start = daily[0][0] if daily else None
    slope = trend([((day - start).days, 100 * top1) for day, top1 in daily]) if start else None
    return Drift(
        known_labels=len(training_counts),
        predictions=sum(predicted.values()),
        psi=value,
        band=psi_band(value) if value is not None else None,
        unknown_labels=dict(sorted(unknown.items())),
        daily_top1=daily,
        top1_trend_points_per_day=slope,
        unknown_first_seen=dict(sorted(first_seen.items())),
    )
