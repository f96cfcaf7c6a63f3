"""MongoDB path (mongomock) → moto S3: records, counts, parts, manifest order, watermark, retries, chunks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import mongomock
import pymongo
import pytest
from export_support import (
    BUCKET,
    LABEL,
    TENANT,
    WHERE,
    RecordingS3,
    commit_run,
    keys_under,
    make_request,
    read_manifest,
    read_rows,
    watermark_value,
)
from pymongo.errors import AutoReconnect

from convclass.errors import ExportIncomplete, ExportNotApproved, InsufficientData, SourceUnavailable
from convclass.export.mapping import DocumentMapping, SkipReason, conversation_document
from convclass.export.mongo import MongoSource, connect
from convclass.export.request import ExportPlan, ExportSummary
from convclass.export.retry import RetryPolicy
from convclass.export.run import ExportTarget, execute
from convclass_local.generator import iter_emails

NOW = datetime(2026, 3, 1, tzinfo=UTC)
NO_WAIT = RetryPolicy(attempts=3, sleep=lambda _s: None)


def target(s3: Any, **kwargs: Any) -> ExportTarget:
    return ExportTarget(s3=s3, bucket=BUCKET, clock=lambda: NOW, **kwargs)


def seeded(n: int, *, seed: int = 7) -> Any:
    collection = mongomock.MongoClient(tz_aware=True)["support"]["conversations"]
    records = list(iter_emails(n, seed=seed, tenant_id=TENANT, label_field=LABEL, duplicate_rate=0.0))
    collection.insert_many([conversation_document(r, agent_reply="We are on it.") for r in records])
    return collection, records


def source(collection: Any, **kwargs: Any) -> MongoSource:
    return MongoSource(collection, DocumentMapping(), description="mongomock support.conversations", **kwargs)


def summary_of(result: ExportSummary | ExportPlan) -> ExportSummary:
    assert isinstance(result, ExportSummary)
    return result


def test_exports_first_inbound_email_of_every_labelled_conversation(approved: Any) -> None:
    collection, records = seeded(120)
    # Threads where an agent wrote first, and a second inbound message that must not be exported.
    collection.update_one(
        {"_id": records[0]["conversation_id"]},
        {
            "$push": {
                "messages": {"$each": [{"direction": "outbound", "body": "Hello from us"}], "$position": 0}
            }
        },
    )
    collection.update_one(
        {"_id": records[1]["conversation_id"]},
        {"$push": {"messages": {"direction": "inbound", "body": "second inbound", "sent_at": NOW}}},
    )
    recorder = RecordingS3(approved)
    result = summary_of(
        execute(make_request(), target(recorder, max_part_rows=50), lambda: source(collection))
    )

    manifest = read_manifest(approved, WHERE.export_manifest_key("run-1"))
    rows = read_rows(approved, manifest)
    assert result.records == manifest.counts.exported == len(rows) == 120
    assert result.parts == len(manifest.parts) == 3  # 50 + 50 + 20
    by_id = {row["conversation_id"]: row for row in rows}
    assert len(by_id) == 120
    for record in records:
        row = by_id[record["conversation_id"]]
        assert row["body"] == record["body"]
        assert row["subject"] == record["subject"]
        assert row["tenant_id"] == TENANT
        assert dict(row["labels"]) == record["labels"]
        assert row["body_content_type"] == record["body_content_type"]
    # Order of writes: every part, then the manifest; the watermark only moves when the run commits.
    part_keys = [p.key for p in manifest.parts]
    assert recorder.puts == [*part_keys, WHERE.export_manifest_key("run-1")]
    assert manifest.counts.accounted
    assert manifest.watermark == NOW - timedelta(minutes=5)
    assert manifest.history_base is None  # all history: the export is the whole training history
    assert "mongomock" in manifest.source.description


def test_bad_documents_are_counted_by_reason_and_nothing_is_lost(approved: Any) -> None:
    collection, records = seeded(30)
    limit = max(len(r["body"]) for r in records)
    base = {"tenant_id": TENANT, "updated_at": datetime(2026, 1, 10, tzinfo=UTC)}
    inbound = {"direction": "inbound", "subject": "Hi", "body": "<p>Where is my parcel?</p>"}
    labelled = {**base, "labels": {LABEL: "x"}}
    latin1 = {**inbound, "body": "Grüße, où est ma commande?".encode("latin-1"),
              "content_type": "text/plain; charset=ISO-8859-1"}  # fmt: skip
    collection.insert_many(
        [
            {**labelled, "_id": "no-body", "messages": [{"direction": "inbound"}]},
            {**labelled, "_id": "empty-body", "messages": [{**inbound, "body": "  "}]},
            {**labelled, "_id": "dict-body", "messages": [{**inbound, "body": {"a": 1}}]},
            {**base, "_id": "list-label", "labels": {LABEL: ["a", "b"]}, "messages": [inbound]},
            {**labelled, "_id": "huge", "messages": [{**inbound, "body": "x" * (limit + 1)}]},
            {**labelled, "_id": "latin1", "messages": [latin1]},
            # Filtered server-side (not read, so not counted): other tenant, no label, no inbound message.
            {**labelled, "_id": "other", "tenant_id": "globex", "messages": [inbound]},
            {**base, "_id": "unlabelled", "labels": {"priority": "high"}, "messages": [inbound]},
            {**labelled, "_id": "agent-only", "messages": [{"direction": "outbound", "body": "b"}]},
        ]
    )
    mapping = DocumentMapping(max_body_chars=limit)
    result = summary_of(
        execute(
            make_request(),
            target(approved),
            lambda: MongoSource(collection, mapping, description="mongomock"),
        )
    )
    manifest = read_manifest(approved, WHERE.export_manifest_key("run-1"))
    assert manifest.counts.skipped == {
        SkipReason.MISSING_BODY: 1,
        SkipReason.EMPTY_BODY: 1,
        SkipReason.MALFORMED_BODY: 1,
        SkipReason.MALFORMED_LABEL: 1,
        SkipReason.BODY_TOO_LARGE: 1,
    }
    assert result.read == 36
    assert result.records == 31
    assert result.skipped == 5
    rows = {r["conversation_id"]: r for r in read_rows(approved, manifest)}
    assert rows["latin1"]["body"] == "Grüße, où est ma commande?"
    assert rows["latin1"]["body_content_type"] == "text/plain"
    assert not {"other", "unlabelled", "agent-only"} & rows.keys()


def test_incremental_export_reads_only_what_changed_since_the_watermark(approved: Any) -> None:
    collection, records = seeded(40)
    first = summary_of(execute(make_request("run-1"), target(approved), lambda: source(collection)))
    assert first.records == 40
    commit_run(approved, target(approved), "run-1")
    mark = datetime.fromisoformat(watermark_value(approved))

    later = mark + timedelta(hours=1)
    changed = [r["conversation_id"] for r in records[:3]]
    collection.update_many(
        {"_id": {"$in": changed}}, {"$set": {"updated_at": later, "labels.intent": "other"}}
    )
    step = ExportTarget(s3=approved, bucket=BUCKET, clock=lambda: later + timedelta(hours=1))
    second = summary_of(execute(make_request("run-2"), step, lambda: source(collection)))
    manifest = read_manifest(approved, WHERE.export_manifest_key("run-2"))
    assert manifest.window.start == mark
    assert manifest.previous_watermark == mark
    assert manifest.history_base == WHERE.history_manifest_key("run-1")
    assert sorted(r["conversation_id"] for r in read_rows(approved, manifest)) == sorted(changed)
    assert second.records == 3
    assert {dict(r["labels"])[LABEL] for r in read_rows(approved, manifest)} == {"other"}

    full = summary_of(execute(make_request("run-3", full_export=True), step, lambda: source(collection)))
    assert full.records == 40
    assert read_manifest(approved, WHERE.export_manifest_key("run-3")).window.start.year == 1970
    assert read_manifest(approved, WHERE.export_manifest_key("run-3")).history_base is None

    # Once run-3 committed, nothing can have changed between the watermark and "now − settle": a named
    # answer, no manifest.
    commit_run(approved, step, "run-3")
    with pytest.raises(InsufficientData):
        execute(make_request("run-4"), step, lambda: source(collection))
    assert keys_under(approved, WHERE.export_prefix("run-4")) == []


def test_refuses_without_recorded_approval_and_writes_nothing(s3: Any) -> None:
    collection, _ = seeded(5)
    opened: list[bool] = []

    def never() -> MongoSource:
        opened.append(True)
        return source(collection)

    with pytest.raises(ExportNotApproved):
        execute(make_request(), target(s3), never)
    assert opened == []
    assert keys_under(s3, WHERE.prefix) == []


def test_revoked_or_out_of_scope_approval_refuses(s3: Any) -> None:
    collection, _ = seeded(5)
    granted = {"approved": True, "approved_by": "privacy-office", "approved_at": "2026-01-01T00:00:00Z"}
    for body in (
        json.dumps({**granted, "revoked_at": "2026-02-01T00:00:00Z"}),
        json.dumps({**granted, "label_fields": ["priority"]}),
        json.dumps({**granted, "approved": False}),
        json.dumps({"approved": True}),
        "not json",
    ):
        s3.put_object(Bucket=BUCKET, Key=WHERE.consent_key, Body=body.encode())
        with pytest.raises(ExportNotApproved):
            execute(make_request(), target(s3), lambda: source(collection))
    assert keys_under(s3, WHERE.export_prefix("run-1")) == []


class FlakyCollection:
    """A collection whose cursors break after ``after`` documents, ``failures`` times (like a failover)."""

    def __init__(self, inner: Any, *, after: int, failures: int) -> None:
        self.inner = inner
        self.after = after
        self.failures = failures
        self.queries: list[dict[str, Any]] = []

    def find(self, condition: dict[str, Any], projection: dict[str, Any], **kwargs: Any) -> Iterator[Any]:
        self.queries.append(condition)
        cursor = self.inner.find(condition, projection, **kwargs)

        def documents() -> Iterator[Any]:
            for index, document in enumerate(cursor):
                if index == self.after and self.failures > 0:
                    self.failures -= 1
                    raise AutoReconnect("connection reset by peer")
                yield document

        return documents()


def test_transient_failures_resume_after_the_last_document_without_duplicates(approved: Any) -> None:
    collection, _ = seeded(60)
    flaky = FlakyCollection(collection, after=25, failures=2)
    result = summary_of(execute(make_request(), target(approved), lambda: source(flaky, retry=NO_WAIT)))
    rows = read_rows(approved, read_manifest(approved, WHERE.export_manifest_key("run-1")))
    assert result.records == 60
    assert len({r["conversation_id"] for r in rows}) == len(rows) == 60
    assert len(flaky.queries) == 3
    assert "$and" in flaky.queries[1]


def test_persistent_failure_is_source_unavailable_and_leaves_no_manifest(approved: Any) -> None:
    collection, _ = seeded(60)
    flaky = FlakyCollection(collection, after=10, failures=99)
    with pytest.raises(SourceUnavailable):
        execute(make_request(), target(approved, max_part_rows=5), lambda: source(flaky, retry=NO_WAIT))
    written = keys_under(approved, WHERE.export_prefix("run-1"))
    assert written  # parts were uploaded ...
    assert WHERE.export_manifest_key("run-1") not in written  # ... but nothing names them complete
    with pytest.raises(Exception, match="NoSuchKey"):
        approved.get_object(Bucket=BUCKET, Key=WHERE.watermark_key)


def test_unreachable_server_is_source_unavailable() -> None:
    client = connect("mongodb://convclass:s3cret@127.0.0.1:9/support", server_selection_timeout_ms=100)
    mongo = MongoSource(
        client["support"]["c"], DocumentMapping(), description="x", retry=NO_WAIT, client=client
    )
    from convclass.export.source import ExportQuery
    from convclass.export.window import TimeWindow

    window = TimeWindow(start=datetime(2026, 1, 1, tzinfo=UTC), end=NOW)
    with pytest.raises(SourceUnavailable) as caught:
        list(mongo.conversations(ExportQuery(tenant=TENANT, label_field=LABEL, window=window)))
    assert "s3cret" not in str(caught.value)
    assert isinstance(caught.value.__cause__, pymongo.errors.ServerSelectionTimeoutError)
    mongo.close()


def test_failed_part_upload_leaves_no_manifest(approved: Any) -> None:
    collection, _ = seeded(30)
    recorder = RecordingS3(approved, fail_on_put=2)
    with pytest.raises(ConnectionResetError):
        execute(make_request(), target(recorder, max_part_rows=10), lambda: source(collection))
    assert recorder.puts == [WHERE.export_part_key("run-1", 0), WHERE.export_part_key("run-1", 1)]
    assert WHERE.export_manifest_key("run-1") not in keys_under(approved, WHERE.prefix)


def test_chunked_export_equals_single_export_and_finalize_needs_every_chunk(approved: Any) -> None:
    collection, _ = seeded(80)
    window = {"start": "2026-01-05T00:00:00Z", "end": "2026-03-01T00:00:00Z"}
    planning = make_request("par", action="plan", window=window, chunk_hours=24 * 7)
    small = execute(planning, target(approved), lambda: source(collection))
    assert isinstance(small, ExportPlan)
    # 80 conversations in the window, by MongoDB's own count: far below the default size rule, one task.
    assert (small.chunk_count, small.chunked, small.chunks) == (8, False, [])
    assert (small.records, small.size_basis) == (80, "source")
    plan = execute(planning, target(approved, map_min_records=0), lambda: source(collection))
    assert isinstance(plan, ExportPlan)
    assert plan.chunked
    assert plan.chunk_count == len(plan.chunks) == 8  # 55 days in weeks
    for chunk in plan.chunks[:-1]:
        result = summary_of(
            execute(
                make_request("par", chunk=chunk.model_dump()), target(approved), lambda: source(collection)
            )
        )
        assert not result.complete

    finalize = make_request("par", action="finalize", chunk_count=plan.chunk_count, window=window)
    with pytest.raises(ExportIncomplete):
        execute(finalize, target(approved), lambda: source(collection))
    assert WHERE.export_manifest_key("par") not in keys_under(approved, WHERE.prefix)

    last = plan.chunks[-1].model_dump()
    execute(make_request("par", chunk=last), target(approved), lambda: source(collection))
    combined = summary_of(execute(finalize, target(approved), lambda: source(collection)))
    assert combined.complete
    assert combined.records == 80
    rows = read_rows(approved, read_manifest(approved, WHERE.export_manifest_key("par")))
    assert len({r["conversation_id"] for r in rows}) == 80
    proposed = read_manifest(approved, WHERE.export_manifest_key("par")).watermark
    assert proposed is not None
    assert proposed.isoformat().startswith("2026-03-01")

    single = summary_of(execute(make_request("one", window=window, full_export=True), target(approved),
                                lambda: source(collection)))  # fmt: skip
    assert single.records == combined.records


@pytest.mark.parametrize("chunked", [True, False])
def test_the_size_rule_goes_by_the_sources_count_of_the_window(approved: Any, chunked: bool) -> None:
    collection, records = seeded(120)
    start, end = datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 8, tzinfo=UTC)
    in_window = sum(1 for r in records if start <= r["updated_at"] < end)
    assert 0 < in_window < 120  # the count is of the window, not of the whole collection
    window = {"start": start.isoformat(), "end": end.isoformat()}
    planning = make_request("size", action="plan", window=window, chunk_hours=12)
    rule = target(approved, map_min_records=in_window + (0 if chunked else 1))
    plan = execute(planning, rule, lambda: source(collection))
    assert isinstance(plan, ExportPlan)
    assert (plan.records, plan.size_basis, plan.chunked) == (in_window, "source", chunked)
