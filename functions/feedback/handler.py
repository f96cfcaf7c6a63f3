"""Feedback Lambda: store the bus's feedback events, ask for reviews, and evaluate the retraining policy.

An SQS batch (the feedback queue, fed by the bus rules for ``Conversation Label Confirmed`` and ``Email
Classified``) is captured record by record; an invalid record is reported as a batch item failure and ends
in the DLQ. Each classifier the batch touched is then evaluated as of its newest captured event, and a
training request is queued when a policy rule fires (see ``convclass.feedback``).
"""

from __future__ import annotations

import os
from datetime import datetime
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from convclass.deployment import (
    DATA_BUCKET_ENV,
    EVENT_BUS_ENV,
    FEEDBACK_POLICIES_ENV,
    KMS_KEY_ENV,
    TRAINING_QUEUE_URL_ENV,
    TRAINING_STATE_MACHINE_ENV,
)
from convclass.feedback.events import event_day
from convclass.feedback.loop import FeedbackLoop, policies_from_json

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS)


@cache
def _loop() -> FeedbackLoop:
    return FeedbackLoop(
        s3=boto3.client("s3"),
        sfn=boto3.client("stepfunctions"),
        sqs=boto3.client("sqs"),
        events=boto3.client("events"),
        bucket=os.environ[DATA_BUCKET_ENV],
        kms_key_arn=os.environ[KMS_KEY_ENV],
        training_state_machine_arn=os.environ[TRAINING_STATE_MACHINE_ENV],
        training_queue_url=os.environ[TRAINING_QUEUE_URL_ENV],
        event_bus_name=os.environ[EVENT_BUS_ENV],
        policies=policies_from_json(os.environ.get(FEEDBACK_POLICIES_ENV)),
    )


def _evaluate(touched: dict[tuple[str, str], datetime]) -> None:
    for (tenant, classifier), now in sorted(touched.items()):
        try:
            decision = _loop().evaluate(tenant, classifier, now)
        except Exception:  # stored rows are safe; the next batch evaluates again
            logger.exception("feedback evaluation failed", extra={"tenant": tenant, "classifier": classifier})
            continue
        if decision.request is not None:
            logger.info(
                "automatic training run requested" if decision.sent else "automatic training run exists",
                extra={
                    "tenant": tenant,
                    "classifier": classifier,
                    "execution": decision.execution_name,
                    "reason": decision.request.reason,
                },
            )


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    touched: dict[tuple[str, str], datetime] = {}

    def record_handler(record: SQSRecord) -> None:
        captured = _loop().capture(record.body)
        pair, when = (captured.record.tenant, captured.record.classifier), event_day(captured.record)
        touched[pair] = max(touched.get(pair, when), when)

    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    _evaluate(touched)
    return response
