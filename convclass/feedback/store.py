"""Feedback rows as Parquet in the data bucket: one object per event, under its tenant, classifier and day.

The key is ``layout.ClassifierLayout.feedback_key(kind, day, event_id)``: a redelivered event maps to the
object already written and its conditional write is refused (no second row, no new object version).
Columns are ids, labels, scores and timestamps only (``STORED_COLUMNS``); no column could hold email
text.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from convclass.deployment import sse_kms
from convclass.feedback.events import FeedbackRecord, LabelConfirmed, PredictionRecord, event_day
from convclass.layout import ClassifierLayout

PREDICTIONS, CONFIRMATIONS = "predictions", "confirmations"
#: Object tag the bucket's feedback lifecycle rule filters on (S3 filters cannot wildcard the tenant).
AREA_TAG = ("convclass-area", "feedback")
#: Days captured feedback is kept before the lifecycle rule expires it.
RETENTION_DAYS = 400

_TS = pa.timestamp("ms", tz="UTC")
SCHEMAS: dict[str, pa.Schema] = {
    PREDICTIONS: pa.schema(
        [
            pa.field("event_id", pa.string(), nullable=False),
            pa.field("tenant", pa.string(), nullable=False),
            pa.field("classifier", pa.string(), nullable=False),
            pa.field("conversation_id", pa.string(), nullable=False),
            pa.field("message_id", pa.string(), nullable=False),
            pa.field("predicted_at", _TS, nullable=False),
            pa.field("model_version", pa.string(), nullable=False),
            pa.field("cleaning_version", pa.string()),
            pa.field("labels", pa.list_(pa.string()), nullable=False),
            pa.field("scores", pa.list_(pa.float64()), nullable=False),
        ]
    ),
    CONFIRMATIONS: pa.schema(
        [
            pa.field("event_id", pa.string(), nullable=False),
            pa.field("tenant", pa.string(), nullable=False),
            pa.field("classifier", pa.string(), nullable=False),
            pa.field("conversation_id", pa.string(), nullable=False),
            pa.field("label", pa.string(), nullable=False),
            pa.field("confirmed_at", _TS, nullable=False),
            pa.field("agent", pa.string(), nullable=False),
        ]
    ),
}
STORED_COLUMNS = {kind: tuple(schema.names) for kind, schema in SCHEMAS.items()}


def kind_of(record: FeedbackRecord) -> str:
    return CONFIRMATIONS if isinstance(record, LabelConfirmed) else PREDICTIONS


def to_parquet(record: FeedbackRecord) -> bytes:
    kind = kind_of(record)
    table = pa.Table.from_pylist([record.model_dump()], schema=SCHEMAS[kind])
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


@dataclass(frozen=True)
class FeedbackStore:
    """Reads and writes one bucket's feedback area through an S3 client."""

    s3: Any
    bucket: str
    kms_key_arn: str

    def key(self, record: FeedbackRecord) -> str:
        where = ClassifierLayout(record.tenant, record.classifier)
        return where.feedback_key(kind_of(record), event_day(record).astimezone(UTC).date(), record.event_id)

    def put(self, record: FeedbackRecord) -> bool:
        """Store ``record`` once; False when its event was stored before (a redelivery).

        A conditional write (``If-None-Match: *``) decides atomically: no HEAD first, which would need
        ``s3:ListBucket`` on the whole bucket to tell a missing key from a forbidden one, and no second
        object version for a redelivered event. Two writers racing on one key get a 409 and the loser's
        message is retried (then finds the object: 412).
        """
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=self.key(record),
                Body=to_parquet(record),
                ContentType="application/vnd.apache.parquet",
                Tagging=f"{AREA_TAG[0]}={AREA_TAG[1]}",
                IfNoneMatch="*",
                **sse_kms(self.kms_key_arn),
            )
        except self.s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "PreconditionFailed":
                return False
            raise
        return True

    def _keys(self, prefix: str) -> Iterator[str]:
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if str(item["Key"]).endswith(".parquet"):
                    yield str(item["Key"])

    def _rows(
        self, tenant: str, classifier: str, kind: str, days: Iterable[date] | None
    ) -> Iterator[dict[str, Any]]:
        """Rows of ``kind`` on ``days`` (every day stored when None)."""
        where = ClassifierLayout(tenant, classifier)
        prefixes = (
            [where.feedback_kind_prefix(kind)]
            if days is None
            else [where.feedback_day_prefix(kind, day) for day in days]
        )
        for prefix in prefixes:
            for key in self._keys(prefix):
                body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                for row in pq.read_table(io.BytesIO(body)).to_pylist():
                    # Keys are derived from the row's own ids; a row naming anyone else is not this tenant's.
                    if row["tenant"] == tenant and row["classifier"] == classifier:
                        yield row

    def predictions(self, tenant: str, classifier: str, days: Iterable[date]) -> list[PredictionRecord]:
        return [
            PredictionRecord.model_validate(row) for row in self._rows(tenant, classifier, PREDICTIONS, days)
        ]

    def confirmations(
        self, tenant: str, classifier: str, days: Iterable[date] | None = None
    ) -> list[LabelConfirmed]:
        """Confirmations stored on ``days`` (all of them when None: what the next training set uses)."""
        return [
            LabelConfirmed.model_validate(row) for row in self._rows(tenant, classifier, CONFIRMATIONS, days)
        ]

    def since(
        self, tenant: str, classifier: str, start: datetime, end: datetime
    ) -> tuple[list[PredictionRecord], list[LabelConfirmed]]:
        """Predictions and confirmations that happened in [start, end]."""
        days = days_between(start.astimezone(UTC).date(), end.astimezone(UTC).date())
        predictions = [
            p for p in self.predictions(tenant, classifier, days) if start <= p.predicted_at <= end
        ]
        confirmations = [
            c for c in self.confirmations(tenant, classifier, days) if start <= c.confirmed_at <= end
        ]
        return predictions, confirmations
