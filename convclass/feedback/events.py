"""What the feedback loop reads from and publishes on the bus, and the rows it stores.

============================== ================= ===================================================
detail-type                    source            detail model
============================== ================= ===================================================
Conversation Label Confirmed   ``HOST_SOURCE``   :class:`LabelConfirmed` (an agent set or kept a label)
Email Classified               inference         :class:`ClassifiedDetail` (convclass.events.EmailClassified)
Email Needs Review             ``FEEDBACK_SOURCE`` :class:`EmailNeedsReview` (low-confidence prediction)
============================== ================= ===================================================

Nothing here carries email text: ids, labels, probabilities and timestamps only. The agent is an opaque id
whose pattern cannot hold an email address or a name with spaces.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from convclass import layout
from convclass.errors import InvalidInput, validated
from convclass.events import EMAIL_CLASSIFIED, INFERENCE_SOURCE, ClassifierId, TenantId

#: Source the host product (the support tool agents work in) sends confirmations with.
HOST_SOURCE = "convclass.host"
#: Source of what the feedback loop publishes.
FEEDBACK_SOURCE = "convclass.feedback"
LABEL_CONFIRMED = "Conversation Label Confirmed"
NEEDS_REVIEW = "Email Needs Review"
#: Bus rule name (``layout.FEEDBACK_RULES``) → the event pattern that sends the loop's two inputs to the
#: feedback queue (what the stack creates, on AWS and on the embedded AWS).
CAPTURE_RULE_PATTERNS: dict[str, dict[str, list[str]]] = dict(
    zip(
        layout.FEEDBACK_RULES,
        (
            {"source": [HOST_SOURCE], "detail-type": [LABEL_CONFIRMED]},
            {"source": [INFERENCE_SOURCE], "detail-type": [EMAIL_CLASSIFIED]},
        ),
        strict=True,
    )
)

EventId = Annotated[str, AfterValidator(layout.validate_event_id)]
#: Opaque ids (agents, messages): no ``@``, no spaces, so an email address or a name cannot be stored.
OpaqueId = Annotated[str, Field(pattern=layout.EVENT_ID_PATTERN)]
ConversationId = Annotated[str, Field(min_length=1, max_length=256)]
Label = Annotated[str, Field(min_length=1, max_length=128)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LabelConfirmed(_Frozen):
    """Detail of ``Conversation Label Confirmed``: the label an agent set or kept on a conversation."""

    event_id: EventId
    tenant: TenantId
    classifier: ClassifierId
    conversation_id: ConversationId
    label: Label
    confirmed_at: AwareDatetime
    agent: OpaqueId


class LabelScore(_Frozen):
    label: Label
    probability: float = Field(ge=0, le=1)


class ServedPrediction(BaseModel):
    """The fields of ``convclass.serving.schemas.Prediction`` the feedback loop keeps (ids and scores)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    labels: list[LabelScore] = Field(min_length=1)
    model_version: str = Field(min_length=1, max_length=64)
    cleaning_version: str | None = Field(default=None, max_length=64)


class ServedResponse(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    predictions: list[ServedPrediction] = Field(min_length=1, max_length=1)


class ClassifiedDetail(BaseModel):
    """Detail of ``Email Classified`` as the inference workflow publishes it (the serving response of one
    email). ``event_id`` is used when the workflow sends one; otherwise the EventBridge envelope's id is."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    tenant: TenantId
    classifier: ClassifierId
    conversation_id: ConversationId
    message_id: str = Field(min_length=1, max_length=256)
    event_id: EventId | None = None
    prediction: ServedResponse


class PredictionRecord(_Frozen):
    """One stored prediction: which labels the endpoint proposed for a conversation, with their scores."""

    event_id: EventId
    tenant: TenantId
    classifier: ClassifierId
    conversation_id: ConversationId
    message_id: str = Field(min_length=1, max_length=256)
    predicted_at: AwareDatetime
    model_version: str
    cleaning_version: str | None = None
    #: Top-k labels, most probable first, and their probabilities (same order).
    labels: list[Label] = Field(min_length=1)
    scores: list[float] = Field(min_length=1)

    @property
    def top_label(self) -> str:
        return self.labels[0]

    @property
    def top_score(self) -> float:
        return self.scores[0]


class EmailNeedsReview(_Frozen):
    """Detail of ``Email Needs Review``: the top label's probability is under the review threshold."""

    event_id: EventId
    tenant: TenantId
    classifier: ClassifierId
    conversation_id: ConversationId
    message_id: str
    model_version: str
    labels: list[LabelScore]
    threshold: float = Field(ge=0, le=1)


class Envelope(BaseModel):
    """The EventBridge event around a detail (what a rule delivers to its queue)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    id: EventId
    detail_type: str = Field(alias="detail-type")
    source: str
    time: AwareDatetime
    detail: dict[str, Any]


FeedbackRecord = PredictionRecord | LabelConfirmed


def parse_event(body: str) -> FeedbackRecord:
    """An EventBridge event (JSON) → the record to store; ``InvalidInput`` names fields, never values."""
    envelope = validated(Envelope, body, what="feedback event", from_json=True)
    if envelope.detail_type == LABEL_CONFIRMED and envelope.source == HOST_SOURCE:
        return validated(LabelConfirmed, envelope.detail, what="feedback event detail")
    if envelope.detail_type == EMAIL_CLASSIFIED and envelope.source == INFERENCE_SOURCE:
        return prediction_record(
            validated(ClassifiedDetail, envelope.detail, what="feedback event detail"), envelope
        )
    raise InvalidInput("feedback events are Conversation Label Confirmed or Email Classified")


def prediction_record(detail: ClassifiedDetail, envelope: Envelope) -> PredictionRecord:
    (served,) = detail.prediction.predictions
    return PredictionRecord(
        event_id=detail.event_id or envelope.id,
        tenant=detail.tenant,
        classifier=detail.classifier,
        conversation_id=detail.conversation_id,
        message_id=detail.message_id,
        predicted_at=envelope.time,
        model_version=served.model_version,
        cleaning_version=served.cleaning_version,
        labels=[score.label for score in served.labels],
        scores=[score.probability for score in served.labels],
    )


def needs_review(record: PredictionRecord, threshold: float) -> EmailNeedsReview | None:
    """Active learning: the review request for a prediction under ``threshold``, else None.

    It carries the prediction's event id, so a redelivered prediction asks the host product the same
    question under the same id (the host product drops the repeat).
    """
    if record.top_score >= threshold:
        return None
    return EmailNeedsReview(
        event_id=record.event_id,
        tenant=record.tenant,
        classifier=record.classifier,
        conversation_id=record.conversation_id,
        message_id=record.message_id,
        model_version=record.model_version,
        labels=[
            LabelScore(label=lab, probability=p) for lab, p in zip(record.labels, record.scores, strict=True)
        ],
        threshold=threshold,
    )


def event_day(record: FeedbackRecord) -> datetime:
    """When the record happened (its day is its partition)."""
    return record.confirmed_at if isinstance(record, LabelConfirmed) else record.predicted_at
