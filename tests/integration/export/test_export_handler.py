"""The export Lambda handler: event validation, settings from Secrets Manager, answers with pointers only."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import mongomock
import pytest
from export_support import BUCKET, LABEL, TENANT, WHERE, event_for, make_request, read_manifest, read_rows

from convclass.errors import ExportNotApproved, InvalidInput, UnknownTenant
from convclass.export import factory
from convclass.export.mapping import conversation_document
from convclass_local.generator import iter_emails, write_jsonl
from functions.export import handler as export_handler
from functions.export.handler import handler

CONTEXT = SimpleNamespace(
    function_name="cc-export",
    memory_limit_in_mb=2048,
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:cc-export",
    aws_request_id="req-1",
)
PASSWORD = "pa55-w0rd-do-not-log"


@pytest.fixture
def drop(tmp_path: Path) -> str:
    path = tmp_path / "drop.jsonl"
    write_jsonl(iter_emails(20, seed=5, tenant_id=TENANT, label_field=LABEL, duplicate_rate=0.0), path)
    return str(path)


def files_event(uri: str, **overrides: Any) -> dict[str, Any]:
    event = event_for(make_request(data_source={"kind": "files", "uri": uri}))
    event.update(overrides)
    return event


def test_files_export_answers_with_pointers_and_counts(
    approved: Any, drop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVCLASS_DATA_BUCKET", BUCKET)
    monkeypatch.setenv("CONVCLASS_SOURCE_SECRET_ID", "convclass/{tenant}/source")  # not needed for files
    answer = handler(files_event(drop), CONTEXT)
    assert answer["manifest"] == f"s3://{BUCKET}/{WHERE.export_manifest_key('run-1')}"
    assert answer["complete"] is True
    assert (answer["records"], answer["skipped"], answer["parts"]) == (20, 0, 1)
    assert len(json.dumps(answer)) < 1024  # pointers and counts, never records
    assert len(read_rows(approved, read_manifest(approved, WHERE.export_manifest_key("run-1")))) == 20


def test_invalid_events_are_invalid_input_without_echoing_values(approved: Any, drop: str) -> None:
    with pytest.raises(InvalidInput, match="tenant"):
        handler({**files_event(drop), "tenant": "Not A Tenant!"}, CONTEXT)
    with pytest.raises(InvalidInput, match="manifest_key"):
        handler(
            {**files_event(drop), "manifest_key": "tenants/other/classifiers/x/exports/run-1/manifest.json"},
            CONTEXT,
        )
    with pytest.raises(InvalidInput) as caught:
        handler(
            {**files_event(drop), "window": {"start": "2026-02-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}},
            CONTEXT,
        )
    assert "2026-02-01" not in str(caught.value)
    with pytest.raises(InvalidInput):
        handler(
            {**files_event(drop), "mongodb_uri": "mongodb://u:p@h/db"}, CONTEXT
        )  # settings never from events


def test_writes_only_to_its_own_bucket_and_allowed_locations(
    approved: Any, drop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVCLASS_DATA_BUCKET", "some-other-bucket")
    with pytest.raises(InvalidInput, match="data bucket"):
        handler(files_event(drop), CONTEXT)
    monkeypatch.delenv("CONVCLASS_DATA_BUCKET")
    monkeypatch.setenv("CONVCLASS_FILES_ROOTS", "s3://drops/{tenant}/")
    with pytest.raises(InvalidInput, match="outside"):
        handler(files_event(drop), CONTEXT)


def test_refuses_without_approval(s3: Any, drop: str) -> None:
    with pytest.raises(ExportNotApproved):
        handler(files_event(drop), CONTEXT)


def test_mongodb_settings_come_from_secrets_manager_and_never_leak(
    approved: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = io.StringIO()
    capture = logging.StreamHandler(logs)
    capture.setFormatter(export_handler.handler.logger.registered_formatter)
    logging.getLogger("convclass-export").addHandler(capture)
    store = mongomock.MongoClient(tz_aware=True)
    store["support"]["tickets"].insert_many(
        [
            conversation_document(e)
            for e in iter_emails(15, seed=9, tenant_id=TENANT, label_field=LABEL, duplicate_rate=0.0)
        ]
    )
    uris: list[str] = []

    def fake_connect(uri: str, **_: Any) -> Any:
        uris.append(uri)
        return store

    monkeypatch.setattr(factory, "connect", fake_connect)
    secret = {
        "mongodb": {
            "uri": f"mongodb+srv://exporter:{PASSWORD}@cluster0.example.net/support?authSource=admin",
            "database": "support",
            "collection": "tickets",
        }
    }
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name=f"convclass/{TENANT}/source", SecretString=json.dumps(secret)
    )
    monkeypatch.setenv("CONVCLASS_SOURCE_SECRET_ID", "convclass/{tenant}/source")
    event = event_for(make_request(data_source={"kind": "mongodb"}))
    try:
        answer = handler(event, CONTEXT)
    finally:
        logging.getLogger("convclass-export").removeHandler(capture)

    assert answer["records"] == 15
    assert uris == [secret["mongodb"]["uri"]]
    manifest = read_manifest(approved, WHERE.export_manifest_key("run-1"))
    assert manifest.source.description == "mongodb+srv://cluster0.example.net/support support.tickets"
    assert PASSWORD not in manifest.model_dump_json()
    written = json.loads(logs.getvalue().splitlines()[-1])
    assert (written["message"], written["tenant"], written["records"]) == ("export done", TENANT, 15)
    assert PASSWORD not in logs.getvalue()
    assert not any(
        e["subject"] in logs.getvalue() for e in iter_emails(15, seed=9, tenant_id=TENANT, duplicate_rate=0.0)
    )


def test_unknown_tenant_secret(approved: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVCLASS_SOURCE_SECRET_ID", "convclass/{tenant}/source")
    with pytest.raises(UnknownTenant):
        handler(event_for(make_request(data_source={"kind": "mongodb"})), CONTEXT)


def test_plan_answers_map_items(approved: Any, drop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVCLASS_EXPORT_MAP_MIN_RECORDS", "0")  # size by the window alone
    window = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-31T00:00:00Z"}
    answer = handler(files_event(drop, action="plan", window=window, chunk_hours=24 * 10), CONTEXT)
    assert answer["chunk_count"] == 3
    assert [c["start"] for c in answer["chunks"]] == [
        "2026-01-01T00:00:00Z",
        "2026-01-11T00:00:00Z",
        "2026-01-21T00:00:00Z",
    ]
    assert datetime.fromisoformat(answer["window"]["end"]) == datetime(2026, 1, 31, tzinfo=UTC)
