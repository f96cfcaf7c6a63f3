"""Export Lambda: validate the event, then hand over to :mod:`convclass.export.run` (export, plan, finalize,
commit the run's history, record the export gate's answer).

Returns only S3 pointers and counts (the state payload limit is 256 KB); named errors (``ExportNotApproved``,
``SourceUnavailable``, ``InvalidInput``, ``InsufficientData``, ``ExportIncomplete``, ``UnknownTenant``) reach
Step Functions under their class names. Neither the event nor any record is logged: only ids and counts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from convclass.deployment import DATA_BUCKET_ENV, KMS_KEY_ENV
from convclass.errors import InvalidInput
from convclass.export.factory import open_source
from convclass.export.request import CommitSummary, ConsentSummary, ExportPlan, ExportRequest
from convclass.export.run import DEFAULT_MAP_MIN_RECORDS, DEFAULT_SETTLE, ExportTarget, execute
from convclass.export.settings import SECRET_ID_ENV, SourceSettings, load_source_settings
from convclass.export.source import ConversationSource
from convclass.export.writer import DEFAULT_MAX_PART_BYTES, DEFAULT_MAX_PART_ROWS

logger = Logger(service="convclass-export")


def parse_request(event: Any) -> ExportRequest:
    try:
        return ExportRequest.model_validate(event)
    except ValidationError as error:
        # Locations and messages only: input values never reach the error (and so never the logs).
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc']) or '<event>'}: {item['msg']}" for item in error.errors()
        )
        raise InvalidInput(f"export event is invalid: {problems}") from None


def target_from_environment(s3: Any, bucket: str, environ: Mapping[str, str]) -> ExportTarget:
    deployed = environ.get(DATA_BUCKET_ENV)
    if deployed and deployed != bucket:
        raise InvalidInput("the export may only write to the data bucket it is deployed with")
    try:
        return ExportTarget(
            s3=s3,
            bucket=bucket,
            max_part_bytes=int(environ.get("CONVCLASS_EXPORT_MAX_PART_BYTES", DEFAULT_MAX_PART_BYTES)),
            max_part_rows=int(environ.get("CONVCLASS_EXPORT_MAX_PART_ROWS", DEFAULT_MAX_PART_ROWS)),
            kms_key_id=environ.get(KMS_KEY_ENV) or None,
            map_min_records=int(environ.get("CONVCLASS_EXPORT_MAP_MIN_RECORDS", DEFAULT_MAP_MIN_RECORDS)),
            settle=timedelta(
                seconds=int(environ.get("CONVCLASS_EXPORT_SETTLE_SECONDS", DEFAULT_SETTLE.total_seconds()))
            ),
        )
    except ValueError:
        raise InvalidInput("CONVCLASS_EXPORT_* settings must be integers") from None


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_request(event)
    logger.append_keys(
        tenant=request.tenant, classifier=request.classifier, run_id=request.run_id, action=request.action
    )
    environ = dict(os.environ)
    s3 = boto3.client("s3")
    target = target_from_environment(s3, request.bucket, environ)

    def connect() -> ConversationSource:
        if request.data_source.kind == "files":
            settings = SourceSettings()  # dropped files need no connection: the location is in the event
        else:
            secrets = boto3.client("secretsmanager") if environ.get(SECRET_ID_ENV) else None
            settings = load_source_settings(request.tenant, environ=environ, secrets=secrets)
        return open_source(
            request.data_source, tenant=request.tenant, settings=settings, environ=environ, s3=s3
        )

    result = execute(request, target, connect)
    if isinstance(result, ExportPlan):
        logger.info("export planned", extra={"chunks": result.chunk_count, "mode": result.mode})
    elif isinstance(result, CommitSummary):
        logger.info("history committed", extra={"watermark": result.value.isoformat()})
    elif isinstance(result, ConsentSummary):
        logger.info("export gate answer recorded", extra={"approved": result.approved})
    else:
        logger.info(
            "export written",
            extra={
                "complete": result.complete,
                "chunk": result.chunk,
                "read": result.read,
                "records": result.records,
                "skipped": result.skipped,
                "parts": result.parts,
            },
        )
    return result.model_dump(mode="json")
