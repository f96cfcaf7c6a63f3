"""Time windows and timestamp parsing shared by every export source.

All windows are half-open ``[start, end)`` in UTC, so adjacent windows (chunks, successive incremental
exports) never export a conversation twice and never miss one that sits exactly on a boundary.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

#: The start of "all history": a full export without an explicit start begins here.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ensure_utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime; naive values are taken to be UTC (as MongoDB's BSON dates are)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_timestamp(value: object) -> datetime | None:
    """Best-effort timestamp from what document stores return: datetime, ISO-8601 text or epoch milliseconds.

    Returns ``None`` for anything unparseable, so the caller can count the document instead of crashing.
    """
    if isinstance(value, datetime):
        return ensure_utc(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            # OpenSearch's default date format accepts epoch_millis.
            return datetime.fromtimestamp(float(value) / 1000.0, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            return ensure_utc(datetime.fromisoformat(text))
        except ValueError:
            return None
    return None


class TimeWindow(BaseModel):
    """A half-open UTC interval ``[start, end)`` over the source's change-time field."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: datetime
    end: datetime

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return ensure_utc(value)

    @model_validator(mode="after")
    def _ordered(self) -> TimeWindow:
        if self.start >= self.end:
            raise ValueError("window start must be before window end")
        return self

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end
