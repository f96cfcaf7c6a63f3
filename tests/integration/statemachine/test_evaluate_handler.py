"""The evaluate function against moto S3 and SageMaker: which champion counts, and what is decided."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from workflow_support import BUCKET, REGION, model_tar, request

from convclass.errors import IncompatibleModel
from convclass.events import ChampionRecord, HeadlineMetrics, plan_run
from convclass.local.lambdas import invoke_handler
from functions.evaluate.handler import evaluate, parse_event

pytestmark = pytest.mark.xdist_group("statemachine-evaluate")

ARTIFACTS = f"s3://{BUCKET}/models/challenger/model.tar.gz"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, fake_aws_credentials: None) -> Iterator[tuple[Any, Any]]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield s3, boto3.client("sagemaker", region_name=REGION)


def _event(challenger: float, s3: Any) -> dict[str, Any]:
    s3.put_object(Bucket=BUCKET, Key=ARTIFACTS.removeprefix(f"s3://{BUCKET}/"), Body=model_tar(challenger))
    plan = plan_run(request("eval"), execution_name="eval-support-2", bucket=BUCKET)
    return {
        "step": plan.evaluation.model_dump(mode="json"),
        "model_artifacts": ARTIFACTS,
        "training_job_name": "job-0",
    }


def _deploy_champion(s3: Any, sagemaker: Any, accuracy: float, *, record_config: str = "cfg-1") -> None:
    plan = plan_run(request("eval"), execution_name="eval-support-1", bucket=BUCKET)
    role = "arn:aws:iam::123456789012:role/sagemaker"
    sagemaker.create_model(ModelName="m1", ExecutionRoleArn=role, PrimaryContainer={"Image": "image:1"})
    sagemaker.create_endpoint_config(
        EndpointConfigName="cfg-1",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "m1",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=plan.deploy.endpoint_name, EndpointConfigName="cfg-1")
    record = ChampionRecord(
        run_id="eval-support-1",
        model_name="m1",
        endpoint_config_name=record_config,
        model_artifacts=ARTIFACTS,
        training_job_name="job-0",
        metrics=HeadlineMetrics(accuracy=accuracy, macro_f1=accuracy),
        execution="arn:execution",
        deployed_at="2026-11-29T00:00:00Z",
    )
    s3.put_object(Bucket=BUCKET, Key=plan.deploy.champion_key, Body=record.model_dump_json())


def test_first_model_is_judged_on_the_minimum_alone(aws: tuple[Any, Any]) -> None:
    s3, sagemaker = aws
    result = evaluate(parse_event(_event(0.8, s3)), s3=s3, sagemaker=sagemaker)
    assert (result.deploy, result.champion, result.endpoint.exists) == (True, None, False)


def test_champion_behind_the_endpoint_is_compared(aws: tuple[Any, Any]) -> None:
    s3, sagemaker = aws
    _deploy_champion(s3, sagemaker, 0.95)
    result = evaluate(parse_event(_event(0.9, s3)), s3=s3, sagemaker=sagemaker)
    assert result.deploy is False
    assert result.champion is not None
    assert result.champion.accuracy == pytest.approx(0.95)
    assert result.endpoint.config_name == "cfg-1"


def test_champion_record_of_another_config_is_ignored(aws: tuple[Any, Any]) -> None:
    s3, sagemaker = aws
    _deploy_champion(s3, sagemaker, 0.95, record_config="cfg-stale")
    result = evaluate(parse_event(_event(0.9, s3)), s3=s3, sagemaker=sagemaker)
    assert (result.deploy, result.champion) == (True, None)


def test_artifact_without_metrics_is_a_named_error_through_the_handler(aws: tuple[Any, Any]) -> None:
    s3, _ = aws
    event = _event(0.9, s3)
    s3.put_object(Bucket=BUCKET, Key=ARTIFACTS.removeprefix(f"s3://{BUCKET}/"), Body=b"not a tar")
    payload, errored = invoke_handler(
        "functions.evaluate.handler.handler",
        event,
        function_name="convclass-evaluate",
        function_arn="arn:aws:lambda:eu-west-1:123456789012:function:convclass-evaluate",
        environment={"CONVCLASS_DATA_BUCKET": BUCKET},
        memory_mb=256,
        timeout_s=30,
    )
    assert errored
    assert IncompatibleModel.__name__ in payload
