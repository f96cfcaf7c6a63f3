"""Evaluate Lambda: the champion lookup before training, and challenger vs champion after it.

Both steps read the champion the same way: the model behind the tenant's endpoint now, as recorded in
``champion.json`` by the last successful deployment. A record whose config is not what the endpoint serves is
ignored (the endpoint was changed outside the pipeline), and so is one without an endpoint, one that cannot be
parsed and one whose model archive is not under this classifier's models prefix. A ``shared`` record (a route:
shared endpoint + ``TargetModel``) holds while the shared endpoint exists. A missing ``champion.json``
(``NoSuchKey``, or ``404`` from a HEAD-style read) means no champion; any other error (``AccessDenied``) fails
the step.

* ``{"action": "find_champion", "step": ..., "channels": [...]}`` (state ``FindChampion``): returns the
  plan's training channels plus the channel ``champion`` with the champion's model archive, so the training
  job scores both models on the challenger's held-out split.
* ``{"step": ..., "model_artifacts": ..., "training_job_name": ..., "champion_model": ...}`` (``Evaluate``):
  reads both figures from the challenger's ``metrics.json`` (streamed: the SavedModel is not downloaded) and
  decides. If the champion serving now is not the one the training job scored (a deployment finished in
  between), the challenger is rejected: there is no figure for the new champion on this test split.
"""

from __future__ import annotations

import os
from typing import Any, Literal, TypeVar

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, ValidationError

from convclass.comparison import Comparison, compare, metrics_from_model_tar
from convclass.deployment import DATA_BUCKET_ENV
from convclass.errors import InvalidInput
from convclass.events import ChampionLookup, ChampionRecord, EndpointState, EvaluationResult, EvaluationStep
from convclass.layout import MODELS, ClassifierLayout, parse_s3_uri, s3_uri
from convclass.training.champion import CHAMPION_CHANNEL

logger = Logger(service="convclass-evaluate")
_E = TypeVar("_E", bound=BaseModel)


class EvaluateEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    step: EvaluationStep
    model_artifacts: str
    training_job_name: str
    #: The champion's archive the training job was given (FindChampion's ``model_artifacts``), if any.
    champion_model: str | None = None


class FindChampionEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["find_champion"]
    step: EvaluationStep
    #: The plan's InputDataConfig for the training job.
    channels: list[dict[str, Any]]


def _validated(model: type[_E], event: Any) -> _E:
    try:
        return model.model_validate(event)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc']) or '<event>'}: {item['msg']}"
            for item in exc.errors(include_input=False, include_url=False)
        )
        raise InvalidInput(f"evaluate event is invalid: {problems}") from None


def parse_event(event: Any, *, deployed_bucket: str | None = None) -> EvaluateEvent | FindChampionEvent:
    parsed: EvaluateEvent | FindChampionEvent
    if isinstance(event, dict) and "action" in event:
        parsed = _validated(FindChampionEvent, event)
        buckets = {parsed.step.bucket}
    else:
        parsed = _validated(EvaluateEvent, event)
        uris = [parsed.model_artifacts, *([parsed.champion_model] if parsed.champion_model else [])]
        buckets = {parsed.step.bucket, *(parse_s3_uri(uri)[0] for uri in uris)}
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


def current_champion(
    step: EvaluationStep, *, s3: Any, sagemaker: Any
) -> tuple[EndpointState, ChampionRecord | None]:
    """The serving endpoint's state and the champion record that describes what it serves (None if none does).

    A ``shared`` record is a route: it holds while the shared endpoint it names exists (that endpoint serves
    whatever ``TargetModel`` the route names). A ``dedicated`` record holds while the classifier's own
    endpoint serves the config it names."""
    record = read_champion(s3, step.bucket, step.champion_key)
    if record is not None and record.hosting == "shared" and record.endpoint_name:
        endpoint = endpoint_state(sagemaker, record.endpoint_name)
        if not endpoint.exists:
            logger.warning("champion.json routes to an endpoint that does not exist: ignoring it")
            return endpoint, None
    else:
        endpoint = endpoint_state(sagemaker, step.endpoint_name)
        if record is None or not endpoint.exists:
            return endpoint, None
        if record.endpoint_config_name != endpoint.config_name:
            logger.warning("champion.json does not describe what the endpoint serves: ignoring it")
            return endpoint, None
    models = ClassifierLayout(step.tenant, step.classifier).area_prefix(MODELS)
    bucket, key = parse_s3_uri(record.model_artifacts)
    if bucket != step.bucket or not key.startswith(models):
        logger.warning("champion.json points outside this classifier's models: ignoring it")
        return endpoint, None
    return endpoint, record


def find_champion(event: FindChampionEvent, *, s3: Any, sagemaker: Any) -> ChampionLookup:
    """The training channels, with the champion's model archive as channel ``champion`` when one serves."""
    endpoint, record = current_champion(event.step, s3=s3, sagemaker=sagemaker)
    channels = [c for c in event.channels if c.get("ChannelName") != CHAMPION_CHANNEL]
    if record is not None:
        bucket, key = parse_s3_uri(record.model_artifacts)
        channels.append(
            {
                "ChannelName": CHAMPION_CHANNEL,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": s3_uri(bucket, key),
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "InputMode": "File",
            }
        )
    return ChampionLookup(
        endpoint=endpoint,
        model_artifacts=record.model_artifacts if record else None,
        run_id=record.run_id if record else None,
        input_data_config=channels,
    )


def evaluate(event: EvaluateEvent, *, s3: Any, sagemaker: Any) -> EvaluationResult:
    step = event.step
    bucket, key = parse_s3_uri(event.model_artifacts)
    metrics = metrics_from_model_tar(s3.get_object(Bucket=bucket, Key=key)["Body"])
    endpoint, record = current_champion(step, s3=s3, sagemaker=sagemaker)
    comparison: Comparison = compare(
        metrics,
        # A roll back is the customer's choice of an earlier model: no champion stands in its way.
        serving=record.model_artifacts if record and not step.redeploy else None,
        scored=event.champion_model,
        min_accuracy=step.min_accuracy,
        tolerance=step.tolerance,
    )
    return EvaluationResult(
        deploy=comparison.deploy,
        reason=comparison.reason,
        challenger=comparison.challenger,
        champion=comparison.champion,
        champion_model=comparison.champion_model,
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
    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
    if isinstance(parsed, FindChampionEvent):
        lookup = find_champion(parsed, s3=s3, sagemaker=sagemaker)
        logger.info("champion looked up", extra={"champion_run_id": lookup.run_id})
        return lookup.model_dump(mode="json")
    result = evaluate(parsed, s3=s3, sagemaker=sagemaker)
    logger.info(
        "challenger evaluated",
        extra={
            "deploy": result.deploy,
            "challenger_accuracy": result.challenger.accuracy,
            "champion_accuracy": result.champion.accuracy if result.champion else None,
        },
    )
    return result.model_dump(mode="json")
