"""The export function's run contract on moto S3: retries return what was written, the watermark moves only on
commit, the export gate's answer is recorded as consent or refusal, deletions travel as tombstones."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import mongomock
import pytest
from botocore.exceptions import ClientError
from export_support import (
    BUCKET,
    LABEL,
    TENANT,
    WHERE,
    commit_run,
    keys_under,
    make_request,
    read_manifest,
    read_rows,
)

from convclass.errors import ExportIncomplete, ExportNotApproved
from convclass.export.consent import ConsentRecord, record_consent, require_consent
from convclass.export.mapping import DocumentMapping, conversation_document
from convclass.export.mongo import MongoSource
from convclass.export.request import ConsentSummary, ExportSummary
from convclass.export.run import ExportTarget, committed_history, execute
from convclass_local.generator import iter_emails

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def target(s3: Any, now: datetime = NOW) -> ExportTarget:
    return ExportTarget(s3=s3, bucket=BUCKET, clock=lambda: now)


def seeded(n: int) -> tuple[Any, list[dict[str, Any]]]:
    collection = mongomock.MongoClient(tz_aware=True)["support"]["conversations"]
    records = list(iter_emails(n, seed=3, tenant_id=TENANT, label_field=LABEL, duplicate_rate=0.0))
    collection.insert_many([conversation_document(r) for r in records])
    return collection, records


class CountingSource:
    """Opens a MongoSource over ``collection`` and counts how often the export opened one."""

    def __init__(self, collection: Any) -> None:
        self.collection = collection
        self.opened = 0

    def __call__(self) -> MongoSource:
        self.opened += 1
        return MongoSource(self.collection, DocumentMapping(), description="mongomock")


def test_a_retried_export_returns_the_summary_it_wrote_and_reads_nothing(approved: Any) -> None:
    collection, _ = seeded(30)
    open_source = CountingSource(collection)
    first = execute(make_request("run-1"), target(approved), open_source)
    written = approved.get_object(Bucket=BUCKET, Key=WHERE.export_manifest_key("run-1"))["Body"].read()
    # More data arrives and the clock moves on before the retry (the response of the first attempt was lost).
    collection.insert_many(
        [conversation_document(r) for r in iter_emails(5, seed=99, tenant_id=TENANT, label_field=LABEL)]
    )
    retried = execute(make_request("run-1"), target(approved, NOW + timedelta(hours=2)), open_source)

    assert isinstance(first, ExportSummary)
    assert retried == first
    assert first.records == 30
    assert open_source.opened == 1
    assert (
        approved.get_object(Bucket=BUCKET, Key=WHERE.export_manifest_key("run-1"))["Body"].read() == written
    )


def test_the_watermark_moves_only_when_the_run_commits(approved: Any) -> None:
    collection, _ = seeded(20)
    execute(make_request("run-1"), target(approved), CountingSource(collection))
    assert committed_history(approved, BUCKET, WHERE) is None
    # run-1 never committed (it failed later): run-2 reads all history again, nothing is lost.
    second = execute(make_request("run-2"), target(approved), CountingSource(collection))
    assert isinstance(second, ExportSummary)
    assert second.records == 20
    assert second.window.start.year == 1970

    with pytest.raises(ExportIncomplete, match="no training history"):
        execute(make_request("run-2", action="commit"), target(approved), CountingSource(collection))
    committed = commit_run(approved, target(approved), "run-2")
    assert committed.value == NOW - timedelta(minutes=5)
    mark = committed_history(approved, BUCKET, WHERE)
    assert mark is not None
    assert (mark.run_id, mark.history_key) == ("run-2", WHERE.history_manifest_key("run-2"))


def test_commit_checks_consent_again(approved: Any) -> None:
    collection, _ = seeded(10)
    execute(make_request("run-1"), target(approved), CountingSource(collection))
    revoked = ConsentRecord(approved=True, approved_by="dpo", approved_at=NOW, revoked_at=NOW)
    record_consent(approved, BUCKET, WHERE, revoked, kms_key_arn=None)
    with pytest.raises(ExportNotApproved):
        commit_run(approved, target(approved), "run-1")
    assert WHERE.watermark_key not in keys_under(approved, WHERE.prefix)


def test_a_denied_consent_read_is_an_error_not_a_missing_approval(s3: Any) -> None:
    """The export role may list the bucket: AccessDenied means a broken role, not "no consent"."""

    class DeniedReads:
        def get_object(self, **_: Any) -> Any:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject")

    with pytest.raises(ClientError) as denied:
        require_consent(DeniedReads(), BUCKET, WHERE, LABEL)
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ExportNotApproved):
        require_consent(s3, BUCKET, WHERE, LABEL)


def test_the_export_gate_answer_is_recorded_as_consent_or_refusal(s3: Any) -> None:
    approval = {"approved": True, "approver": "dana", "reason": "contract signed"}
    result = execute(
        make_request("run-1", action="consent", answer=approval), target(s3), CountingSource(None)
    )
    assert isinstance(result, ConsentSummary)
    assert (result.approved, result.by) == (True, "dana")
    record = require_consent(s3, BUCKET, WHERE, LABEL)
    assert (record.approved_by, record.label_fields, record.reason) == ("dana", [LABEL], "contract signed")

    # A committed history exists; a refusal (the cause of SendTaskFailure, as text) drops it.
    collection, _ = seeded(10)
    execute(make_request("run-1"), target(s3), CountingSource(collection))
    commit_run(s3, target(s3), "run-1")
    cause = json.dumps({"approved": False, "approver": "sam", "reason": "tenant objected"})
    refused = execute(make_request("run-2", action="refuse", answer=cause), target(s3), CountingSource(None))
    assert isinstance(refused, ConsentSummary)
    assert (refused.approved, refused.by) == (False, "sam")
    with pytest.raises(ExportNotApproved):
        require_consent(s3, BUCKET, WHERE, LABEL)
    assert WHERE.watermark_key not in keys_under(s3, WHERE.prefix)
    # An answer that is not what convclass sends is recorded without a name, never rejected.
    anonymous = execute(
        make_request("run-3", action="refuse", answer="n/a"), target(s3), CountingSource(None)
    )
    assert isinstance(anonymous, ConsentSummary)
    assert anonymous.by == "unknown"


def test_an_answer_belongs_to_the_consent_actions_and_a_commit_needs_an_export(approved: Any) -> None:
    with pytest.raises(ValueError, match="answer"):
        make_request("run-1", answer={"approver": "x"})
    with pytest.raises(ExportIncomplete, match="no export manifest"):
        execute(make_request("run-1", action="commit"), target(approved), CountingSource(None))


def test_a_soft_deleted_conversation_is_exported_as_a_tombstone(approved: Any) -> None:
    collection, records = seeded(12)
    gone = records[0]["conversation_id"]
    collection.update_one({"_id": gone}, {"$set": {"deleted_at": NOW - timedelta(days=1)}})
    result = execute(make_request("run-1"), target(approved), CountingSource(collection))
    assert isinstance(result, ExportSummary)
    manifest = read_manifest(approved, WHERE.export_manifest_key("run-1"))
    rows = {row["conversation_id"]: row for row in read_rows(approved, manifest)}
    assert (manifest.counts.exported, manifest.counts.deleted) == (12, 1)
    assert rows[gone]["deleted"] is True
    assert (rows[gone]["body"], dict(rows[gone]["labels"])) == ("", {})
    assert sum(1 for row in rows.values() if row["deleted"]) == 1
