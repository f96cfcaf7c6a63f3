"""``FindChampion``: which model serves the classifier now, so the training job scores it on the challenger's
test split. ``Evaluate`` reads the champion the same way (:func:`current_champion`).

The champion is the model behind the tenant's endpoint now, as recorded in
``champion.json`` by the last successful deployment. A record whose config is not what the endpoint serves is
ignored (the endpoint was changed outside the pipeline), and so is one without an endpoint, one that cannot be
parsed and one whose model archive is not under this classifier's models prefix. A ``shared`` record (a route:
shared endpoint + ``TargetModel``) holds while the shared endpoint exists. A missing ``champion.json``
(``NoSuchKey``, or ``404`` from a HEAD-style read) means no champion; any other error (``AccessDenied``) fails
the step.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from convclass.events import ChampionLookup, ChampionRecord, EndpointState, EvaluationStep
from convclass.layout import MODELS, ClassifierLayout, parse_s3_uri, s3_uri
from convclass.steps.contract import Step, StepEnvironment, run_ids
from convclass.training.champion import CHAMPION_CHANNEL

logger = logging.getLogger(__name__)

#: The ``action`` of FindChampion's event: the evaluate function serves both states, told apart by it.
FIND_CHAMPION = "find_champion"


class FindChampionEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["find_champion"]  # FIND_CHAMPION
    step: EvaluationStep
    #: The plan's InputDataConfig for the training job.
    channels: list[dict[str, Any]]


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


def run(event: FindChampionEvent, env: StepEnvironment) -> ChampionLookup:
    return find_champion(event, s3=env.client("s3"), sagemaker=env.client("sagemaker"))


STEP = Step(
    name="find-champion",
    schema=TypeAdapter(FindChampionEvent),
    run=run,
    buckets=lambda event: [event.step.bucket],
    log_keys=lambda event: run_ids(event.step),
    summary=lambda lookup: {"champion_run_id": lookup.run_id},
)
