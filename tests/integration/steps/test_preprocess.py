"""The preprocess Lambda end to end against moto S3: export parts in, dataset splits + manifest out."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from moto import mock_aws

from convclass.dataset import DatasetManifest
from convclass.errors import InsufficientData, InvalidInput
from convclass.events import PreprocessStep
from convclass.export.manifest import ExportCounts, ExportManifest, PartInfo, SourceInfo
from convclass.export.window import TimeWindow
from convclass.layout import ClassifierLayout
from convclass_local.generator import generate_emails, write_parquet
from functions.preprocess import handler as preprocess

for _name in ("botocore", "boto3", "urllib3", "moto"):
    logging.getLogger(_name).setLevel(logging.WARNING)

BUCKET = "convclass-data-test"
TENANT, CLASSIFIER, RUN = "acme-shop", "intent", "run-0001"
WHERE = ClassifierLayout(TENANT, CLASSIFIER)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, fake_aws_credentials: None) -> Iterator[Any]:
    monkeypatch.delenv("CONVCLASS_DATA_BUCKET", raising=False)
    monkeypatch.delenv("CONVCLASS_BASE_TOKENIZER_DIR", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def _export(s3: Any, parts: list[list[dict[str, Any]]], *, corrupt_part: int | None = None) -> None:
    """Write export parts and the export manifest the way the export step does."""
    infos = []
    for index, records in enumerate(parts):
        buffer = io.BytesIO()
        write_parquet(records, buffer)
        data = buffer.getvalue()
        key = WHERE.export_part_key(RUN, index)
        digest = hashlib.sha256(data).hexdigest()
        s3.put_object(Bucket=BUCKET, Key=key, Body=data[:-10] if index == corrupt_part else data)
        infos.append(PartInfo(key=key, records=len(records), bytes=len(data), sha256=digest))
    now = datetime(2026, 3, 1, tzinfo=UTC)
    manifest = ExportManifest(
        tenant=TENANT,
        classifier=CLASSIFIER,
        run_id=RUN,
        label_field="intent",
        mode="full",
        source=SourceInfo(kind="files", description="generated"),
        window=TimeWindow(start=datetime(2000, 1, 1, tzinfo=UTC), end=now),
        counts=ExportCounts(read=sum(len(p) for p in parts), exported=sum(len(p) for p in parts)),
        parts=infos,
        started_at=now,
        finished_at=now,
    )
    s3.put_object(Bucket=BUCKET, Key=WHERE.export_manifest_key(RUN), Body=manifest.model_dump_json())


def _event(**overrides: Any) -> dict[str, Any]:
    step = PreprocessStep(
        tenant=TENANT,
        classifier=CLASSIFIER,
        label_field="intent",
        run_id=RUN,
        bucket=BUCKET,
        input_prefix=WHERE.export_prefix(RUN),
        input_manifest_key=WHERE.export_manifest_key(RUN),
        output_prefix=WHERE.dataset_prefix(RUN),
        min_examples_per_label=5,
    )
    return {**step.model_dump(), **overrides}


def _manifest(s3: Any) -> DatasetManifest:
    body = s3.get_object(Bucket=BUCKET, Key=WHERE.dataset_manifest_key(RUN))["Body"].read()
    return DatasetManifest.model_validate_json(body)


def test_handler_builds_a_stratified_leak_free_dataset_and_returns_only_pointers(
    s3: Any, lambda_context: LambdaContext
) -> None:
    records = generate_emails(900, seed=21, duplicate_rate=0.05)
    _export(s3, [records[:500], records[500:]])

    result = preprocess.handler(_event(), lambda_context)

    assert len(json.dumps(result)) < 2048  # pointers and counts only: far below the 256 KB state limit
    assert result["split_keys"] == {s: WHERE.split_key(RUN, s) for s in ("train", "validation", "test")}
    assert result["tokenizer_key"] == WHERE.tokenizer_key(RUN)
    assert result["records_read"] == 900
    manifest = _manifest(s3)
    assert manifest.status == "ok"
    assert (manifest.tenant, manifest.classifier, manifest.run_id) == (TENANT, CLASSIFIER, RUN)
    assert manifest.counts.accounted
    assert manifest.counts.duplicates > 0
    tables = {
        split: pq.read_table(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()))
        for split, key in result["split_keys"].items()
    }
    assert {split: t.num_rows for split, t in tables.items()} == result["split_sizes"]
    texts = [set(t.column("text").to_pylist()) for t in tables.values()]
    assert not texts[0] & texts[1]
    assert not texts[0] & texts[2]
    assert not texts[1] & texts[2]
    for table in tables.values():
        assert set(table.column("label").to_pylist()) == set(manifest.labels)
    tokenizer = json.loads(s3.get_object(Bucket=BUCKET, Key=result["tokenizer_key"])["Body"].read())
    assert "[EMAIL]" in {t["content"] for t in tokenizer["added_tokens"]}


def test_handler_raises_insufficient_data_and_still_uploads_the_manifest(
    s3: Any, lambda_context: LambdaContext
) -> None:
    records = generate_emails(60, seed=2)
    for record in records:
        record["labels"] = {"intent": "order_status"}
    _export(s3, [records])
    with pytest.raises(InsufficientData):
        preprocess.handler(_event(), lambda_context)
    manifest = _manifest(s3)
    assert manifest.status == "insufficient_data"
    assert manifest.labels == []
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=WHERE.dataset_prefix(RUN))["Contents"]
    assert [o["Key"] for o in listed] == [WHERE.dataset_manifest_key(RUN)]


def test_a_part_that_does_not_match_its_checksum_is_refused(s3: Any, lambda_context: LambdaContext) -> None:
    _export(s3, [generate_emails(50, seed=3), generate_emails(50, seed=4)], corrupt_part=1)
    with pytest.raises(InvalidInput, match="SHA-256"):
        preprocess.handler(_event(), lambda_context)


def test_missing_export_manifest_and_foreign_prefixes_are_named_errors(
    s3: Any, lambda_context: LambdaContext
) -> None:
    with pytest.raises(InvalidInput, match="did not complete"):
        preprocess.handler(_event(), lambda_context)
    other = ClassifierLayout("other-tenant", CLASSIFIER)
    with pytest.raises(InvalidInput, match="output_prefix"):
        preprocess.handler(_event(output_prefix=other.dataset_prefix(RUN)), lambda_context)
    with pytest.raises(InvalidInput, match="input_prefix"):
        preprocess.handler(_event(input_prefix=other.export_prefix(RUN)), lambda_context)


def test_an_invalid_event_is_rejected_without_echoing_values(s3: Any, lambda_context: LambdaContext) -> None:
    with pytest.raises(InvalidInput) as caught:
        preprocess.handler({**_event(), "min_examples_per_label": "secret-value"}, lambda_context)
    assert "secret-value" not in str(caught.value)
    with pytest.raises(InvalidInput, match="tenant"):
        preprocess.handler({k: v for k, v in _event().items() if k != "tenant"}, lambda_context)


def test_the_deployed_bucket_is_enforced(
    s3: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: LambdaContext
) -> None:
    monkeypatch.setenv("CONVCLASS_DATA_BUCKET", "another-bucket")
    with pytest.raises(InvalidInput, match="data bucket"):
        preprocess.handler(_event(), lambda_context)


def test_logs_carry_ids_and_counts_but_no_email_text(
    s3: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: LambdaContext
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(preprocess.handler.logger.registered_handler, "stream", stream)
    records = generate_emails(300, seed=8)
    _export(s3, [records])
    preprocess.handler(_event(), lambda_context)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    built = next(line for line in lines if line["message"] == "preprocess done")
    assert (built["tenant"], built["classifier"], built["run_id"]) == (TENANT, CLASSIFIER, RUN)
    assert built["records_read"] == 300
    logged = stream.getvalue()
    for record in records:
        assert record["conversation_id"] not in logged
        if record["subject"]:
            assert json.dumps(record["subject"])[1:-1] not in logged


def test_the_run_writes_its_history_and_cannot_continue_another_tenants(
    s3: Any, lambda_context: LambdaContext
) -> None:
    records = generate_emails(200, seed=5, duplicate_rate=0.0)
    _export(s3, [records])
    result = preprocess.handler(_event(), lambda_context)
    assert result["history_manifest_key"] == WHERE.history_manifest_key(RUN)
    assert result["history_records"] == len({r["conversation_id"] for r in records})

    # A second tenant whose export claims to continue the first tenant's history is refused.
    other = ClassifierLayout("globex", CLASSIFIER)
    body = s3.get_object(Bucket=BUCKET, Key=WHERE.export_manifest_key(RUN))["Body"].read()
    foreign = ExportManifest.model_validate_json(body).model_copy(
        update={"tenant": "globex", "history_base": WHERE.history_manifest_key(RUN)}
    )
    s3.put_object(Bucket=BUCKET, Key=other.export_manifest_key(RUN), Body=foreign.model_dump_json())
    event = _event(
        tenant="globex",
        input_prefix=other.export_prefix(RUN),
        input_manifest_key=other.export_manifest_key(RUN),
        output_prefix=other.dataset_prefix(RUN),
    )
    with pytest.raises(InvalidInput, match="outside this tenant"):
        preprocess.handler(event, lambda_context)
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=other.dataset_prefix(RUN)).get("KeyCount", 0) == 0


def test_labels_agents_confirmed_override_exported_ones_for_this_classifier_only(
    s3: Any, lambda_context: LambdaContext
) -> None:
    from convclass.feedback.events import LabelConfirmed
    from convclass.feedback.store import FeedbackStore

    records = generate_emails(400, seed=5)
    _export(s3, [records])
    chosen = [r["conversation_id"] for r in records[:30]]
    store = FeedbackStore(s3, BUCKET, "")
    when = datetime(2026, 3, 2, tzinfo=UTC)
    for index, conversation in enumerate(chosen):
        store.put(
            LabelConfirmed(
                event_id=f"confirm-{index}",
                tenant=TENANT,
                classifier=CLASSIFIER,
                conversation_id=conversation,
                label="confirmed_by_agent",
                confirmed_at=when,
                agent="agent-7",
            )
        )
    # Another tenant confirming the same conversation ids changes nothing here.
    for index, conversation in enumerate(records[30:60]):
        store.put(
            LabelConfirmed(
                event_id=f"other-{index}",
                tenant="acme",
                classifier="shop-intent",
                conversation_id=conversation["conversation_id"],
                label="foreign_label",
                confirmed_at=when,
                agent="agent-9",
            )
        )

    preprocess.handler(_event(), lambda_context)

    manifest = _manifest(s3)
    labels: dict[str, str] = {}
    for split in ("train", "validation", "test"):
        body = s3.get_object(Bucket=BUCKET, Key=WHERE.split_key(RUN, split))["Body"].read()
        for row in pq.read_table(io.BytesIO(body), columns=["conversation_id", "label"]).to_pylist():
            labels[row["conversation_id"]] = row["label"]
    assert "foreign_label" not in manifest.labels
    kept_confirmed = [c for c in chosen if c in labels]
    assert kept_confirmed, "the confirmed conversations are in the training set"
    assert {labels[c] for c in kept_confirmed} == {"confirmed_by_agent"}
    assert manifest.counts.labels_confirmed == len(chosen)
