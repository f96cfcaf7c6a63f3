"""The export function's event and answers.

The event extends :class:`convclass.events.ExportStep` (what the run plan hands the export task), so every
planned step is a valid request; the extra fields drive windows and parallel (Distributed Map) exports:

- ``action="export"`` without ``chunk``: export the window, write the run manifest, advance the watermark.
- ``action="plan"``: resolve the window (watermark for incremental runs) and cut it into chunks (Map items).
- ``action="export"`` with ``chunk``: export one chunk (parts + chunk manifest only).
- ``action="finalize"`` with ``window`` and ``chunk_count``: check every chunk manifest, write the run
  manifest.
- ``action="commit"``: the run succeeded: write the watermark naming the run's training history.
- ``action="consent"`` / ``"refuse"`` with ``answer``: record the export gate's answer as the tenant's
  consent or refusal.

An ``export`` or ``finalize`` whose manifest already exists (a retry after a lost response) returns it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from convclass import layout
from convclass.events import ClassifierId, ExportStep, LabelField, RunId, TenantId
from convclass.export.chunks import MAX_CHUNKS, ExportChunk
from convclass.export.manifest import ExportMode
from convclass.export.window import TimeWindow, ensure_utc

BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
_BUCKET_RE = re.compile(BUCKET_PATTERN)


class WindowSpec(BaseModel):
    """Requested window; open ends resolve at run time (start: watermark or all history; end: now−settle)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: datetime | None = None
    end: datetime | None = None

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else ensure_utc(value)

    @model_validator(mode="after")
    def _ordered(self) -> WindowSpec:
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError("window start must be before window end")
        return self


class ExportRequest(ExportStep):
    tenant: TenantId
    classifier: ClassifierId
    run_id: RunId
    label_field: LabelField
    action: Literal["export", "plan", "finalize", "commit", "consent", "refuse"] = "export"
    window: WindowSpec = Field(default_factory=WindowSpec)
    #: A Map item from ``plan``: export only this chunk.
    chunk: ExportChunk | None = None
    #: ``finalize`` only: how many chunks the plan produced.
    chunk_count: int | None = Field(default=None, ge=1, le=MAX_CHUNKS)
    #: ``plan`` only: target chunk length and the most chunks to produce.
    chunk_hours: float = Field(default=24.0, gt=0, le=24.0 * 366)
    max_chunks: int = Field(default=100, ge=1, le=MAX_CHUNKS)
    #: ``consent``/``refuse`` only: the reviewer's answer (SendTaskSuccess output or SendTaskFailure cause).
    answer: Any = None

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        if not _BUCKET_RE.fullmatch(value):
            raise ValueError("bucket must be an S3 bucket name")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ExportRequest:
        where = self.where
        expected = {
            "output_prefix": where.export_prefix(self.run_id),
            "manifest_key": where.export_manifest_key(self.run_id),
            "consent_key": where.consent_key,
            "watermark_key": where.watermark_key,
        }
        for name, key in expected.items():
            if getattr(self, name) != key:
                raise ValueError(f"{name} does not match the S3 layout of this tenant/classifier/run")
        if self.chunk is not None and self.action != "export":
            raise ValueError("chunk is only allowed with action 'export'")
        if self.answer is not None and self.action not in ("consent", "refuse"):
            raise ValueError("answer is only allowed with actions 'consent' and 'refuse'")
        if self.action == "finalize" and (
            self.chunk_count is None or self.window.start is None or self.window.end is None
        ):
            raise ValueError("finalize needs chunk_count and the planned window (start and end)")
        return self

    @property
    def where(self) -> layout.ClassifierLayout:
        return layout.ClassifierLayout(self.tenant, self.classifier)

    @property
    def mode(self) -> ExportMode:
        return "full" if self.full_export else "incremental"


class ExportSummary(BaseModel):
    """What an export or finalize returns to the state machine: pointers and counts, never records."""

    model_config = ConfigDict(extra="forbid")

    manifest: str
    #: False for a chunk manifest: the export is complete only once ``finalize`` wrote the run manifest.
    complete: bool
    chunk: int | None = None
    read: int
    records: int
    skipped: int
    filtered: int
    parts: int
    window: TimeWindow
    watermark: datetime | None


#: What the size rule went by: the source's count of the window, the committed history's size (a source
#: that cannot count), or the window alone (too short to chunk, or the rule set to 0).
SizeBasis = Literal["source", "history", "window"]


class ExportPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: ExportMode
    window: TimeWindow
    previous_watermark: datetime | None
    chunk_count: int
    #: The size rule: True when the window spans at least ``MIN_MAP_CHUNKS`` chunks and holds enough records
    #: (the Map exports them in parallel); False keeps the single-task export, and ``chunks`` is then empty.
    chunked: bool
    chunks: list[ExportChunk]
    #: The records the rule went by (None: not counted) and where the figure came from.
    records: int | None = None
    size_basis: SizeBasis = "window"


class CommitSummary(BaseModel):
    """What ``commit`` returns: the watermark written (the next export starts there) and the history."""

    model_config = ConfigDict(extra="forbid")

    watermark: str
    value: datetime
    history: str


class ConsentSummary(BaseModel):
    """What ``consent`` / ``refuse`` return: the consent record written and its verdict."""

    model_config = ConfigDict(extra="forbid")

    consent: str
    approved: bool
    by: str
