"""The export manifest: written after every part, so its presence is what makes an export complete.

Consumers (preprocessing) read the parts the manifest lists, and check each part's SHA-256, instead of
listing the prefix: parts of an export that failed halfway may exist, but are never named by a manifest.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from convclass.export.mapping import FilterReason, Normalized, Repair, Skipped, SkipReason
from convclass.export.source import SourceKind
from convclass.export.window import TimeWindow
from convclass.records import EXPORT_RECORD_SCHEMA

ExportMode = Literal["full", "incremental"]

#: Identifies the Parquet schema the parts were written with.
RECORD_SCHEMA_SHA256 = hashlib.sha256(EXPORT_RECORD_SCHEMA.to_string().encode()).hexdigest()


class PartInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    records: int = Field(ge=0)
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class ExportCounts(BaseModel):
    """``read == exported + sum(skipped) + sum(filtered)``: every document read is accounted for."""

    model_config = ConfigDict(extra="forbid")

    read: int = 0
    exported: int = 0
    #: Of ``exported``: tombstones of conversations deleted at the source.
    deleted: int = 0
    skipped: dict[SkipReason, int] = Field(default_factory=dict)
    filtered: dict[FilterReason, int] = Field(default_factory=dict)
    repaired: dict[Repair, int] = Field(default_factory=dict)

    def count(self, item: Normalized | Skipped) -> None:
        self.read += 1
        if isinstance(item, Normalized):
            self.exported += 1
            self.deleted += item.record.deleted
            for repair in item.repairs:
                self.repaired[repair] = self.repaired.get(repair, 0) + 1
        elif isinstance(item.reason, FilterReason):
            self.filtered[item.reason] = self.filtered.get(item.reason, 0) + 1
        else:
            self.skipped[item.reason] = self.skipped.get(item.reason, 0) + 1

    def merge(self, other: ExportCounts) -> None:
        self.read += other.read
        self.exported += other.exported
        self.deleted += other.deleted
        for skip, n in other.skipped.items():
            self.skipped[skip] = self.skipped.get(skip, 0) + n
        for out, n in other.filtered.items():
            self.filtered[out] = self.filtered.get(out, 0) + n
        for repair, n in other.repaired.items():
            self.repaired[repair] = self.repaired.get(repair, 0) + n

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    @property
    def accounted(self) -> bool:
        return self.read == self.exported + self.skipped_total + sum(self.filtered.values())


class SourceInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: SourceKind
    description: str


class ChunkInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int = Field(ge=0)
    count: int = Field(ge=1)


class ExportManifest(BaseModel):
    """One export run (or one chunk of it, when ``chunk`` is set)."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    tenant: str
    classifier: str
    run_id: str
    label_field: str
    mode: ExportMode
    source: SourceInfo
    window: TimeWindow
    chunk: ChunkInfo | None = None
    chunks: int = Field(default=1, ge=1)
    previous_watermark: datetime | None = None
    watermark: datetime | None = Field(
        default=None,
        description="Where the next incremental export starts; None when this run did not move it.",
    )
    max_changed_at: datetime | None = None
    #: The training history (``layout.history_manifest_key``) this export is merged into; None when the export
    #: starts at the beginning of time and so is the whole history by itself.
    history_base: str | None = None
    counts: ExportCounts
    parts: list[PartInfo]
    unreadable_files: list[str] = Field(default_factory=list)
    record_schema_sha256: str = RECORD_SCHEMA_SHA256
    started_at: datetime
    finished_at: datetime


class Watermark(BaseModel):
    """Stored at ``layout.watermark_key`` when a run succeeds: the change time up to which the classifier's
    training history is complete, and that history (the next incremental export is merged into it)."""

    model_config = ConfigDict(extra="forbid")

    value: datetime
    run_id: str
    manifest_key: str
    #: ``layout.history_manifest_key`` of the committing run; None in watermarks written before histories
    #: existed (an incremental export then reads all history again).
    history_key: str | None = None
    written_at: datetime
