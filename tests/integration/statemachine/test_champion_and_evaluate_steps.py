"""The evaluate function against moto S3 and SageMaker: which champion counts, and what is decided."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from workflow_support import BUCKET, REGION, SHARED_ENDPOINT, model_tar, request

from convclass import layout
from convclass.deployment import DATA_BUCKET_ENV
from convclass.errors import IncompatibleModel, InvalidInput
from convclass.events import ChampionLookup, ChampionRecord, EvaluationResult, HeadlineMetrics
from convclass.steps import champion, evaluate
from convclass.steps.champion import read_champion
from convclass.steps.contract import StepEnvironment
from convclass.steps.plan import plan_run
from convclass.training.champion import CHAMPION_CHANNEL
from convclass_local.lambdas import invoke_handler

pytestmark = pytest.mark.xdist_group("statemachine-evaluate")

_MODELS = layout.ClassifierLayout("eval", "support").area_prefix(layout.MODELS)
ARTIFACTS = f"s3://{BUCKET}/{_MODELS}eval-support-2/job-0/output/model.tar.gz"
CHAMPION = f"s3://{BUCKET}/{_MODELS}eval-support-1/job-0/output/model.tar.gz"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, fake_aws_credentials: None) -> Iterator[tuple[Any, Any]]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield s3, boto3.client("sagemaker", region_name=REGION)


def _event(
    challenger: float, s3: Any, *, champion: float | None = None, scored: str | None = None
) -> dict[str, Any]:
    s3.put_object(Bucket=BUCKET, Key=layout.parse_s3_uri(ARTIFACTS)[1], Body=model_tar(challenger, champion))
    plan = plan_run(
        request("eval"), execution_name="eval-support-2", bucket=BUCKET, shared_endpoint=SHARED_ENDPOINT
    )
    return {
        "step": plan.evaluation.model_dump(mode="json"),
        "model_artifacts": ARTIFACTS,
        "training_job_name": "job-0",
        "champion_model": scored,
    }


def _deploy_champion(
    s3: Any,
    sagemaker: Any,
    accuracy: float,
    *,
    record_config: str = "cfg-1",
    artifacts: str = CHAMPION,
    tenant: str = "eval",
) -> None:
    plan = plan_run(
        request(tenant), execution_name=f"{tenant}-support-1", bucket=BUCKET, shared_endpoint=SHARED_ENDPOINT
    )
    role = "arn:aws:iam::123456789012:role/sagemaker"
    sagemaker.create_model(ModelName=f"m-{tenant}", ExecutionRoleArn=role, PrimaryContainer={"Image": "i:1"})
    sagemaker.create_endpoint_config(
        EndpointConfigName="cfg-1",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": f"m-{tenant}",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=plan.deploy.endpoint_name, EndpointConfigName="cfg-1")
    record = ChampionRecord(
        run_id=f"{tenant}-support-1",
        model_name=f"m-{tenant}",
        endpoint_config_name=record_config,
        model_artifacts=artifacts,
        training_job_name="job-0",
        metrics=HeadlineMetrics(accuracy=accuracy, macro_f1=accuracy),
        execution="arn:execution",
        deployed_at="2026-11-29T00:00:00Z",
    )
    s3.put_object(Bucket=BUCKET, Key=plan.deploy.champion_key, Body=record.model_dump_json())


def _clients(s3: Any, sagemaker: Any) -> StepEnvironment:
    return StepEnvironment({DATA_BUCKET_ENV: BUCKET}, {"s3": s3, "sagemaker": sagemaker}.__getitem__)


def _evaluate(event: dict[str, Any], s3: Any, sagemaker: Any) -> EvaluationResult:
    env = _clients(s3, sagemaker)
    return evaluate.STEP.run(evaluate.STEP.prepare(event, env.environ), env)


def _lookup(s3: Any, sagemaker: Any) -> ChampionLookup:
    plan = plan_run(
        request("eval"), execution_name="eval-support-2", bucket=BUCKET, shared_endpoint=SHARED_ENDPOINT
    )
    env = _clients(s3, sagemaker)
    event = {
        "action": champion.FIND_CHAMPION,
        "step": plan.evaluation.model_dump(mode="json"),
        "channels": plan.training.input_data_config,
    }
    return champion.STEP.run(champion.STEP.prepare(event, env.environ), env)


def test_first_model_is_judged_on_the_minimum_alone(aws: tuple[Any, Any]) -> None:
    s3, sagemaker = aws
    lookup = _lookup(s3, sagemaker)
    assert (lookup.model_artifacts, lookup.endpoint.exists) == (None, False)
    assert CHAMPION_CHANNEL not in {c["ChannelName"] for c in lookup.input_data_config}
    result = _evaluate(_event(0.8, s3), s3, sagemaker)
    assert (result.deploy, result.champion, result.endpoint.exists) == (True, None, False)


def test_lookup_adds_the_champions_archive_as_a_training_channel(aws: tuple[Any, Any]) -> None:
    s3, sagemaker = aws
    _deploy_champion(s3, sagemaker, 0.95)
    lookup = _lookup(s3, sagemaker)
    plan = plan_run(
        request("eval"), execution_name="eval-support-2", bucket=BUCKET, shared_endpoint=SHARED_ENDPOINT
    )
    (channel,) = [c for c in lookup.input_data_config if c["ChannelName"] == CHAMPION_CHANNEL]
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == CHAMPION
    assert [c for c in lookup.input_data_config if c is not channel] == plan.training.input_data_config
    assert (lookup.model_artifacts, lookup.run_id) == (CHAMPION, "eval-support-1")


def test_champion_is_compared_on_the_challengers_test_split(aws: tuple[Any, Any]) -> None:
    """The champion's own recorded figure (0.95, on its old test set) is not used: the figure the training
    job computed on the challenger's test split (0.85) is."""
    s3, sagemaker = aws
    _deploy_champion(s3, sagemaker, 0.95)
    result = _evaluate(_event(0.9, s3, champion=0.85, scored=CHAMPION), s3, sagemaker)
    assert result.deploy is True
    assert result.champion is not None
    assert result.champion.accuracy == pytest.approx(0.85)
    assert result.champion_model == CHAMPION
    assert "same 100-row test split" in result.reason
    assert result.endpoint.config_name == "cfg-1"

    worse = _evaluate(_event(0.8, s3, champion=0.85, scored=CHAMPION), s3, sagemaker)
    assert worse.deploy is False


def test_a_champion_that_changed_during_training_rejects_the_challenger(aws: tuple[Any, Any]) -> None:
    s3, sagemaker = aws
    _deploy_champion(s3, sagemaker, 0.5)
    # Training was given no champion (none served then); one serves now.
    result = _evaluate(_event(0.99, s3), s3, sagemaker)
    assert (result.deploy, result.champion, result.champion_model) == (False, None, CHAMPION)
    assert "changed the champion" in result.reason


def test_champion_record_of_another_config_is_ignored(aws: tuple[Any, Any]) -> None:
    s3, sagemaker = aws
    _deploy_champion(s3, sagemaker, 0.95, record_config="cfg-stale")
    assert _lookup(s3, sagemaker).model_artifacts is None
    result = _evaluate(_event(0.9, s3), s3, sagemaker)
    assert (result.deploy, result.champion) == (True, None)


def test_a_champion_record_pointing_at_another_tenants_model_is_never_fed_to_training(
    aws: tuple[Any, Any],
) -> None:
    """A second tenant's archive named in the first tenant's champion.json is not used."""
    s3, sagemaker = aws
    other = layout.ClassifierLayout("rival", "support").area_prefix(layout.MODELS)
    _deploy_champion(s3, sagemaker, 0.95, artifacts=f"s3://{BUCKET}/{other}run/job-0/output/model.tar.gz")
    lookup = _lookup(s3, sagemaker)
    assert lookup.model_artifacts is None
    assert CHAMPION_CHANNEL not in {c["ChannelName"] for c in lookup.input_data_config}


@pytest.mark.parametrize("code", ["NoSuchKey", "404"])
def test_a_missing_champion_record_is_no_champion(code: str) -> None:
    """S3 answers a missing key with NoSuchKey (GetObject) or a bare 404 (HEAD-style reads)."""

    class MissingKey:
        def get_object(self, **_: Any) -> Any:
            raise ClientError({"Error": {"Code": code, "Message": "Not Found"}}, "GetObject")

    assert read_champion(MissingKey(), BUCKET, "tenants/eval/classifiers/support/champion.json") is None


def test_access_denied_on_the_champion_record_fails_the_step() -> None:
    """AccessDenied is not "no champion": deploying on the minimum alone would skip the comparison."""

    class Denied:
        def get_object(self, **_: Any) -> Any:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject")

    with pytest.raises(ClientError):
        read_champion(Denied(), BUCKET, "tenants/eval/classifiers/support/champion.json")


def test_a_champion_model_in_another_bucket_is_refused(aws: tuple[Any, Any]) -> None:
    s3, _ = aws
    event = _event(0.9, s3, scored="s3://elsewhere/model.tar.gz")
    with pytest.raises(InvalidInput):
        evaluate.STEP.prepare(event, {DATA_BUCKET_ENV: BUCKET})


def test_artifact_without_metrics_is_a_named_error_through_the_handler(aws: tuple[Any, Any]) -> None:
    s3, _ = aws
    event = _event(0.9, s3)
    s3.put_object(Bucket=BUCKET, Key=layout.parse_s3_uri(ARTIFACTS)[1], Body=b"not a tar")
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


def test_a_shared_route_is_the_champion_while_the_shared_endpoint_exists(aws: tuple[Any, Any]) -> None:
    """No dedicated endpoint: the champion is the model the route names on the shared endpoint."""
    s3, sagemaker = aws
    plan = plan_run(
        request("eval"), execution_name="eval-support-1", bucket=BUCKET, shared_endpoint=SHARED_ENDPOINT
    )
    record = ChampionRecord(
        run_id="eval-support-1",
        hosting="shared",
        endpoint_name="cc-shared",
        target_model="eval/support/eval-support-1/model.tar.gz",
        model_artifacts=CHAMPION,
        training_job_name="job-0",
        metrics=HeadlineMetrics(accuracy=0.95, macro_f1=0.95),
        execution="arn:execution",
        deployed_at="2026-11-29T00:00:00Z",
    )
    s3.put_object(Bucket=BUCKET, Key=plan.deploy.champion_key, Body=record.model_dump_json())
    assert _lookup(s3, sagemaker).model_artifacts is None  # the shared endpoint does not exist (yet)
    role = "arn:aws:iam::123456789012:role/sagemaker"
    sagemaker.create_model(ModelName="m-shared", ExecutionRoleArn=role, PrimaryContainer={"Image": "i:1"})
    sagemaker.create_endpoint_config(
        EndpointConfigName="cfg-shared",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "m-shared",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName="cc-shared", EndpointConfigName="cfg-shared")
    assert _lookup(s3, sagemaker).model_artifacts == CHAMPION
    result = _evaluate(_event(0.9, s3, champion=0.95, scored=CHAMPION), s3, sagemaker)
    assert result.deploy is False
    assert result.champion is not None


def test_a_roll_back_is_never_blocked_by_the_serving_champion(aws: tuple[Any, Any]) -> None:
    s3, sagemaker = aws
    _deploy_champion(s3, sagemaker, 0.95)
    # The earlier model scored no (or another) champion when it trained; the customer chose it anyway.
    event = _event(0.80, s3)
    event["step"] = {**event["step"], "redeploy": True, "min_accuracy": 0.0}
    result = _evaluate(event, s3, sagemaker)
    assert result.deploy is True
    assert result.champion is None
