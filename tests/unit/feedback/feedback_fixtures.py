"""Small hand-made predictions and confirmations (figures in the tests are computed by hand from these)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from convclass.feedback.events import LabelConfirmed, PredictionRecord

DAY = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def prediction(
    conversation: str,
    labels: list[str],
    scores: list[float],
    *,
    tenant: str = "acme",
    classifier: str = "intent",
    at: datetime = DAY,
) -> PredictionRecord:
    return PredictionRecord(
        event_id=f"p-{tenant}-{conversation}",
        tenant=tenant,
        classifier=classifier,
        conversation_id=conversation,
        message_id=f"m-{conversation}",
        predicted_at=at,
        model_version="1",
        cleaning_version="3",
        labels=labels,
        scores=scores,
    )


def confirmation(
    conversation: str,
    label: str,
    *,
    tenant: str = "acme",
    classifier: str = "intent",
    at: datetime = DAY + timedelta(hours=2),
    event: str | None = None,
) -> LabelConfirmed:
    return LabelConfirmed(
        event_id=event or f"c-{tenant}-{conversation}-{label}",
        tenant=tenant,
        classifier=classifier,
        conversation_id=conversation,
        label=label,
        confirmed_at=at,
        agent="agent-7",
    )


def four_cases() -> tuple[list[PredictionRecord], list[LabelConfirmed]]:
    """c1 right; c2 and c3 right in the top 3 only; c4 wrong (final label d is unknown); c5 unpredicted."""
    predictions = [
        prediction("c1", ["a", "b", "c"], [0.9, 0.05, 0.05]),
        prediction("c2", ["b", "a", "c"], [0.6, 0.3, 0.1]),
        prediction("c3", ["a", "c", "b"], [0.4, 0.35, 0.25]),
        prediction("c4", ["c", "a", "b"], [0.8, 0.1, 0.1]),
    ]
    confirmations = [
        confirmation("c1", "b", at=DAY + timedelta(hours=1)),
        confirmation("c1", "a", at=DAY + timedelta(hours=3)),  # the final label: latest wins
        confirmation("c2", "a"),
        confirmation("c3", "b"),
        confirmation("c4", "d"),
        confirmation("c5", "a"),
    ]
    return predictions, confirmations
