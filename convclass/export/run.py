"""The export itself: consent → window → stream source into parts → manifest (last); commit at the run's end.

Order is what makes an export trustworthy: parts first, the manifest after the last part (readers only trust
a manifest). The watermark is not moved by the export: the run's ``commit`` action writes it once the whole
run succeeded, together with the training history the run's preprocess compacted, so a run that fails later
leaves the next incremental export starting where the last *successful* run ended. A retried export of the
same run (a lost response) finds its manifest and returns it instead of exporting again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from convclass.dataset.history import HistoryManifest
from convclass.errors import ExportIncomplete, InsufficientData, InvalidInput
from convclass.export.chunks import MIN_MAP_CHUNKS, ExportChunk, plan_chunks
from convclass.export.consent import ConsentRecord, gate_answer_record, record_consent, require_consent
from convclass.export.manifest import (
    ChunkInfo,
    ExportCounts,
    ExportManifest,
    ExportMode,
    PartInfo,
    SourceInfo,
    Watermark,
)
from convclass.export.mapping import Normalized
from convclass.export.request import (
    CommitSummary,
    ConsentSummary,
    ExportPlan,
    ExportRequest,
    ExportSummary,
    SizeBasis,
    WindowSpec,
)
from convclass.export.source import ConversationSource, ExportQuery
from convclass.export.window import EPOCH, TimeWindow
from convclass.export.writer import DEFAULT_MAX_PART_BYTES, DEFAULT_MAX_PART_ROWS, PartWriter
from convclass.layout import ClassifierLayout, s3_uri

#: Default end of an open window: now minus this, so writes still in flight (replication, index refresh) are
#: not skipped by the watermark.
DEFAULT_SETTLE = timedelta(minutes=5)


#: Default of :attr:`ExportTarget.map_min_records`: about what one export task writes in a few minutes.
DEFAULT_MAP_MIN_RECORDS = 200_000


@dataclass(frozen=True)
class ExportTarget:
    """Where and how the export writes: the data bucket, part limits and the encryption key."""

    s3: Any
    bucket: str
    max_part_bytes: int = DEFAULT_MAX_PART_BYTES
    max_part_rows: int = DEFAULT_MAX_PART_ROWS
    kms_key_id: str | None = None
    settle: timedelta = DEFAULT_SETTLE
    #: The plan's size rule: a window the source counts fewer records in than this is exported by one task;
    #: 0 sizes by the window alone.
    map_min_records: int = DEFAULT_MAP_MIN_RECORDS
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}


def _missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in _MISSING_CODES


def read_watermark(s3: Any, bucket: str, where: ClassifierLayout) -> Watermark | None:
    try:
        body = s3.get_object(Bucket=bucket, Key=where.watermark_key)["Body"].read()
    except ClientError as error:
        if _missing(error):
            return None
        raise
    try:
        return Watermark.model_validate(json.loads(body))
    except (ValueError, ValidationError):
        raise InvalidInput("the export watermark is unreadable; run a full export to rebuild it") from None


def committed_history(s3: Any, bucket: str, where: ClassifierLayout) -> Watermark | None:
    """The committed watermark if an incremental export can continue it, else None (read all history).

    It can when it names a training history that still exists: a watermark from before histories existed, or
    whose history expired (the exports area's retention), would otherwise train on the delta alone.
    """
    mark = read_watermark(s3, bucket, where)
    if mark is None or mark.history_key is None or not mark.history_key.startswith(where.prefix):
        return None
    try:
        s3.head_object(Bucket=bucket, Key=mark.history_key)
    except ClientError as error:
        if _missing(error):
            return None
        raise
    return mark


def _existing_manifest(target: ExportTarget, key: str) -> ExportManifest | None:
    """The manifest at ``key`` if an earlier attempt of this run already wrote it."""
    try:
        body = target.s3.get_object(Bucket=target.bucket, Key=key)["Body"].read()
    except ClientError as error:
        if _missing(error):
            return None
        raise
    try:
        return ExportManifest.model_validate_json(body)
    except ValidationError:
        raise ExportIncomplete(f"the manifest at {key} is unreadable; start a new run") from None


def resolve_window(
    mode: ExportMode, requested: WindowSpec, watermark: Watermark | None, now: datetime, settle: timedelta
) -> TimeWindow:
    """Incremental runs start at the watermark (or the requested start / all history for the first run)."""
    end = requested.end or now - settle
    start = requested.start or EPOCH
    if mode == "incremental" and watermark is not None:
        start = watermark.value
    if start >= end:
        raise InsufficientData("nothing to export: the window is empty (the last export already covers it)")
    return TimeWindow(start=start, end=end)


def _put_json(s3: Any, bucket: str, key: str, body: str, kms_key_id: str | None) -> None:
    extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id} if kms_key_id else {}
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType="application/json", **extra)


def export_window(
    source: ConversationSource,
    target: ExportTarget,
    *,
    request: ExportRequest,
    window: TimeWindow,
    previous: Watermark | None,
    chunk: ExportChunk | None = None,
) -> ExportManifest:
    """Stream the window into parts, then write the (run or chunk) manifest; returns it."""
    where, run = request.where, request.run_id
    started = target.clock()

    def part_key(part: int) -> str:
        if chunk is None:
            return where.export_part_key(run, part)
        return where.export_chunk_part_key(run, chunk.index, part)

    writer = PartWriter(
        target.s3,
        target.bucket,
        part_key,
        max_part_bytes=target.max_part_bytes,
        max_part_rows=target.max_part_rows,
        kms_key_id=target.kms_key_id,
    )
    counts = ExportCounts()
    max_changed: datetime | None = None
    query = ExportQuery(tenant=request.tenant, label_field=request.label_field, window=window)
    for item in source.conversations(query):
        counts.count(item)
        if isinstance(item, Normalized):
            writer.add(item.record)
            if max_changed is None or item.changed_at > max_changed:
                max_changed = item.changed_at
    parts = writer.close()
    manifest = ExportManifest(
        tenant=request.tenant,
        classifier=request.classifier,
        run_id=run,
        label_field=request.label_field,
        mode=request.mode,
        source=SourceInfo(kind=source.kind, description=source.describe()),
        window=window,
        chunk=None if chunk is None else ChunkInfo(index=chunk.index, count=chunk.count),
        previous_watermark=None if previous is None else previous.value,
        max_changed_at=max_changed,
        counts=counts,
        parts=parts,
        unreadable_files=source.unreadable_locations(),
        started_at=started,
        finished_at=target.clock(),
    )
    if chunk is not None:
        key = where.export_chunk_manifest_key(run, chunk.index)
        _put_json(target.s3, target.bucket, key, manifest.model_dump_json(), target.kms_key_id)
        return manifest
    return _complete(target, request, manifest, previous)


def _complete(
    target: ExportTarget, request: ExportRequest, manifest: ExportManifest, previous: Watermark | None
) -> ExportManifest:
    """Write the run manifest: with the watermark the run commits if it continued the covered history, and
    the history it is merged into (none when the window starts at the beginning of time)."""
    key = request.where.export_manifest_key(request.run_id)
    contiguous = previous is None or manifest.window.start <= previous.value
    if contiguous and (previous is None or manifest.window.end > previous.value):
        manifest.watermark = manifest.window.end
    if previous is not None and manifest.window.start > EPOCH:
        manifest.history_base = previous.history_key
    _put_json(target.s3, target.bucket, key, manifest.model_dump_json(), target.kms_key_id)
    return manifest


def finalize_chunks(
    target: ExportTarget,
    request: ExportRequest,
    *,
    window: TimeWindow,
    chunk_count: int,
    previous: Watermark | None,
) -> ExportManifest:
    """Combine the chunk manifests of a parallel export into the run manifest (all chunks or nothing)."""
    where, run = request.where, request.run_id
    chunks: list[ExportManifest] = []
    missing: list[int] = []
    for index in range(chunk_count):
        try:
            body = target.s3.get_object(Bucket=target.bucket, Key=where.export_chunk_manifest_key(run, index))
        except ClientError as error:
            if _missing(error):
                missing.append(index)
                continue
            raise
        chunks.append(ExportManifest.model_validate_json(body["Body"].read()))
    if missing:
        raise ExportIncomplete(f"{len(missing)} of {chunk_count} chunks have no manifest: {missing[:10]}")
    _check_chunks(chunks, request, window)
    counts = ExportCounts()
    parts: list[PartInfo] = []
    unreadable: list[str] = []
    for manifest in chunks:
        counts.merge(manifest.counts)
        parts.extend(manifest.parts)
        unreadable.extend(manifest.unreadable_files)
    changed = [m.max_changed_at for m in chunks if m.max_changed_at is not None]
    combined = ExportManifest(
        tenant=request.tenant,
        classifier=request.classifier,
        run_id=run,
        label_field=request.label_field,
        mode=request.mode,
        source=chunks[0].source,
        window=window,
        chunks=len(chunks),
        previous_watermark=None if previous is None else previous.value,
        max_changed_at=max(changed) if changed else None,
        counts=counts,
        parts=parts,
        unreadable_files=unreadable,
        started_at=min(m.started_at for m in chunks),
        finished_at=target.clock(),
    )
    return _complete(target, request, combined, previous)


def _check_chunks(chunks: list[ExportManifest], request: ExportRequest, window: TimeWindow) -> None:
    """The chunks must be this run's, in order, and tile the window exactly."""
    cursor = window.start
    for index, manifest in enumerate(chunks):
        same_run = (manifest.tenant, manifest.classifier, manifest.run_id, manifest.label_field) == (
            request.tenant,
            request.classifier,
            request.run_id,
            request.label_field,
        )
        if not same_run or manifest.chunk is None or manifest.chunk.index != index:
            raise ExportIncomplete(f"chunk manifest {index} belongs to another export")
        if manifest.chunk.count != len(chunks) or manifest.window.start != cursor:
            raise ExportIncomplete(f"chunk {index} does not continue the planned window")
        cursor = manifest.window.end
    if cursor != window.end:
        raise ExportIncomplete("the chunks do not cover the planned window")


def _history_records(target: ExportTarget, mark: Watermark) -> int:
    """How many records the committed training history holds (the tenant's size the plan goes by)."""
    assert mark.history_key is not None  # committed_history only returns marks that name one
    body = target.s3.get_object(Bucket=target.bucket, Key=mark.history_key)["Body"].read()
    try:
        return sum(part.records for part in HistoryManifest.model_validate_json(body).parts)
    except ValidationError:
        raise InvalidInput("the committed training history is unreadable; run a full export") from None


def plan_export(
    target: ExportTarget, request: ExportRequest, open_source: Callable[[], ConversationSource]
) -> ExportPlan:
    """The window and, by the size rule, its chunks: a window of at least ``MIN_MAP_CHUNKS`` chunks whose
    records reach ``target.map_min_records`` is exported by the Map; anything smaller by one task.

    The records are the source's own count of the window (an index count for databases, an estimate from
    the listing for dropped files); a source that cannot count is sized by the committed training history.
    """
    require_consent(target.s3, target.bucket, request.where, request.label_field)
    previous = committed_history(target.s3, target.bucket, request.where)
    window = resolve_window(request.mode, request.window, previous, target.clock(), target.settle)
    chunks = plan_chunks(
        window, chunk_duration=timedelta(hours=request.chunk_hours), max_chunks=request.max_chunks
    )
    records: int | None = None
    basis: SizeBasis = "window"
    if len(chunks) >= MIN_MAP_CHUNKS and target.map_min_records > 0:
        source = open_source()
        try:
            records = source.count(ExportQuery(request.tenant, request.label_field, window))
        finally:
            source.close()
        basis = "source"
        if records is None and previous is not None:
            records, basis = _history_records(target, previous), "history"
    chunked = len(chunks) >= MIN_MAP_CHUNKS and (
        target.map_min_records == 0 or (records is not None and records >= target.map_min_records)
    )
    return ExportPlan(
        mode=request.mode,
        window=window,
        previous_watermark=None if previous is None else previous.value,
        chunk_count=len(chunks),
        chunked=chunked,
        chunks=chunks if chunked else [],
        records=records,
        size_basis=basis,
    )


def summary(bucket: str, manifest: ExportManifest, key: str) -> ExportSummary:
    counts = manifest.counts
    return ExportSummary(
        manifest=s3_uri(bucket, key),
        complete=manifest.chunk is None,
        chunk=None if manifest.chunk is None else manifest.chunk.index,
        read=counts.read,
        records=counts.exported,
        skipped=counts.skipped_total,
        filtered=sum(counts.filtered.values()),
        parts=len(manifest.parts),
        window=manifest.window,
        watermark=manifest.watermark,
    )


def commit(target: ExportTarget, request: ExportRequest) -> CommitSummary:
    """Make the run's export and training history current: the last step of a successful run.

    Consent is checked again (an approval withdrawn while the run was in flight commits nothing). Writing the
    same watermark twice is harmless, so a retried commit is safe.
    """
    where, run = request.where, request.run_id
    require_consent(target.s3, target.bucket, where, request.label_field)
    manifest_key = where.export_manifest_key(run)
    manifest = _existing_manifest(target, manifest_key)
    if manifest is None:
        raise ExportIncomplete("the run has no export manifest: nothing to commit")
    history_key = where.history_manifest_key(run)
    try:
        target.s3.head_object(Bucket=target.bucket, Key=history_key)
    except ClientError as error:
        if _missing(error):
            raise ExportIncomplete("the run wrote no training history: nothing to commit") from None
        raise
    previous = read_watermark(target.s3, target.bucket, where)
    value = manifest.watermark
    if value is None:
        # The export did not continue the covered history (an explicit window): keep where it ends.
        value = manifest.window.end if previous is None else previous.value
    mark = Watermark(
        value=value,
        run_id=run,
        manifest_key=manifest_key,
        history_key=history_key,
        written_at=target.clock(),
    )
    _put_json(target.s3, target.bucket, where.watermark_key, mark.model_dump_json(), target.kms_key_id)
    watermark = s3_uri(target.bucket, where.watermark_key)
    return CommitSummary(watermark=watermark, value=value, history=history_key)


def record_gate_answer(target: ExportTarget, request: ExportRequest) -> ConsentSummary:
    """Record the export gate's answer as the tenant's consent (``consent``) or refusal (``refuse``)."""
    record: ConsentRecord = gate_answer_record(
        approved=request.action == "consent",
        answer=request.answer,
        label_field=request.label_field,
        now=target.clock(),
    )
    key = record_consent(target.s3, target.bucket, request.where, record, kms_key_arn=target.kms_key_id)
    return ConsentSummary(consent=s3_uri(target.bucket, key), approved=record.approved, by=record.approved_by)


def execute(
    request: ExportRequest, target: ExportTarget, open_source: Callable[[], ConversationSource]
) -> ExportSummary | ExportPlan | CommitSummary | ConsentSummary:
    """Run one export action. ``open_source`` is called only after consent was checked."""
    if request.action in ("consent", "refuse"):
        return record_gate_answer(target, request)
    if request.action == "commit":
        return commit(target, request)
    if request.action == "plan":
        return plan_export(target, request, open_source)
    where = request.where
    require_consent(target.s3, target.bucket, where, request.label_field)
    key = (
        where.export_manifest_key(request.run_id)
        if request.chunk is None
        else where.export_chunk_manifest_key(request.run_id, request.chunk.index)
    )
    written = _existing_manifest(target, key)
    if written is not None:
        # A retry of an attempt whose response was lost: the export is done, return what it wrote.
        return summary(target.bucket, written, key)
    previous = committed_history(target.s3, target.bucket, where)
    if request.action == "finalize":
        if request.chunk_count is None or request.window.start is None or request.window.end is None:
            raise InvalidInput("finalize needs chunk_count and the planned window")
        planned = TimeWindow(start=request.window.start, end=request.window.end)
        manifest = finalize_chunks(
            target, request, window=planned, chunk_count=request.chunk_count, previous=previous
        )
        return summary(target.bucket, manifest, key)
    if request.chunk is not None:
        window = request.chunk.window
    else:
        window = resolve_window(request.mode, request.window, previous, target.clock(), target.settle)
    source = open_source()
    try:
        manifest = export_window(
            source, target, request=request, window=window, previous=previous, chunk=request.chunk
        )
    finally:
        source.close()
    return summary(target.bucket, manifest, key)
