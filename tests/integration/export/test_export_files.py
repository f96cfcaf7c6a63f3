"""Files path: JSON Lines (plain and gzip, local) and Parquet (on S3) → moto S3, with bad rows counted."""

from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from export_support import BUCKET, LABEL, TENANT, WHERE, make_request, read_manifest, read_rows

from convclass.errors import SourceUnavailable
from convclass.export.files import ESTIMATED_COMPRESSION, ESTIMATED_RECORD_BYTES, FilesSource
from convclass.export.mapping import FilterReason, Skipped, SkipReason
from convclass.export.request import ExportSummary
from convclass.export.run import ExportTarget, execute
from convclass.export.source import ExportQuery
from convclass.export.window import EPOCH, TimeWindow
from convclass.records import EXPORT_RECORD_SCHEMA
from convclass_local.generator import iter_emails

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def emails(n: int, seed: int) -> list[dict[str, Any]]:
    return list(iter_emails(n, seed=seed, tenant_id=TENANT, label_field=LABEL, duplicate_rate=0.0))


def jsonl(rows: list[Any]) -> bytes:
    return b"".join(json.dumps(r, default=str).encode() + b"\n" for r in rows)


def export(s3: Any, uri: str, **request: Any) -> ExportSummary:
    result = execute(
        make_request(data_source={"kind": "files", "uri": uri}, **request),
        ExportTarget(s3=s3, bucket=BUCKET, clock=lambda: NOW),
        lambda: FilesSource(uri, s3=s3, max_body_chars=50_000, max_line_bytes=64 * 1024),
    )
    assert isinstance(result, ExportSummary)
    return result


def test_local_jsonl_with_bad_lines_counted_by_reason(approved: Any, tmp_path: Path) -> None:
    good = emails(25, seed=1)
    bad_lines = [
        b"{not json",
        b"[1, 2, 3]",
        json.dumps({**good[0], "conversation_id": "huge", "body": "x" * 70_000}, default=str).encode(),
        json.dumps(
            {**good[0], "conversation_id": "no-time", "created_at": None, "updated_at": None}
        ).encode(),
        json.dumps(
            {**good[0], "conversation_id": "bad-time", "created_at": "soon", "updated_at": "soon"}
        ).encode(),
        json.dumps(
            {**good[0], "conversation_id": "no-label", "labels": {"priority": "p1"}}, default=str
        ).encode(),
        json.dumps({**good[0], "conversation_id": "globex-1", "tenant_id": "globex"}, default=str).encode(),
        json.dumps(
            {**good[0], "conversation_id": "future", "updated_at": "2027-01-01T00:00:00Z"}, default=str
        ).encode(),
        # A lone surrogate is valid JSON but not valid UTF-8: repaired, still exported.
        json.dumps(
            {**good[1], "conversation_id": "surrogate", "body": "Hello \ud800 there"}, default=str
        ).encode(),
        b"  \n",
    ]
    (tmp_path / "drop").mkdir()
    (tmp_path / "drop" / "a.jsonl").write_bytes(jsonl(good[:10]) + b"\n".join(bad_lines) + b"\n")
    with gzip.open(tmp_path / "drop" / "b.jsonl.gz", "wb") as handle:
        handle.write(jsonl(good[10:]))
    (tmp_path / "drop" / "README.txt").write_text("ignored: not a data file")

    result = export(approved, str(tmp_path / "drop"))
    manifest = read_manifest(approved, WHERE.export_manifest_key("run-1"))
    assert manifest.counts.skipped == {
        "malformed_json": 1,
        "malformed_document": 1,
        "document_too_large": 1,
        "missing_timestamp": 1,
        "malformed_timestamp": 1,
    }
    assert manifest.counts.filtered == {"no_label": 1, "other_tenant": 1, "out_of_window": 1}
    assert manifest.counts.repaired.get("invalid_unicode_replaced") == 1
    assert result.records == 26
    assert manifest.counts.accounted
    rows = {r["conversation_id"]: r for r in read_rows(approved, manifest)}
    assert rows["surrogate"]["body"] == "Hello \ufffd there"
    assert {g["conversation_id"] for g in good} <= rows.keys()


def test_parquet_on_s3_and_corrupt_file_counted(approved: Any) -> None:
    good = emails(30, seed=2)
    table = pa.Table.from_pylist(
        [{**r, "labels": list(r["labels"].items())} for r in good], schema=EXPORT_RECORD_SCHEMA
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=7)
    approved.put_object(Bucket=BUCKET, Key="drops/acme-shop/2026/part-1.parquet", Body=buffer.getvalue())
    approved.put_object(Bucket=BUCKET, Key="drops/acme-shop/2026/part-2.parquet", Body=b"PAR1 truncated")
    approved.put_object(Bucket=BUCKET, Key="drops/acme-shop/2026/_SUCCESS", Body=b"")
    extra = emails(5, seed=4)
    approved.put_object(
        Bucket=BUCKET, Key="drops/acme-shop/2027/more.jsonl.gz", Body=gzip.compress(jsonl(extra))
    )

    result = export(approved, f"s3://{BUCKET}/drops/acme-shop/")
    manifest = read_manifest(approved, WHERE.export_manifest_key("run-1"))
    assert result.records == 35
    assert manifest.counts.skipped == {"unreadable_file": 1}
    assert manifest.unreadable_files == [f"s3://{BUCKET}/drops/acme-shop/2026/part-2.parquet"]
    rows = read_rows(approved, manifest)
    assert sorted(r["body"] for r in rows) == sorted(r["body"] for r in good + extra)


def test_missing_locations_are_source_unavailable(approved: Any, tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable):
        export(approved, str(tmp_path / "nowhere"))
    with pytest.raises(SourceUnavailable):
        export(approved, "s3://no-such-bucket-here/drops/")


def test_window_selects_rows_by_change_time(approved: Any, tmp_path: Path) -> None:
    rows = emails(40, seed=3)
    (tmp_path / "all.jsonl").write_bytes(jsonl(rows))
    cut = sorted(r["updated_at"] for r in rows)[20]
    window = {"start": "2026-01-01T00:00:00Z", "end": cut.isoformat()}
    result = export(approved, str(tmp_path / "all.jsonl"), window=window)
    assert result.records == 20
    assert result.filtered == 20


def test_the_count_of_a_drop_is_an_estimate_from_its_bytes(tmp_path: Path) -> None:
    rows = emails(40, seed=4)
    (tmp_path / "plain.jsonl").write_bytes(jsonl(rows))
    (tmp_path / "packed.jsonl.gz").write_bytes(gzip.compress(jsonl(rows)))
    (tmp_path / "notes.txt").write_text("not part of the drop")
    source = FilesSource(str(tmp_path))
    query = ExportQuery(TENANT, LABEL, TimeWindow(start=EPOCH, end=NOW))
    plain = len(jsonl(rows))
    packed = (tmp_path / "packed.jsonl.gz").stat().st_size
    expected = (plain + packed * ESTIMATED_COMPRESSION) // ESTIMATED_RECORD_BYTES
    assert source.count(query) == expected
    assert 40 <= expected <= 4 * 80  # the estimate is of the right size for 80 records


def test_a_row_outside_the_window_is_passed_over_before_it_is_validated(tmp_path: Path) -> None:
    good, bad = emails(2, seed=6)
    bad = {**bad, "labels": "not a label map", "updated_at": datetime(2026, 2, 1, tzinfo=UTC)}
    good = {**good, "updated_at": datetime(2026, 1, 10, tzinfo=UTC)}
    (tmp_path / "drop.jsonl").write_bytes(jsonl([good, bad]))
    source = FilesSource(str(tmp_path))
    january = TimeWindow(start=datetime(2026, 1, 1, tzinfo=UTC), end=datetime(2026, 2, 1, tzinfo=UTC))
    february = TimeWindow(start=datetime(2026, 2, 1, tzinfo=UTC), end=datetime(2026, 3, 1, tzinfo=UTC))
    first = list(source.conversations(ExportQuery(TENANT, LABEL, january)))
    second = list(source.conversations(ExportQuery(TENANT, LABEL, february)))
    # January's chunk counts the bad February row as another chunk's, not as its own malformed label; only
    # February's chunk reports it.
    assert [type(item).__name__ for item in first] == ["Normalized", "Skipped"]
    assert first[1] == Skipped(FilterReason.OUT_OF_WINDOW)
    assert second[0] == Skipped(FilterReason.OUT_OF_WINDOW)
    assert second[1] == Skipped(SkipReason.MALFORMED_LABEL)
