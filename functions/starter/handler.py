"""Starter Lambda: start one training run per queued TrainingRunRequest, under an idempotent execution name.

Every training trigger (the "train classifier" bus rule, retraining schedules, direct SendMessage) lands in
the training-request queue. The execution name comes from ``convclass.events.execution_name`` (tenant +
classifier + business key, via ``convclass.layout.training_execution_name``), so a redelivered message or a
repeated trigger maps to the execution that already exists instead of a second paid training run.

A message that is not a valid request is reported as a batch item failure: after the queue's receive limit it
moves to the DLQ (alarmed), so nothing is silently dropped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from convclass.deployment import TRAINING_STATE_MACHINE_ENV
from convclass.errors import validated
from convclass.events import TrainingRunRequest, execution_name

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS)


@dataclass(frozen=True)
class StartResult:
    execution_name: str
    #: False when an execution with this name already existed (a duplicate trigger): nothing new started.
    started: bool
    execution_arn: str | None


def parse_request(body: str) -> TrainingRunRequest:
    """The queued request, or ``InvalidInput`` naming the fields that are wrong (never their values)."""
    return validated(TrainingRunRequest, body, what="training request", from_json=True)


def start_run(client: Any, state_machine_arn: str, request: TrainingRunRequest) -> StartResult:
    """StartExecution under the request's idempotent name; an existing execution means a duplicate trigger."""
    name = execution_name(request)
    try:
        response = client.start_execution(
            stateMachineArn=state_machine_arn, name=name, input=request.model_dump_json()
        )
    except client.exceptions.ExecutionAlreadyExists:
        return StartResult(execution_name=name, started=False, execution_arn=None)
    return StartResult(execution_name=name, started=True, execution_arn=str(response["executionArn"]))


@cache
def _stepfunctions() -> Any:
    return boto3.client("stepfunctions")


def _record_handler(record: SQSRecord) -> None:
    request = parse_request(record.body)
    result = start_run(_stepfunctions(), os.environ[TRAINING_STATE_MACHINE_ENV], request)
    logger.info(
        "training run started" if result.started else "duplicate training request: run already exists",
        extra={
            "tenant": request.tenant,
            "classifier": request.classifier,
            "execution": result.execution_name,
        },
    )


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=_record_handler, processor=processor, context=context
    )
