"""Helpers of the export tests: constants, requests and readers of what an export wrote."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import pyarrow.parquet as pq

from convclass.dataset.history import HistoryCounts, HistoryManifest
from convclass.export.manifest import ExportManifest
from convclass.export.request import CommitSummary, ExportRequest
from convclass.export.run import ExportTarget, execute
from convclass.layout import ClassifierLayout

BUCKET = "convclass-data-test"
TENANT = "acme-shop"
CLASSIFIER = "intents"
LABEL = "intent"
WHERE = ClassifierLayout(TENANT, CLASSIFIER)


def make_request(run_id: str = "run-1", **overrides: Any) -> ExportRequest:
    event: dict[str, Any] = {
        "tenant": TENANT,
        "classifier": CLASSIFIER,
        "label_field": LABEL,
        "run_id": run_id,
        "data_source": {"kind": "mongodb"},
        "full_export": False,
        "bucket": BUCKET,
        "output_prefix": WHERE.export_prefix(run_id),
        "manifest_key": WHERE.export_manifest_key(run_id),
        "consent_key": WHERE.consent_key,
        "watermark_key": WHERE.watermark_key,
    }
    event.update(overrides)
    return ExportRequest.model_validate(event)


def event_for(request: ExportRequest) -> dict[str, Any]:
    return request.model_dump(mode="json")


def read_manifest(s3: Any, key: str) -> ExportManifest:
    return ExportManifest.model_validate_json(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def read_rows(s3: Any, manifest: ExportManifest) -> list[dict[str, Any]]:
    """Every row of the parts a manifest lists, checking each part's SHA-256 as a consumer must."""
    rows: list[dict[str, Any]] = []
    for part in manifest.parts:
        data = s3.get_object(Bucket=BUCKET, Key=part.key)["Body"].read()
        assert hashlib.sha256(data).hexdigest() == part.sha256
        assert len(data) == part.bytes
        table = pq.read_table(io.BytesIO(data))
        assert table.num_rows == part.records
        rows.extend(table.to_pylist())
    return rows


def keys_under(s3: Any, prefix: str) -> list[str]:
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def commit_run(s3: Any, target: ExportTarget, run_id: str) -> CommitSummary:
    """End ``run_id`` as a successful run does: its history exists (as preprocess leaves it), then commit."""
    history = HistoryManifest(
        tenant=TENANT,
        classifier=CLASSIFIER,
        run_id=run_id,
        label_field=LABEL,
        base=None,
        export_manifest_key=WHERE.export_manifest_key(run_id),
        counts=HistoryCounts(),
        created_at=target.clock(),
    )
    s3.put_object(
        Bucket=BUCKET, Key=WHERE.history_manifest_key(run_id), Body=history.model_dump_json().encode()
    )
    result = execute(make_request(run_id, action="commit"), target, _no_source)
    assert isinstance(result, CommitSummary)
    return result


def _no_source() -> Any:
    raise AssertionError("this action must not open the source")


def watermark_value(s3: Any) -> str:
    return str(json.loads(s3.get_object(Bucket=BUCKET, Key=WHERE.watermark_key)["Body"].read())["value"])


class RecordingS3:
    """Wraps an S3 client and records the order of writes (and can fail the n-th part upload)."""

    def __init__(self, inner: Any, fail_on_put: int | None = None) -> None:
        self._inner = inner
        self.puts: list[str] = []
        self._fail_on_put = fail_on_put

    def put_object(self, **kwargs: Any) -> Any:
        if self._fail_on_put is not None and len(self.puts) == self._fail_on_put:
            raise ConnectionResetError("simulated network failure during upload")
        self.puts.append(kwargs["Key"])
        return self._inner.put_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
