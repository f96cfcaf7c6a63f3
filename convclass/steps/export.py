"""``PlanExport``, ``Export``, ``ExportChunks``' iterations, ``FinalizeExport``, ``CommitHistory`` and the
export gate's answer: one export function, the action named in the event (:mod:`convclass.export.run` does
the work).

The source connection is opened only after consent was checked; the settings come from the function's
environment (part limits, the plan's size rule, how long writes settle) and, for databases, from Secrets
Manager. Only S3 pointers and counts are returned (the state payload limit is 256 KB).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pydantic import TypeAdapter

from convclass.deployment import KMS_KEY_ENV
from convclass.errors import InvalidInput
from convclass.export.factory import open_source
from convclass.export.request import CommitSummary, ConsentSummary, ExportPlan, ExportRequest, ExportSummary
from convclass.export.run import DEFAULT_MAP_MIN_RECORDS, DEFAULT_SETTLE, ExportTarget, execute
from convclass.export.settings import SECRET_ID_ENV, SourceSettings, load_source_settings
from convclass.export.source import ConversationSource
from convclass.export.writer import DEFAULT_MAX_PART_BYTES, DEFAULT_MAX_PART_ROWS
from convclass.steps.contract import Step, StepEnvironment, run_ids

ExportResult = ExportSummary | ExportPlan | CommitSummary | ConsentSummary

#: Environment settings of the export function (integers), with their defaults.
MAX_PART_BYTES_ENV = "CONVCLASS_EXPORT_MAX_PART_BYTES"
MAX_PART_ROWS_ENV = "CONVCLASS_EXPORT_MAX_PART_ROWS"
MAP_MIN_RECORDS_ENV = "CONVCLASS_EXPORT_MAP_MIN_RECORDS"
SETTLE_SECONDS_ENV = "CONVCLASS_EXPORT_SETTLE_SECONDS"


def target_from_environment(s3: Any, bucket: str, environ: Mapping[str, str]) -> ExportTarget:
    def setting(name: str, default: float) -> int:
        try:
            return int(environ.get(name, default))
        except ValueError:
            raise InvalidInput(f"{name} must be an integer") from None

    return ExportTarget(
        s3=s3,
        bucket=bucket,
        max_part_bytes=setting(MAX_PART_BYTES_ENV, DEFAULT_MAX_PART_BYTES),
        max_part_rows=setting(MAX_PART_ROWS_ENV, DEFAULT_MAX_PART_ROWS),
        kms_key_id=environ.get(KMS_KEY_ENV) or None,
        map_min_records=setting(MAP_MIN_RECORDS_ENV, DEFAULT_MAP_MIN_RECORDS),
        settle=timedelta(seconds=setting(SETTLE_SECONDS_ENV, DEFAULT_SETTLE.total_seconds())),
    )


def run(request: ExportRequest, env: StepEnvironment) -> ExportResult:
    s3 = env.client("s3")
    target = target_from_environment(s3, request.bucket, env.environ)

    def connect() -> ConversationSource:
        if request.data_source.kind == "files":
            settings = SourceSettings()  # dropped files need no connection: the location is in the event
        else:
            secrets = env.client("secretsmanager") if env.environ.get(SECRET_ID_ENV) else None
            settings = load_source_settings(request.tenant, environ=env.environ, secrets=secrets)
        return open_source(
            request.data_source, tenant=request.tenant, settings=settings, environ=env.environ, s3=s3
        )

    return execute(request, target, connect)


def summary(result: ExportResult) -> dict[str, Any]:
    """What the log line says about the result: counts and flags, never a record."""
    if isinstance(result, ExportPlan):
        return {"chunks": result.chunk_count, "chunked": result.chunked, "mode": result.mode}
    if isinstance(result, CommitSummary):
        return {"watermark": result.value.isoformat()}
    if isinstance(result, ConsentSummary):
        return {"approved": result.approved}
    return {
        "complete": result.complete,
        "chunk": result.chunk,
        "read": result.read,
        "records": result.records,
        "skipped": result.skipped,
        "parts": result.parts,
    }


STEP = Step(
    name="export",
    schema=TypeAdapter(ExportRequest),
    run=run,
    buckets=lambda request: [request.bucket],
    log_keys=lambda request: {**run_ids(request), "action": request.action},
    summary=summary,
)
