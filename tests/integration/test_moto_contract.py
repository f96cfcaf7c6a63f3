"""The moto internals that convclass_local.moto_shims hooks into, pinned: fails loudly when moto moves them.

Each check names the internal and, for a replaced function, the shim module that replaces it; if one fails
after a moto upgrade, adapt that module (and only ``moto_shims``) or pin moto back to the version in
pyproject.toml.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import pkgutil
import time
from collections.abc import Iterator
from typing import Any

import boto3
import moto
import pytest
from moto import mock_aws

from convclass_local import moto_shims
from statemachine.history import ExecutionRecord, wait_for

pytestmark = pytest.mark.xdist_group("moto-contract")
logging.getLogger("moto").setLevel(logging.CRITICAL)

REGION = "eu-west-1"
ROLE = "arn:aws:iam::123456789012:role/states"
_SFN = "moto.stepfunctions.parser"
_SERVICE = f"{_SFN}.asl.component.state.exec.state_task.service"

#: Module of each function the shims replace (each shim module's PINNED holds their parameters).
REPLACED = {
    "LambdaFunction._invoke_lambda": "moto.awslambda.models",
    "state_task_service_for": f"{_SFN}.asl.component.state.exec.state_task.state_task_factory",
    "SageMakerModelBackend.create_training_job": "moto.sagemaker.models",
    "SageMakerRuntimeResponse.invoke_endpoint": "moto.sagemakerruntime.responses",
    "StepFunctionsParserBackend.start_execution": f"{_SFN}.models",
    "Execution._get_start_execution_worker": f"{_SFN}.backend.execution",
    "Environment.get_current_mocked_response": f"{_SFN}.asl.eval.environment",
    "WaitFunction._wait_interval": f"{_SFN}.asl.component.state.wait.wait_function.wait_function",
    "CallbackEndpoint.setup_heartbeat_endpoint": f"{_SFN}.asl.eval.callback.callback",
    "StepFunctionResponse.send_task_failure": "moto.stepfunctions.responses",
}
#: Other internals the shims read, extend or subclass.
USED = [
    (f"{_SFN}.asl.component.common.retry.retrier_decl", "time.sleep"),
    (f"{_SERVICE}.state_task_service_callback", "_DELAY_SECONDS_SYNC_CONDITION_CHECK"),
    (f"{_SERVICE}.state_task_service_callback", "StateTaskServiceCallback._build_sync_resolver"),
    (f"{_SERVICE}.state_task_service", "StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES"),
    (f"{_SERVICE}.state_task_service_aws_sdk", "_SERVICE_ERROR_NAMES"),
    (f"{_SERVICE}.state_task_service_aws_sdk", "StateTaskServiceAwsSdk._eval_service_task"),
    (f"{_SFN}.mocking.mock_config", "MockedResponseReturn"),
    (f"{_SFN}.mocking.mock_config", "MockedResponseThrow"),
    (f"{_SFN}.mocking.mock_config", "StateMockedResponses"),
    (f"{_SFN}.mocking.mock_config", "MockTestCase"),
    (
        f"{_SFN}.asl.component.common.error_name.states_error_name_type",
        "StatesErrorNameType.StatesTaskFailed",
    ),
    ("moto.sagemaker.models", "FakeEndpoint._process_production_variants"),
]


def _pinned_by_shims() -> list[tuple[str, str]]:
    """(replaced function, module of moto_shims that replaces it: the one to adapt when moto moves it)."""
    found: list[tuple[str, str]] = []
    for info in pkgutil.iter_modules(moto_shims.__path__):
        module = importlib.import_module(f"{moto_shims.__name__}.{info.name}")
        found.extend((name, module.__name__) for name in getattr(module, "PINNED", {}))
    return found


PINNED_BY_SHIMS = _pinned_by_shims()
SHIM_OF = dict(PINNED_BY_SHIMS)


def test_every_replaced_function_is_pinned_here_and_by_exactly_one_shim() -> None:
    replaced_by_shims = sorted(name for name, _ in PINNED_BY_SHIMS)
    assert replaced_by_shims == sorted(REPLACED) == sorted(moto_shims.PINNED_SIGNATURES)


def _resolve(module: str, dotted: str) -> Any:
    value: Any = importlib.import_module(module)
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


@pytest.mark.parametrize("name", sorted(REPLACED))
def test_replaced_function_keeps_its_parameters(name: str) -> None:
    try:
        function = moto_shims.originals.get(name) or _resolve(REPLACED[name], name)
    except (ImportError, AttributeError) as exc:
        pytest.fail(
            f"moto {moto.__version__}: {REPLACED[name]}.{name} moved ({exc}); {SHIM_OF[name]} must follow"
        )
    assert list(inspect.signature(function).parameters) == moto_shims.PINNED_SIGNATURES[name], (
        f"moto {moto.__version__} changed {name}; {SHIM_OF[name]} must follow"
    )


@pytest.mark.parametrize(("module", "attribute"), USED, ids=[u[1] for u in USED])
def test_used_internal_still_exists(module: str, attribute: str) -> None:
    try:
        _resolve(module, attribute)
    except (ImportError, AttributeError) as exc:
        pytest.fail(f"moto {moto.__version__}: {module}.{attribute} moved ({exc}); moto_shims must follow")


def test_mocked_responses_keep_their_constructor() -> None:
    mock_config = importlib.import_module(f"{_SFN}.mocking.mock_config")
    expected = {
        "MockedResponseReturn": ["self", "range_start", "range_end", "payload"],
        "MockedResponseThrow": ["self", "range_start", "range_end", "error", "cause"],
        "StateMockedResponses": ["self", "state_name", "mocked_response_name", "mocked_responses"],
        "MockTestCase": ["self", "state_machine_name", "test_case_name", "state_mocked_responses_list"],
    }
    for name, parameters in expected.items():
        assert list(inspect.signature(getattr(mock_config, name).__init__).parameters) == parameters, name


def test_sagemaker_is_still_unsupported_by_the_engine_itself() -> None:
    """If moto learns SageMaker .sync, the shim may be dropped; until then it must stay."""
    factory = importlib.import_module(f"{_SERVICE}.state_task_service_factory")
    names = factory._UNSUPPORTED_SERVICE_NAMES
    assert "sagemaker" in names


def test_mock_config_loader_is_still_unwired() -> None:
    loader = importlib.import_module(f"{_SFN}.mocking.mock_config").load_mock_test_case_for
    assert loader("any", "case") is None


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch, fake_aws_credentials: None) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        moto_shims.installed(moto_shims.EngineHooks(time_scale=0.0001, sync_poll_seconds=0.005)),
    ):
        yield boto3.client("stepfunctions", region_name=REGION)


def _run(
    sfn: Any, definition: dict[str, Any], payload: Any = None, case: str | None = None
) -> ExecutionRecord:
    name = f"m{time.monotonic_ns()}"
    arn = sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)[
        "stateMachineArn"
    ]
    target = f"{arn}#{case}" if case else arn
    execution = sfn.start_execution(stateMachineArn=target, name="run", input=json.dumps(payload or {}))
    return wait_for(sfn, execution["executionArn"], timeout_s=20)


def test_lambda_runs_in_process_and_its_errors_are_named(engine: Any) -> None:
    calls: list[moto_shims.LambdaInvocation] = []

    def dispatch(invocation: moto_shims.LambdaInvocation) -> tuple[str, bool]:
        calls.append(invocation)
        if invocation.event.get("fail"):
            return json.dumps({"errorType": "InsufficientData", "errorMessage": "too few"}), True
        return json.dumps({"doubled": invocation.event["n"] * 2}), False

    moto_shims.update(lambda_dispatch=dispatch)
    lam = boto3.client("lambda", region_name=REGION)
    role = boto3.client("iam", region_name=REGION).create_role(RoleName="fn", AssumeRolePolicyDocument="{}")
    arn = lam.create_function(
        FunctionName="fn",
        Runtime="python3.12",
        Role=role["Role"]["Arn"],
        Handler="pkg.mod.handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\0" * 18},
    )["FunctionArn"]
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": arn, "Payload.$": "$"},
        "ResultSelector": {"r.$": "$.Payload"},
        "Catch": [{"ErrorEquals": ["InsufficientData"], "Next": "Caught"}],
        "End": True,
    }
    definition = {"StartAt": "T", "States": {"T": task, "Caught": {"Type": "Pass", "End": True}}}

    ok = _run(engine, definition, {"n": 21})
    failed = _run(engine, definition, {"n": 1, "fail": True})
    assert (ok.status, ok.output) == ("SUCCEEDED", {"r": {"doubled": 42}})
    assert (failed.status, failed.entered) == ("SUCCEEDED", ("T", "Caught"))
    assert calls[0].handler == "pkg.mod.handler"
    assert calls[0].function_name == "fn"


def test_training_sync_follows_the_runner(engine: Any) -> None:
    outcomes = iter([("Completed", ""), ("Failed", "AlgorithmError: boom")])

    class Outcome:
        def __init__(self, status: str, reason: str) -> None:
            self.status, self.failure_reason, self.model_artifacts = status, reason, "s3://b/model.tar.gz"

    moto_shims.update(training_runner=lambda request: Outcome(*next(outcomes)))
    train = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
        "Parameters": {
            "TrainingJobName.$": "$.name",
            "RoleArn": ROLE,
            "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
            "OutputDataConfig": {"S3OutputPath": "s3://b/out/"},
            "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 60},
        },
        "ResultSelector": {
            "artifacts.$": "$.ModelArtifacts.S3ModelArtifacts",
            "status.$": "$.TrainingJobStatus",
        },
        "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "Failed"}],
        "End": True,
    }
    definition = {"StartAt": "Train", "States": {"Train": train, "Failed": {"Type": "Pass", "End": True}}}

    done = _run(engine, definition, {"name": "job-a"})
    failed = _run(engine, definition, {"name": "job-b"})
    assert done.output == {"artifacts": "s3://b/model.tar.gz", "status": "Completed"}
    assert failed.entered == ("Train", "Failed")
    assert '"FailureReason":"AlgorithmError: boom"' in failed.output["Cause"]


def test_mock_config_answers_by_invocation_and_time_is_compressed(engine: Any) -> None:
    definition = {
        "StartAt": "Init",
        "States": {
            "Init": {"Type": "Pass", "Result": {"n": 0}, "ResultPath": "$.loop", "Next": "Nap"},
            "Nap": {"Type": "Wait", "Seconds": 3600, "Next": "Ask"},
            "Ask": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:s3:listBuckets",
                "ResultPath": "$.answer",
                "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 600, "MaxAttempts": 2}],
                "Next": "Done?",
            },
            "Done?": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.answer.ready", "BooleanEquals": True, "Next": "End"}],
                "Default": "Nap",
            },
            "End": {"Type": "Succeed"},
        },
    }
    config = {
        "StateMachines": {},
        "MockedResponses": {
            "Sequence": {
                "0": {"Throw": {"Error": "Flaky", "Cause": "first call fails"}},
                "1-2": {"Return": {"ready": False}},
                "3": {"Return": {"ready": True}},
            }
        },
    }
    name = "mocked"
    config["StateMachines"][name] = {"TestCases": {"Loop": {"Ask": "Sequence"}}}
    moto_shims.update(mock_config=moto_shims.MockConfig(config))
    arn = engine.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)[
        "stateMachineArn"
    ]
    execution = engine.start_execution(stateMachineArn=f"{arn}#Loop", name="run")["executionArn"]
    run = wait_for(engine, execution, timeout_s=20)  # 3 waits of an hour and a 10-minute back-off

    assert run.status == "SUCCEEDED"
    assert run.entered.count("Ask") == 3  # retry (invocations 0, 1), then loop turns (2, 3)


def test_endpoint_update_and_invocation_hooks(engine: Any) -> None:
    moto_shims.update(invoke_endpoint=lambda request: moto_shims.EndpointReply(request.body[::-1]))
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sagemaker.create_model(ModelName="m", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "img"})
    for config in ("c1", "c2"):
        sagemaker.create_endpoint_config(
            EndpointConfigName=config,
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "m",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
    sagemaker.create_endpoint(EndpointName="e", EndpointConfigName="c1")
    sagemaker.update_endpoint(EndpointName="e", EndpointConfigName="c2")
    assert sagemaker.describe_endpoint(EndpointName="e")["EndpointConfigName"] == "c2"

    runtime = boto3.client("sagemaker-runtime", region_name=REGION)
    assert runtime.invoke_endpoint(EndpointName="e", Body=b"abc")["Body"].read() == b"cba"

    def broken(request: moto_shims.EndpointRequest) -> moto_shims.EndpointReply:
        raise moto_shims.EndpointError("ModelError", "no")

    moto_shims.update(invoke_endpoint=broken)
    with pytest.raises(runtime.exceptions.ModelError):
        runtime.invoke_endpoint(EndpointName="e", Body=b"abc")


def test_an_answer_before_the_heartbeat_wait_still_wakes_the_task(engine: Any) -> None:
    """moto sends a callback task's request before it arms the heartbeat wait: a fast answer is kept."""
    callback = importlib.import_module(f"{_SFN}.asl.eval.callback.callback")
    answered = callback.CallbackEndpoint("token")
    answered.notify(callback.CallbackOutcomeSuccess(callback_id="token", output="{}"))
    assert answered.setup_heartbeat_endpoint(heartbeat_seconds=60).clear_and_wait() is True

    unanswered = callback.CallbackEndpoint("other")
    heartbeat = unanswered.setup_heartbeat_endpoint(heartbeat_seconds=1)
    assert heartbeat.clear_and_wait() is False  # nothing arrived: the heartbeat still lapses

    armed_by_moto = callback.CallbackEndpoint("raw")
    armed_by_moto.notify(callback.CallbackOutcomeSuccess(callback_id="raw", output="{}"))
    original = moto_shims.originals["CallbackEndpoint.setup_heartbeat_endpoint"]
    assert original(armed_by_moto, heartbeat_seconds=1).clear_and_wait() is False  # the race the shim closes
