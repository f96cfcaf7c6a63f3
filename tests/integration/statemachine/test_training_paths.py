"""Every path of the training pipeline, executed by moto's Step Functions engine.

Mocked service responses come from the Step Functions Local mock config (statemachine.mockconfig);
the plan and evaluate functions, the SageMaker calls, S3 and EventBridge run for real on moto. Each test
asserts the states entered, the final status and error, and what the run published.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from workflow_support import BUCKET, REGION, SHARED_ENDPOINT, RecordingRunner, World, request

from convclass import events, layout
from convclass.events import ApprovalRequest, ChampionRecord, RunOutcome
from convclass.steps.plan import plan_run
from convclass.training import metric_definitions
from convclass_local import moto_shims
from statemachine import PipelineSettings
from statemachine.asl import call_state
from statemachine.history import history, wait_for
from statemachine.training import names as t

sys.path.insert(0, str(Path(__file__).parents[2] / "unit" / "serving"))
from serving_fakes import ServingEndpoints, shared_name

pytestmark = pytest.mark.xdist_group("statemachine-training")


def called(name: str) -> list[str]:
    """A SageMaker call that succeeded: its Parallel state, then the Task inside."""
    return [name, call_state(name)]


TRAIN = called(t.TRAIN)
#: A small tenant's export: planned, sized and exported by one task (no Map).
SMALL_EXPORT = [t.PLAN_EXPORT, t.EXPORT_SIZE, t.EXPORT]
BEFORE_TRAINING = [t.VALIDATE_INPUT, t.EXPORT_APPROVAL_GATE, *SMALL_EXPORT, t.PREPROCESS, t.FIND_CHAMPION]
TRAINED = [*BEFORE_TRAINING, *TRAIN]
POLL = [t.WAIT_FOR_ENDPOINT, *called(t.DESCRIBE_ENDPOINT), t.CHECK_ENDPOINT]
#: No endpoint yet: InspectEndpoint's describe fails with "Could not find endpoint".
INSPECT_ABSENT = [*called(t.INSPECT_ENDPOINT), f"{t.INSPECT_ENDPOINT}Error", f"{t.INSPECT_ENDPOINT}Absent"]
DEPLOY_NEW = [
    t.HOSTING_CHOICE,
    *called(t.CREATE_MODEL),
    *called(t.CREATE_ENDPOINT_CONFIG),
    *INSPECT_ABSENT,
    t.CREATE_OR_UPDATE_ENDPOINT,
    *called(t.CREATE_ENDPOINT),
]
HAPPY = [
    *TRAINED,
    t.EVALUATE,
    t.DEPLOY_DECISION,
    *DEPLOY_NEW,
    *POLL,
    t.COUNT_POLL,
    *POLL,
    t.COUNT_POLL,
    *POLL,
    t.WRITE_CHAMPION,
    t.HISTORY_TO_COMMIT,
    t.COMMIT_HISTORY,
    t.PUBLISH_SUCCEEDED,
    t.SUCCEEDED,
]
FAILURE_TAIL = [t.PUBLISH_FAILURE, t.FAILED]
#: Export and preprocess mocked, a winning challenger and an endpoint that comes up.
_DATA_MOCKS = {
    t.PLAN_EXPORT: "ExportSmall",
    t.EXPORT: "ExportDone",
    t.PREPROCESS: "DatasetBuilt",
    t.EVALUATE: "ChallengerWins",
    call_state(t.DESCRIBE_ENDPOINT): "EndpointInServiceAfterPolls",
    t.COMMIT_HISTORY: "HistoryCommitted",
}


def _outcomes(world: World, execution: str) -> list[tuple[str, RunOutcome]]:
    found = [
        (event["detail-type"], RunOutcome.model_validate(event["detail"]))
        for event in world.events(execution=execution)
        if event["detail-type"] in {events.RUN_SUCCEEDED, events.RUN_FAILED}
    ]
    assert len(found) == 1, found
    return found


def test_happy_path_deploys_a_new_endpoint_and_records_the_champion(world: World) -> None:
    req = request("happy", hosting="dedicated")
    execution, run = world.run_training(req, "happy-support-1", "HappyPath")

    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert list(run.entered) == HAPPY
    plan = plan_run(req, execution_name="happy-support-1", bucket=BUCKET)
    s3 = boto3.client("s3", region_name=REGION)
    champion = ChampionRecord.model_validate_json(
        s3.get_object(Bucket=BUCKET, Key=plan.deploy.champion_key)["Body"].read()
    )
    assert champion.endpoint_config_name == plan.deploy.endpoint_config_name
    assert champion.metrics.accuracy == pytest.approx(0.93)
    assert champion.training_job_name == f"{plan.training.job_base_name}-0-0"
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    endpoint = sagemaker.describe_endpoint(EndpointName=layout.endpoint_name("happy", "support"))
    assert endpoint["EndpointConfigName"] == plan.deploy.endpoint_config_name
    ((detail_type, outcome),) = _outcomes(world, execution)
    assert (detail_type, outcome.outcome, outcome.endpoint) == (
        events.RUN_SUCCEEDED,
        "deployed",
        endpoint["EndpointName"],
    )
    assert outcome.metrics is not None
    assert outcome.metrics.accuracy == pytest.approx(0.93)


def test_training_job_is_secure_spot_and_uniquely_named(world: World) -> None:
    runner = RecordingRunner()
    moto_shims.update(training_runner=runner)
    req = request(
        "secure", managed_spot=True, max_runtime_seconds=600, max_wait_seconds=1200, hosting="dedicated"
    )
    _, run = world.run_training(req, "secure-support-1", "HappyPath")

    assert run.status == "SUCCEEDED", (run.error, run.cause)
    (job,) = runner.requests
    plan = plan_run(req, execution_name="secure-support-1", bucket=BUCKET)
    assert job["TrainingJobName"] == f"{plan.training.job_base_name}-0-0"
    assert len(job["TrainingJobName"]) <= layout.SAGEMAKER_NAME_MAX
    assert job["EnableNetworkIsolation"] is True
    assert job["EnableInterContainerTrafficEncryption"] is True
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 600, "MaxWaitTimeInSeconds": 1200}
    assert job["CheckpointConfig"] == {
        "S3Uri": plan.training.checkpoint_uri,
        "LocalPath": "/opt/ml/checkpoints",
    }
    assert job["OutputDataConfig"]["KmsKeyId"] == world.resources.kms_key_arn
    assert job["ResourceConfig"]["VolumeKmsKeyId"] == world.resources.kms_key_arn
    assert job["AlgorithmSpecification"]["MetricDefinitions"] == metric_definitions()
    assert {c["ChannelName"] for c in job["InputDataConfig"]} == {
        "train",
        "validation",
        "test",
        "tokenizer",
        "manifest",
    }


def test_throttled_lambda_is_retried_to_success(world: World) -> None:
    _, run = world.run_training(
        request("throttle", hosting="dedicated"), "throttle-support-1", "LambdaThrottled"
    )
    execution = f"{world.training_arn.replace(':stateMachine:', ':execution:')}:throttle-support-1"

    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert list(run.entered) == HAPPY
    failures = [
        e["taskFailedEventDetails"]["error"]
        for e in history(world.client("stepfunctions"), execution)
        if e["type"] == "TaskFailed"
    ]
    # The second is InspectEndpoint learning that no endpoint exists yet (DescribeEndpoint's not-found).
    assert failures == ["Lambda.TooManyRequestsException", "SageMaker.SageMakerException"]


def test_invalid_input_fails_before_anything_runs(world: World) -> None:
    bad = {"tenant": "Not A Tenant!", "classifier": "support", "data_source": {"kind": "files"}}
    execution = world.start(world.training_arn, "invalid-1", bad)
    run = wait_for(world.client("stepfunctions"), execution)

    assert run.status == "FAILED"
    assert run.error == "InvalidInput"
    assert "tenant" in (run.cause or "")
    assert "label_field" in (run.cause or "")
    assert list(run.entered) == [t.VALIDATE_INPUT, t.REPORT_REJECTED_REQUEST, t.REQUEST_REJECTED]
    ((detail_type, outcome),) = _outcomes(world, execution)
    assert (detail_type, outcome.error) == (events.RUN_FAILED, "InvalidInput")
    assert outcome.request == bad  # the raw input, echoed so the sender can see what was refused


def test_insufficient_data_ends_cleanly_before_training(world: World) -> None:
    execution, run = world.run_training(request("scarce"), "scarce-support-1", "InsufficientData")

    assert run.status == "SUCCEEDED"
    assert list(run.entered) == [*BEFORE_TRAINING[:-1], t.REPORT_NO_TRAINING, t.ENDED_WITHOUT_TRAINING]
    ((detail_type, outcome),) = _outcomes(world, execution)
    assert (detail_type, outcome.outcome, outcome.error) == (
        events.RUN_SUCCEEDED,
        "insufficient_data",
        "InsufficientData",
    )
    jobs = boto3.client("sagemaker", region_name=REGION).list_training_jobs()["TrainingJobSummaries"]
    assert not [job for job in jobs if job["TrainingJobName"].startswith("cc-scarce-")]


@pytest.mark.parametrize(
    ("status", "error", "state"),
    [
        ("Failed", t.ERROR_TRAINING_FAILED, t.TRAINING_FAILED),
        ("Stopped", t.ERROR_TRAINING_STOPPED, t.TRAINING_STOPPED),
    ],
)
def test_training_that_does_not_complete_fails_the_run(
    world: World, status: str, error: str, state: str
) -> None:
    reason = "AlgorithmError: loss became NaN" if status == "Failed" else ""
    moto_shims.update(training_runner=RecordingRunner(status=status, failure_reason=reason))
    tenant = f"train-{status.lower()}"
    execution, run = world.run_training(request(tenant), f"{tenant}-1", "HappyPath")

    assert run.status == "FAILED"
    assert run.error == error
    assert f'"TrainingJobStatus":"{status}"' in (run.cause or "")
    assert reason in (run.cause or "")
    assert list(run.entered) == [
        *BEFORE_TRAINING,
        *TRAIN,
        f"{t.TRAIN}JobFailed",
        t.CLASSIFY_TRAINING_FAILURE,
        state,
        *FAILURE_TAIL,
    ]
    ((_, outcome),) = _outcomes(world, execution)
    assert outcome.error == error


def test_challenger_worse_than_champion_is_rejected_with_both_figures(world: World) -> None:
    """Two runs with the real evaluate function: the second, weaker model must not replace the first.

    The rejection is a normal end: SUCCEEDED, with a ``Training Run Succeeded`` event of outcome ``rejected``.
    """
    real_comparison = {
        "RealComparison": {
            t.PLAN_EXPORT: "ExportSmall",
            t.EXPORT: "ExportDone",
            t.PREPROCESS: "DatasetBuilt",
            t.DESCRIBE_ENDPOINT: "EndpointInServiceAfterPolls",
            t.COMMIT_HISTORY: "HistoryCommitted",
            t.COMMIT_REJECTED_RUN_HISTORY: "HistoryCommitted",
        }
    }
    runner = RecordingRunner(accuracy=0.92)
    moto_shims.update(training_runner=runner)
    first = request("rival", hosting="dedicated")
    world.mock(first, "rival-support-1", world.training_arn, real_comparison)
    first_run = wait_for(
        world.client("stepfunctions"),
        world.start(world.training_arn, "rival-support-1", first.model_dump(mode="json"), "RealComparison"),
    )
    assert first_run.status == "SUCCEEDED", (first_run.error, first_run.cause)

    runner.accuracy, runner.champion_accuracy = 0.80, 0.92
    second = request("rival", hosting="dedicated")
    world.mock(second, "rival-support-2", world.training_arn, real_comparison)
    execution = world.start(
        world.training_arn, "rival-support-2", second.model_dump(mode="json"), "RealComparison"
    )
    run = wait_for(world.client("stepfunctions"), execution)

    assert run.status == "SUCCEEDED", (run.error, run.cause)
    ((detail_type, outcome),) = _outcomes(world, execution)
    assert (detail_type, outcome.outcome) == (events.RUN_SUCCEEDED, "rejected")
    decision = outcome.evaluation
    assert decision is not None
    assert decision.challenger.accuracy == pytest.approx(0.80)
    assert decision.champion is not None
    assert decision.champion.accuracy == pytest.approx(0.92)
    assert decision.deploy is False
    # The second job was given the first model as its champion channel.
    channels = {c["ChannelName"]: c for c in runner.requests[-1]["InputDataConfig"]}
    assert channels["champion"]["DataSource"]["S3DataSource"]["S3Uri"] == decision.champion_model
    assert "champion" not in {c["ChannelName"] for c in runner.requests[0]["InputDataConfig"]}
    assert list(run.entered) == [
        *TRAINED,
        t.EVALUATE,
        t.DEPLOY_DECISION,
        t.REJECTED_RUN_HISTORY_TO_COMMIT,
        t.COMMIT_REJECTED_RUN_HISTORY,
        t.MODEL_REJECTED,
        t.ENDED_REJECTED,
    ]
    endpoint = boto3.client("sagemaker", region_name=REGION).describe_endpoint(
        EndpointName=layout.endpoint_name("rival", "support")
    )
    assert (
        endpoint["EndpointConfigName"]
        == plan_run(first, execution_name="rival-support-1", bucket=BUCKET).deploy.endpoint_config_name
    )


def test_export_approval_rejected_stops_before_export(world: World) -> None:
    req = request("consent", export_approval=True)
    execution = world.start(world.training_arn, "consent-support-1", req.model_dump(mode="json"))
    asked = ApprovalRequest.model_validate(
        world.wait_for_event(events.APPROVAL_REQUESTED, execution=execution)["detail"]
    )
    assert (asked.gate, asked.tenant) == ("export", "consent")
    world.client("stepfunctions").send_task_failure(taskToken=asked.task_token, error="ApprovalRejected")
    run = wait_for(world.client("stepfunctions"), execution)

    assert run.status == "FAILED"
    assert run.error == t.ERROR_APPROVAL_REJECTED
    assert list(run.entered) == [
        t.VALIDATE_INPUT,
        t.EXPORT_APPROVAL_GATE,
        t.REQUEST_EXPORT_APPROVAL,
        t.RECORD_EXPORT_REFUSAL,
        *FAILURE_TAIL,
    ]


def _approval_requested(world: World, execution: str, gate: str, timeout_s: float = 60) -> ApprovalRequest:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for event in world.events(execution=execution):
            if event["detail-type"] == events.APPROVAL_REQUESTED and event["detail"]["gate"] == gate:
                return ApprovalRequest.model_validate(event["detail"])
        time.sleep(0.05)
    raise AssertionError(f"no {gate} approval was requested")


def test_granted_approvals_let_the_run_deploy(world: World) -> None:
    req = request("granted", export_approval=True, deploy_approval=True, hosting="dedicated")
    world.mock(req, "granted-support-1", world.training_arn)
    execution = world.start(world.training_arn, "granted-support-1", req.model_dump(mode="json"), "HappyPath")
    sfn = world.client("stepfunctions")
    for gate in ("export", "deployment"):
        asked = _approval_requested(world, execution, gate)
        sfn.send_task_success(taskToken=asked.task_token, output=json.dumps({"approved_by": "ops"}))
    run = wait_for(sfn, execution)

    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert t.REQUEST_EXPORT_APPROVAL in run.entered
    assert t.REQUEST_DEPLOY_APPROVAL in run.entered
    assert run.entered.index(t.REQUEST_DEPLOY_APPROVAL) == run.entered.index(t.DEPLOY_DECISION) + 1


def test_deployment_approval_that_times_out_fails_the_run(world: World) -> None:
    """Rendered with a 2 s timeout: nobody answers, so the gate lapses."""
    req = request("slow", deploy_approval=True)
    execution, run = world.run_training(req, "slow-support-1", "HappyPath", arn=world.short_approvals_arn)

    assert run.status == "FAILED"
    assert run.error == t.ERROR_APPROVAL_TIMED_OUT
    assert "States.Timeout" in (run.cause or "")
    assert list(run.entered) == [
        *TRAINED,
        t.EVALUATE,
        t.DEPLOY_DECISION,
        t.REQUEST_DEPLOY_APPROVAL,
        t.DEPLOY_APPROVAL_TIMED_OUT,
        *FAILURE_TAIL,
    ]
    asked = ApprovalRequest.model_validate(
        world.wait_for_event(events.APPROVAL_REQUESTED, execution=execution)["detail"]
    )
    assert asked.gate == "deployment"
    assert asked.evaluation is not None


def test_update_silently_rolled_back_is_a_deployment_failure(world: World) -> None:
    req = request("rollback", hosting="dedicated")
    _execution, run = world.run_training(req, "rollback-support-1", "EndpointRolledBack")
    plan = plan_run(req, execution_name="rollback-support-1", bucket=BUCKET)

    assert run.status == "FAILED"
    assert run.error == t.ERROR_DEPLOYMENT_FAILED
    assert "InService" in (run.cause or "")
    assert "FailureReason" in (run.cause or "")
    assert f"expected {plan.deploy.endpoint_config_name}" in (run.cause or "")
    assert list(run.entered) == [
        *TRAINED,
        t.EVALUATE,
        t.DEPLOY_DECISION,
        t.HOSTING_CHOICE,
        *called(t.CREATE_MODEL),
        *called(t.CREATE_ENDPOINT_CONFIG),
        *called(t.INSPECT_ENDPOINT),
        t.CREATE_OR_UPDATE_ENDPOINT,
        *called(t.UPDATE_ENDPOINT),
        *POLL,
        t.COUNT_POLL,
        *POLL,
        t.ENDPOINT_NOT_DEPLOYED,
        *FAILURE_TAIL,
    ]
    s3 = boto3.client("s3", region_name=REGION)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=plan.deploy.champion_key)


def test_endpoint_wait_is_bounded(world: World) -> None:
    req = request("stuck", hosting="dedicated")
    never = {
        "NeverInService": {
            t.PLAN_EXPORT: "ExportSmall",
            t.EXPORT: "ExportDone",
            t.PREPROCESS: "DatasetBuilt",
            t.EVALUATE: "ChallengerWins",
            call_state(t.DESCRIBE_ENDPOINT): "StillCreating",
        }
    }
    world.mock(req, "stuck-support-1", world.training_arn, never)
    config = moto_shims.current().mock_config
    assert config is not None
    raw = dict(config.raw)
    creating = raw["MockedResponses"]["EndpointInServiceAfterPolls"]["0-1"]
    raw["MockedResponses"] = {**raw["MockedResponses"], "StillCreating": {"0-99": creating}}
    moto_shims.update(mock_config=moto_shims.MockConfig(raw))
    execution = world.start(
        world.training_arn, "stuck-support-1", req.model_dump(mode="json"), "NeverInService"
    )
    run = wait_for(world.client("stepfunctions"), execution)

    assert run.status == "FAILED"
    assert run.error == t.ERROR_DEPLOYMENT_FAILED
    assert run.entered.count(t.DESCRIBE_ENDPOINT) == PipelineSettings().endpoint_max_polls
    assert "Creating" in (run.cause or "")


def _with_responses(world: World, req: Any, name: str, case: dict[str, str], extra: dict[str, Any]) -> str:
    """Mock ``case`` (state → response name) with ``extra`` responses in the catalogue; start the run."""
    world.mock(req, name, world.training_arn, {"Custom": case})
    config = moto_shims.current().mock_config
    assert config is not None
    raw = dict(config.raw)
    raw["MockedResponses"] = {**raw["MockedResponses"], **extra}
    moto_shims.update(mock_config=moto_shims.MockConfig(raw))
    return world.start(world.training_arn, name, req.model_dump(mode="json"), "Custom")


def _sagemaker_error(code: str, message: str) -> dict[str, Any]:
    # What the optimised integration reports for any SageMaker error: one name, the code in the cause.
    return {
        "Throw": {
            "Error": "SageMaker.AmazonSageMakerException",
            "Cause": f"{message} (Service: AmazonSageMaker; Status Code: 400; Error Code: {code})",
        }
    }


@pytest.mark.parametrize(
    ("code", "status", "calls"),
    [("ThrottlingException", "SUCCEEDED", 2), ("ValidationException", "FAILED", 1)],
)
def test_only_throttled_sagemaker_calls_are_retried(world: World, code: str, status: str, calls: int) -> None:
    req = request(f"retry-{code[:5].lower()}", hosting="dedicated")
    name = f"retry-{code[:5].lower()}-support-1"
    first_fails = {"0": _sagemaker_error(code, "Rate exceeded" if code.startswith("Thr") else "Bad image")}
    first_fails["1"] = {"Return": {"EndpointArn": "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/e"}}
    case = {**_DATA_MOCKS, call_state(t.CREATE_ENDPOINT): "CreateEndpointOnce"}
    execution = _with_responses(world, req, name, case, {"CreateEndpointOnce": first_fails})
    run = wait_for(world.client("stepfunctions"), execution)

    assert run.status == status, (run.error, run.cause)
    assert run.entered.count(call_state(t.CREATE_ENDPOINT)) == calls
    if status == "FAILED":
        assert run.error == t.ERROR_DEPLOYMENT_FAILED
        assert "ValidationException" in (run.cause or "")
        assert f"{t.CREATE_ENDPOINT}Permanent" in run.entered
    else:
        assert f"{t.CREATE_ENDPOINT}Transient" in run.entered


#: Training done: the approved model goes to the shared endpoint.
SHARED_DEPLOY = [
    t.HOSTING_CHOICE,
    t.PUBLISH_SHARED_MODEL,
    t.WARM_SHARED_MODEL,
    t.WRITE_SHARED_CHAMPION,
    t.HISTORY_TO_COMMIT,
    t.COMMIT_HISTORY,
    t.PUBLISH_SUCCEEDED,
    t.SUCCEEDED,
]


def _shared_run(world: World, tenant: str, *, served: bool) -> tuple[str, Any, Any]:
    """A ``shared`` run whose training job left an archive; ``served``: the shared endpoint can load it."""
    req = request(tenant, hosting="shared")
    name = f"{tenant}-support-1"
    plan = plan_run(req, execution_name=name, bucket=BUCKET, shared_endpoint=SHARED_ENDPOINT)
    assert plan.shared is not None
    source = plan.shared.copy_source_prefix.removeprefix(f"{BUCKET}/")
    job = f"{plan.training.job_base_name}-0-0"
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=BUCKET, Key=f"{source}{job}/output/model.tar.gz", Body=f"archive of {tenant}".encode()
    )
    endpoints = ServingEndpoints()
    if served:
        endpoints.add(shared_name(SHARED_ENDPOINT, plan.shared.target_model), model_version=tenant)
    moto_shims.update(invoke_endpoint=endpoints.invoke)
    try:
        world.mock(req, name, world.training_arn, {"Shared": _DATA_MOCKS})
        execution = world.start(world.training_arn, name, req.model_dump(mode="json"), "Shared")
        run = wait_for(world.client("stepfunctions"), execution, timeout_s=30)
    finally:
        endpoints.close()
    assert endpoints.invocations == 1  # the warm-up call, with the run's TargetModel
    return execution, run, plan


def test_shared_hosting_publishes_the_model_warms_it_and_records_the_route(world: World) -> None:
    execution, run, plan = _shared_run(world, "sharedok", served=True)
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert list(run.entered) == [*TRAINED, t.EVALUATE, t.DEPLOY_DECISION, *SHARED_DEPLOY]
    s3 = boto3.client("s3", region_name=REGION)
    published = s3.get_object(Bucket=BUCKET, Key=plan.shared.model_key)
    assert published["Body"].read() == b"archive of sharedok"
    assert published["ServerSideEncryption"] == "aws:kms"
    champion = ChampionRecord.model_validate_json(
        s3.get_object(Bucket=BUCKET, Key=plan.deploy.champion_key)["Body"].read()
    )
    assert (champion.hosting, champion.endpoint_name, champion.target_model) == (
        "shared",
        SHARED_ENDPOINT,
        plan.shared.target_model,
    )
    assert champion.model_name is None
    ((_, outcome),) = _outcomes(world, execution)
    assert (outcome.outcome, outcome.endpoint) == ("deployed", SHARED_ENDPOINT)
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    assert not [e for e in sagemaker.list_endpoints()["Endpoints"] if "sharedok" in e["EndpointName"]]


def test_a_model_the_shared_endpoint_cannot_serve_is_never_routed_to(world: World) -> None:
    execution, run, plan = _shared_run(world, "sharedbad", served=False)
    assert run.status == "FAILED"
    assert run.error == t.ERROR_DEPLOYMENT_FAILED
    assert plan.shared.target_model in (run.cause or "")
    assert t.WRITE_SHARED_CHAMPION not in run.entered
    s3 = boto3.client("s3", region_name=REGION)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=plan.deploy.champion_key)
    ((detail_type, _),) = _outcomes(world, execution)
    assert detail_type == events.RUN_FAILED
