"""The export record: what the export step writes and the preprocessing step reads.

One record is the first inbound email of one labelled conversation. Stored as Parquet (JSON Lines accepted on
input for tenants that drop files); never pickle, because these files cross a trust boundary.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Label field names (keys of ExportRecord.labels) become document paths and Parquet map keys: plain
#: words only (no dots, no ``$``). Run requests, the export mapping and the stack config all use this one.
LABEL_FIELD_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

BodyContentType = Literal["text/html", "text/plain"]

#: Parquet schema of export parts; the pydantic model below is the row-level view of the same contract.
EXPORT_RECORD_SCHEMA = pa.schema(
    [
        pa.field("conversation_id", pa.string(), nullable=False),
        pa.field("tenant_id", pa.string(), nullable=False),
        pa.field("created_at", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("updated_at", pa.timestamp("ms", tz="UTC")),
        pa.field("subject", pa.string()),
        pa.field("body", pa.string(), nullable=False),
        pa.field("body_content_type", pa.string(), nullable=False),
        pa.field("labels", pa.map_(pa.string(), pa.string()), nullable=False),
    ]
)


class ExportRecord(BaseModel):
    """First inbound email of a conversation plus its label fields (one classifier per label field)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    conversation_id: str = Field(min_length=1, max_length=256)
    tenant_id: str = Field(min_length=1, max_length=64)
    created_at: datetime
    updated_at: datetime | None = None
    subject: str | None = None
    body: str
    body_content_type: BodyContentType = "text/html"
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_from_pairs(cls, value: object) -> object:
        # pyarrow returns map columns as a list of (key, value) pairs.
        if isinstance(value, list):
            return dict(value)
        return value
