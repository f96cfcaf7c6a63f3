"""Evaluate Lambda: challenger vs champion on their held-out metrics → deploy or reject, with both figures.

The challenger's metrics come from ``metrics.json`` inside the training job's model.tar.gz (streamed: the
SavedModel is not downloaded); the champion is the model behind the tenant's endpoint now, as recorded in
``champion.json`` by the last successful deployment. A champion record whose config is not what the endpoint
serves is ignored (the endpoint was changed outside the pipeline), and so is one without an endpoint.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, ValidationError

from convclass.comparison import decide, headline, metrics_from_model_tar
from convclass.errors import InvalidInput
from convclass.events import ChampionRecord, EndpointState, EvaluationResult, EvaluationStep, HeadlineMetrics
from convclass.layout import parse_s3_uri

logger = Logger(service="convclass-evaluate")

DATA_BUCKET_ENV = "CONVCLASS_DATA_BUCKET"


class EvaluateEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    step: EvaluationStep
    model_artifacts: str
    training_job_name: str


def parse_event(event: Any, *, deployed_bucket: str | None = None) -> EvaluateEvent:
    try:
        parsed = EvaluateEvent.model_validate(event)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc']) or '<event>'}: {item['msg']}"
            for item in exc.errors(include_input=False, include_url=False)
        )
        raise InvalidInput(f"evaluate event is invalid: {problems}") from None
    buckets = {parsed.step.bucket, parse_s3_uri(parsed.model_artifacts)[0]}
    if deployed_bucket and buckets != {deployed_bucket}:
        raise InvalidInput("evaluate may only read the data bucket it is deployed with")
    return parsed


def endpoint_state(sagemaker: Any, endpoint_name: str) -> EndpointState:
    try:
        described = sagemaker.describe_endpoint(EndpointName=endpoint_name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ValidationException":  # SageMaker's "not found"
            return EndpointState(exists=False)
        raise
    return EndpointState(exists=True, config_name=str(described["EndpointConfigName"]))


def read_champion(s3: Any, bucket: str, key: str) -> ChampionRecord | None:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
            return None
        raise
    try:
        return ChampionRecord.model_validate_json(body)
    except ValidationError:
        logger.warning("champion.json is unreadable: comparing against no champion")
        return None


def evaluate(event: EvaluateEvent, *, s3: Any, sagemaker: Any) -> EvaluationResult:
    step = event.step
    bucket, key = parse_s3_uri(event.model_artifacts)
    challenger = headline(metrics_from_model_tar(s3.get_object(Bucket=bucket, Key=key)["Body"]))
    endpoint = endpoint_state(sagemaker, step.endpoint_name)
    record = read_champion(s3, step.bucket, step.champion_key) if endpoint.exists else None
    champion: HeadlineMetrics | None = None
    if record is not None and record.endpoint_config_name == endpoint.config_name:
        champion = record.metrics
    elif record is not None:
        logger.warning("champion.json does not describe what the endpoint serves: ignoring it")
    deploy, reason = decide(challenger, champion, min_accuracy=step.min_accuracy, tolerance=step.tolerance)
    return EvaluationResult(
        deploy=deploy,
        reason=reason,
        challenger=challenger,
        champion=champion,
        min_accuracy=step.min_accuracy,
        tolerance=step.tolerance,
        endpoint=endpoint,
    )


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = parse_event(event, deployed_bucket=os.environ.get(DATA_BUCKET_ENV))
    logger.append_keys(
        tenant=parsed.step.tenant, classifier=parsed.step.classifier, run_id=parsed.step.run_id
    )
    result = evaluate(parsed, s3=boto3.client("s3"), sagemaker=boto3.client("sagemaker"))
    logger.info(
        "challenger evaluated",
        extra={
            "deploy": result.deploy,
            "challenger_accuracy": result.challenger.accuracy,
            "champion_accuracy": result.champion.accuracy if result.champion else None,
        },
    )
    return result.model_dump(mode="json")
