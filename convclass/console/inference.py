"""Inference statistics from the events the inference workflow already publishes.

The inference workflow puts one ``Email Classified`` or ``Email Classification Failed`` event per inbound
email on the stack's bus. The archive keeps them per tenant, classifier and UTC day under
``ClassifierLayout.inference_events_prefix(day)`` as JSON Lines, one event per line, in the shape
EventBridge delivers (``detail-type``, ``time``, ``detail``). Events carry ids, labels and probabilities,
never email text. On AWS an EventBridge rule feeds a Firehose stream that partitions by
``detail.tenant``/``detail.classifier`` and day (see ``infra/console.py``); locally
:func:`archive_events` writes the same objects (``convclass-local console``).

:func:`read_stats` aggregates one classifier's days for the console's inference page.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from convclass import layout
from convclass.deployment import sse_kms
from convclass.events import EMAIL_CLASSIFICATION_FAILED, EMAIL_CLASSIFIED

CONFIDENCE_BINS = 10
#: Failed events keep only these fields (``cause`` may quote a container's answer).
_FAILED_FIELDS = ("tenant", "classifier", "conversation_id", "message_id", "error")


def _day_of(event: Mapping[str, Any]) -> date:
    try:
        return (
            datetime.fromisoformat(str(event.get("time", "")).replace("Z", "+00:00")).astimezone(UTC).date()
        )
    except ValueError:
        return datetime.now(UTC).date()


def _archived(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """What the archive keeps of one event, or ``None`` if it is not an attributable inference event."""
    kind = event.get("detail-type")
    detail = event.get("detail")
    if kind not in (EMAIL_CLASSIFIED, EMAIL_CLASSIFICATION_FAILED) or not isinstance(detail, Mapping):
        return None
    if kind == EMAIL_CLASSIFICATION_FAILED:
        detail = {key: detail.get(key) for key in _FAILED_FIELDS}
    return {"detail-type": kind, "time": event.get("time"), "detail": dict(detail)}


def archive_events(
    s3: Any, bucket: str, events: Iterable[Mapping[str, Any]], *, kms_key_arn: str | None
) -> int:
    """Write inference events to their tenant/classifier/day folders, one object per folder; return how many
    were archived (events without a valid tenant and classifier cannot be attributed and are skipped)."""
    groups: dict[tuple[str, str, date], list[dict[str, Any]]] = {}
    for event in events:
        kept = _archived(event)
        if kept is None:
            continue
        detail = kept["detail"]
        try:
            where = layout.ClassifierLayout(str(detail.get("tenant")), str(detail.get("classifier")))
        except ValueError:
            continue
        groups.setdefault((where.tenant, where.classifier, _day_of(kept)), []).append(kept)
    for (tenant, classifier, day), items in groups.items():
        prefix = layout.ClassifierLayout(tenant, classifier).inference_events_prefix(day)
        key = f"{prefix}{uuid.uuid4().hex}.jsonl"
        body = "".join(json.dumps(item, separators=(",", ":")) + "\n" for item in items)
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=body.encode(),
            ContentType="application/x-ndjson",
            **(sse_kms(kms_key_arn) if kms_key_arn else {}),
        )
    return sum(len(items) for items in groups.values())


@dataclass
class DayStats:
    day: date
    classified: int = 0
    failed: int = 0
    labels: Counter[str] = field(default_factory=Counter)


@dataclass
class InferenceStats:
    days: list[DayStats]
    confidence: list[int]
    errors: Counter[str]

    @property
    def classified(self) -> int:
        return sum(day.classified for day in self.days)

    @property
    def failed(self) -> int:
        return sum(day.failed for day in self.days)

    @property
    def labels(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for day in self.days:
            total.update(day.labels)
        return total


def _top(prediction: Any) -> tuple[str, float] | None:
    """The top label and its probability of a serving response for one email."""
    predictions = prediction.get("predictions") if isinstance(prediction, Mapping) else None
    first = predictions[0] if isinstance(predictions, list) and predictions else None
    labels = first.get("labels") if isinstance(first, Mapping) else None
    top = labels[0] if isinstance(labels, list) and labels else None
    if not isinstance(top, Mapping):
        return None
    try:
        return str(top["label"]), float(top["probability"])
    except (KeyError, TypeError, ValueError):
        return None


def read_stats(
    s3: Any, bucket: str, where: layout.ClassifierLayout, *, days: int = 14, today: date | None = None
) -> InferenceStats:
    """Aggregate the classifier's archived events of the last ``days`` days (today included)."""
    today = today or datetime.now(UTC).date()
    first = today - timedelta(days=days - 1)
    per_day = {first + timedelta(days=i): DayStats(first + timedelta(days=i)) for i in range(days)}
    confidence = [0] * CONFIDENCE_BINS
    errors: Counter[str] = Counter()
    prefix = where.inference_events_prefix()
    start_after = where.inference_events_prefix(first - timedelta(days=1)) + "~"
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, StartAfter=start_after
    ):
        for item in page.get("Contents", []):
            day_text = item["Key"][len(prefix) :].split("/", 1)[0]
            try:
                stats = per_day.get(date.fromisoformat(day_text))
            except ValueError:
                continue
            if stats is None:
                continue
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
            for line in body.splitlines():
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                detail = event.get("detail") if isinstance(event, dict) else None
                if not isinstance(detail, dict) or (detail.get("tenant"), detail.get("classifier")) != (
                    where.tenant,
                    where.classifier,
                ):
                    continue
                if event.get("detail-type") == EMAIL_CLASSIFIED:
                    top = _top(detail.get("prediction"))
                    stats.classified += 1
                    if top is not None:
                        stats.labels[top[0]] += 1
                        confidence[min(CONFIDENCE_BINS - 1, int(top[1] * CONFIDENCE_BINS))] += 1
                elif event.get("detail-type") == EMAIL_CLASSIFICATION_FAILED:
                    stats.failed += 1
                    errors[str(detail.get("error") or "unknown")] += 1
    return InferenceStats(days=list(per_day.values()), confidence=confidence, errors=errors)
