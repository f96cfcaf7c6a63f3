"""The training history: the latest state of every labelled conversation of one classifier.

A run's history is the history its export continued (``base``, none for an export of all history) merged with
the export's records: one record per conversation id, the latest change winning (``updated_at``, else
``created_at``; on a tie the export's record, then the later part), tombstones (``deleted``) removing the
conversation. Two streaming passes keep memory flat in the records' text: the first reads only ids, change
times and the deletion flag (33 bytes per record stay in memory), the second copies the surviving records,
batch by batch, into new Parquet parts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from convclass.errors import InvalidInput
from convclass.export.manifest import RECORD_SCHEMA_SHA256, PartInfo
from convclass.records import EXPORT_RECORD_SCHEMA

#: Records per history part: the unit the next run downloads and reads back.
DEFAULT_PART_ROWS = 250_000
_BATCH_ROWS = 2_000
_KEY_COLUMNS = ("conversation_id", "created_at", "updated_at", "deleted")


class HistoryCounts(BaseModel):
    """``base + exported == kept + superseded + deleted``: every record read is accounted for."""

    model_config = ConfigDict(extra="forbid")

    base: int = 0
    exported: int = 0
    kept: int = 0
    #: Older states of a conversation that a later record replaced.
    superseded: int = 0
    #: Latest states that are tombstones (the conversation was deleted at the source).
    deleted: int = 0


class HistoryManifest(BaseModel):
    """``layout.history_manifest_key``: written after every part, so its presence makes a history complete."""

    model_config = ConfigDict(extra="forbid")

    version: int = 1
    tenant: str
    classifier: str
    run_id: str
    label_field: str
    #: The history this one continued (None: the run's export was the whole history).
    base: str | None
    export_manifest_key: str
    counts: HistoryCounts
    parts: list[PartInfo] = Field(default_factory=list)
    record_schema_sha256: str = RECORD_SCHEMA_SHA256
    created_at: datetime


@dataclass(frozen=True)
class CompactedHistory:
    """The merged records as local Parquet files (what the dataset is built from) and the counts."""

    files: list[Path]
    counts: HistoryCounts


def _as_records(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` in the export record schema; a column older parts lack (``deleted``) reads as null."""
    columns = []
    for field in EXPORT_RECORD_SCHEMA:
        index = batch.schema.get_field_index(field.name)
        if index < 0:
            if not field.nullable:
                raise InvalidInput(f"a history input lacks the {field.name!r} column")
            columns.append(pa.nulls(batch.num_rows, type=field.type))
        else:
            columns.append(batch.column(index).cast(field.type))
    return pa.RecordBatch.from_arrays(columns, schema=EXPORT_RECORD_SCHEMA)


def _batches(path: Path, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
    try:
        parquet = pq.ParquetFile(str(path))
        present = set(parquet.schema_arrow.names)
        wanted = None if columns is None else [name for name in columns if name in present]
        for batch in parquet.iter_batches(batch_size=_BATCH_ROWS, columns=wanted):
            yield _as_records(batch) if columns is None else batch
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInput(f"{path.name} is not a readable Parquet file: {type(exc).__name__}") from exc


def _id_digests(ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Two 64-bit halves of a 128-bit digest per conversation id (collisions are out of reach)."""
    high = np.empty(len(ids), dtype=np.uint64)
    low = np.empty(len(ids), dtype=np.uint64)
    for index, value in enumerate(ids):
        digest = hashlib.blake2b(value.encode("utf-8"), digest_size=16).digest()
        high[index] = int.from_bytes(digest[:8], "little")
        low[index] = int.from_bytes(digest[8:], "little")
    return high, low


def _millis(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    values = column.cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64())
    return np.asarray(values.fill_null(np.iinfo(np.int64).min).to_numpy(zero_copy_only=False), dtype=np.int64)


def _survivors(inputs: Sequence[Path], counts: HistoryCounts, base_files: int) -> np.ndarray:
    """Per input row (in input order): whether it is its conversation's latest state and not a tombstone."""
    highs, lows, versions, deleted = [], [], [], []
    for position, path in enumerate(inputs):
        for batch in _batches(path, _KEY_COLUMNS):
            names = batch.schema.names
            if "conversation_id" not in names or "created_at" not in names:
                raise InvalidInput(f"{path.name} lacks conversation_id or created_at")
            ids = batch.column(names.index("conversation_id")).to_pylist()
            if any(value is None for value in ids):
                raise InvalidInput(f"{path.name} holds a record without a conversation id")
            high, low = _id_digests(ids)
            created = _millis(batch.column(names.index("created_at")))
            if "updated_at" in names:
                updated = _millis(batch.column(names.index("updated_at")))
                version = np.where(updated == np.iinfo(np.int64).min, created, updated)
            else:
                version = created
            if "deleted" in names:
                flags = batch.column(names.index("deleted")).fill_null(False)
                gone = np.asarray(flags.to_numpy(zero_copy_only=False), dtype=bool)
            else:
                gone = np.zeros(batch.num_rows, dtype=bool)
            highs.append(high)
            lows.append(low)
            versions.append(version)
            deleted.append(gone)
            if position < base_files:
                counts.base += batch.num_rows
            else:
                counts.exported += batch.num_rows
    if not highs:
        return np.zeros(0, dtype=bool)
    high, low = np.concatenate(highs), np.concatenate(lows)
    version, gone = np.concatenate(versions), np.concatenate(deleted)
    order = np.arange(len(high), dtype=np.int64)
    # Sorted by id, then change time, then input order: the last row of each id group is the latest state.
    ranked = np.lexsort((order, version, low, high))
    same_as_next = (high[ranked][:-1] == high[ranked][1:]) & (low[ranked][:-1] == low[ranked][1:])
    last_of_group = np.r_[~same_as_next, True]
    latest = np.zeros(len(high), dtype=bool)
    latest[ranked[last_of_group]] = True
    keep: np.ndarray = np.logical_and(latest, ~gone)
    counts.superseded = int((~latest).sum())
    counts.deleted = int((latest & gone).sum())
    counts.kept = int(keep.sum())
    return keep


def compact(
    base: Sequence[Path], exported: Sequence[Path], output_dir: Path, *, part_rows: int = DEFAULT_PART_ROWS
) -> CompactedHistory:
    """Merge the base history's parts with the export's parts into ``output_dir/part-NNNNN.parquet``."""
    if part_rows < 1:
        raise InvalidInput("part_rows must be positive")
    output_dir.mkdir(parents=True, exist_ok=True)
    inputs = [*base, *exported]
    counts = HistoryCounts()
    keep = _survivors(inputs, counts, len(base))
    files: list[Path] = []
    writer: pq.ParquetWriter | None = None
    rows_in_part = 0
    offset = 0
    try:
        for path in inputs:
            for batch in _batches(path):
                selected = batch.filter(pa.array(keep[offset : offset + batch.num_rows]))
                offset += batch.num_rows
                start = 0
                while start < selected.num_rows:
                    if writer is None or rows_in_part >= part_rows:
                        if writer is not None:
                            writer.close()
                        files.append(output_dir / f"part-{len(files):05d}.parquet")
                        writer = pq.ParquetWriter(str(files[-1]), EXPORT_RECORD_SCHEMA, compression="zstd")
                        rows_in_part = 0
                    piece = selected.slice(start, part_rows - rows_in_part)
                    writer.write_batch(piece)
                    rows_in_part += piece.num_rows
                    start += piece.num_rows
    finally:
        if writer is not None:
            writer.close()
    if offset != len(keep):
        raise InvalidInput("a history input changed while it was being read")
    return CompactedHistory(files=files, counts=counts)
