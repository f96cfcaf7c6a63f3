"""Bus events → stored rows: the real serving response parses, and nothing but ids and labels gets in."""

from __future__ import annotations

import json
from typing import Any

import pytest

from convclass.errors import InvalidInput
from convclass.events import EMAIL_CLASSIFIED, INFERENCE_SOURCE, email_event_id
from convclass.feedback.events import (
    HOST_SOURCE,
    LABEL_CONFIRMED,
    LabelConfirmed,
    PredictionRecord,
    needs_review,
    parse_event,
)
from convclass.serving.schemas import InvocationResponse, LabelScore, Prediction

TIME = "2026-12-01T09:00:00Z"


def envelope(detail_type: str, source: str, detail: dict[str, Any], event_id: str = "ev-1") -> str:
    return json.dumps(
        {
            "version": "0",
            "id": event_id,
            "detail-type": detail_type,
            "source": source,
            "time": TIME,
            "detail": detail,
        }
    )


def classified(**extra: Any) -> dict[str, Any]:
    response = InvocationResponse(
        predictions=[
            Prediction(
                id="msg-1",
                labels=[
                    LabelScore(label="refund", probability=0.45),
                    LabelScore(label="billing", probability=0.3),
                ],
                model_version="1",
                cleaning_version="3",
                warnings=["truncated"],
            )
        ]
    )
    return {
        "tenant": "acme",
        "classifier": "intent",
        "conversation_id": "conv-1",
        "message_id": "sqs-1",
        "prediction": response.model_dump(mode="json"),
        **extra,
    }


def confirmed(**extra: Any) -> dict[str, Any]:
    return {
        "event_id": "conf-1",
        "tenant": "acme",
        "classifier": "intent",
        "conversation_id": "conv-1",
        "label": "refund",
        "confirmed_at": TIME,
        "agent": "agent-42",
        **extra,
    }


def test_email_classified_as_the_workflow_publishes_it_becomes_a_prediction_row() -> None:
    record = parse_event(envelope(EMAIL_CLASSIFIED, INFERENCE_SOURCE, classified()))
    assert isinstance(record, PredictionRecord)
    assert (record.event_id, record.labels, record.scores) == ("ev-1", ["refund", "billing"], [0.45, 0.3])
    assert (record.model_version, record.cleaning_version) == ("1", "3")
    # The event id the inference workflow puts in the detail (one per SQS message) wins over the envelope's.
    published = email_event_id("0b7c2a5e-6f4d-4c1e-9a8b-3d2f1e0c9b8a", "classified")
    with_id = parse_event(envelope(EMAIL_CLASSIFIED, INFERENCE_SOURCE, classified(event_id=published)))
    assert with_id.event_id == published


def test_low_confidence_predictions_need_review() -> None:
    record = parse_event(envelope(EMAIL_CLASSIFIED, INFERENCE_SOURCE, classified()))
    assert isinstance(record, PredictionRecord)
    review = needs_review(record, 0.5)
    assert review is not None
    assert review.event_id == record.event_id
    assert [s.label for s in review.labels] == ["refund", "billing"]
    assert needs_review(record, 0.45) is None


def test_label_confirmed_parses() -> None:
    record = parse_event(envelope(LABEL_CONFIRMED, HOST_SOURCE, confirmed()))
    assert isinstance(record, LabelConfirmed)
    assert record.label == "refund"


@pytest.mark.parametrize(
    ("detail", "field"),
    [
        (confirmed(agent="jane.doe@example.com"), "agent"),
        (confirmed(agent="Jane Doe"), "agent"),
        (confirmed(tenant="../globex"), "tenant"),
        (confirmed(confirmed_at="2026-12-01T09:00:00"), "confirmed_at"),
        (confirmed(body="Dear support, my card number is ..."), "body"),
    ],
)
def test_confirmations_with_personal_data_or_bad_ids_are_refused_by_field_name(
    detail: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput, match=field) as raised:
        parse_event(envelope(LABEL_CONFIRMED, HOST_SOURCE, detail))
    assert "jane" not in str(raised.value).lower()
    assert "card number" not in str(raised.value)


def test_other_events_and_sources_are_refused() -> None:
    with pytest.raises(InvalidInput):
        parse_event(envelope(LABEL_CONFIRMED, "somebody.else", confirmed()))
    with pytest.raises(InvalidInput):
        parse_event("not json")
