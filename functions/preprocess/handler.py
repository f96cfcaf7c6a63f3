"""Preprocess Lambda handler: validated ``PreprocessStep`` event → dataset in S3 → pointers and counts.

Named errors (``InvalidInput``, ``InsufficientData``) reach Step Functions under their class names, so the
state machine can end a run cleanly before any training is paid for. Neither the event nor any email is
logged.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from convclass.errors import InsufficientData
from functions.preprocess.job import parse_request, run

logger = Logger(service="convclass-preprocess")


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_request(event)
    logger.append_keys(tenant=request.tenant, classifier=request.classifier, run_id=request.run_id)
    with tempfile.TemporaryDirectory(prefix="convclass-preprocess-") as scratch:
        try:
            result = run(request, boto3.client("s3"), Path(scratch), os.environ)
        except InsufficientData:
            logger.warning("insufficient data: the dataset manifest says why")
            raise
    logger.info(
        "dataset built",
        extra={
            "records_read": result.records_read,
            "records_kept": result.records_kept,
            "labels": result.labels,
        },
    )
    return result.model_dump()
