"""The one place that reaches into moto's internals, so convclass's real workflows run on its engine.

moto 5.2.5 executes Step Functions definitions but leaves gaps that matter here; each shim below closes one,
through the narrowest hook found, and defers to moto whenever its hook is unset:

* **Lambda in process** — ``LambdaFunction._invoke_lambda`` (every invoke path) calls
  ``EngineHooks.lambda_dispatch`` instead of Docker.
* **SageMaker in the engine** — the ``sagemaker`` optimised integration (request-response and
  ``createTrainingJob.sync``, which moto rejects as an unsupported procedure); ``UpdateEndpoint`` (not
  implemented); training jobs run by ``EngineHooks.training_runner`` (default: moto's, Completed at once).
* **aws-sdk calls** — responses made JSON (timestamps as ISO text) and a JSON ``Body`` sent as text, as Step
  Functions does; moto keeps ``datetime`` objects (they break ``States.JsonToString`` and DescribeExecution)
  and cannot send a JSON object as an S3 body.
* **InvokeEndpoint** — ``aws-sdk:sagemakerruntime`` resolves to boto3's ``sagemaker-runtime`` and requests go
  to ``EngineHooks.invoke_endpoint`` (default: moto's canned answer).
* **Mocked service responses** in the Step Functions Local mock-config format: start an execution on
  ``stateMachineArn#TestCase`` and the test case's responses replace the named states' service calls. A
  state's n-th invocation in the execution (retries and loop turns alike) takes response ``n``.
* **Task failures keep their cause** — ``SendTaskFailure``'s ``cause`` reaches the failed task (moto's
  response handler drops it), so a Catch sees ``{Error, Cause}`` as on Step Functions.
* **Time** — Wait states and retry back-off sleep ``time_scale`` × their seconds; ``.sync`` polls every
  ``sync_poll_seconds``.

``install()`` patches once per process and swaps hooks atomically; ``tests/integration/test_moto_contract.py``
fails loudly when a hooked internal moves in another moto release.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import inspect
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_aws_sdk as _aws_sdk_module,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_callback as _callback_module,
)
from moto.stepfunctions.parser.mocking.mock_config import MockTestCase, StateMockedResponses

from convclass_local import redrive


def _moto(module: str, name: str | None = None) -> Any:
    """A moto internal, typed ``Any``: these are exactly the attributes the contract test pins."""
    loaded = importlib.import_module(f"moto.{module}")
    return loaded if name is None else getattr(loaded, name)


_SFN = "stepfunctions.parser"
_TASK = f"{_SFN}.asl.component.state.exec.state_task"
_SERVICE = f"{_TASK}.service"

LambdaFunction = _moto("awslambda.models", "LambdaFunction")
SageMakerModelBackend = _moto("sagemaker.models", "SageMakerModelBackend")
SageMakerResponse = _moto("sagemaker.responses", "SageMakerResponse")
SageMakerRuntimeResponse = _moto("sagemakerruntime.responses", "SageMakerRuntimeResponse")
CustomErrorName = _moto(f"{_SFN}.asl.component.common.error_name.custom_error_name", "CustomErrorName")
StatesErrorName = _moto(f"{_SFN}.asl.component.common.error_name.states_error_name", "StatesErrorName")
StatesErrorNameType = _moto(
    f"{_SFN}.asl.component.common.error_name.states_error_name_type", "StatesErrorNameType"
)
FailureEvent = _moto(f"{_SFN}.asl.component.common.error_name.failure_event", "FailureEvent")
FailureEventException = _moto(
    f"{_SFN}.asl.component.common.error_name.failure_event", "FailureEventException"
)
retrier_decl = _moto(f"{_SFN}.asl.component.common.retry.retrier_decl")
state_task_factory = _moto(f"{_TASK}.state_task_factory")
state_task_service_aws_sdk = _moto(f"{_SERVICE}.state_task_service_aws_sdk")
state_task_service_callback = _moto(f"{_SERVICE}.state_task_service_callback")
ResourceCondition = _moto(f"{_SERVICE}.resource", "ResourceCondition")
StateTaskService = _moto(f"{_SERVICE}.state_task_service", "StateTaskService")
WaitFunction = _moto(f"{_SFN}.asl.component.state.wait.wait_function.wait_function", "WaitFunction")
CallbackEndpoint = _moto(f"{_SFN}.asl.eval.callback.callback", "CallbackEndpoint")
Environment = _moto(f"{_SFN}.asl.eval.environment", "Environment")
EventDetails = _moto(f"{_SFN}.asl.eval.event.event_detail", "EventDetails")
boto_client_for = _moto(f"{_SFN}.asl.utils.boto_client", "boto_client_for")
Execution = _moto(f"{_SFN}.backend.execution", "Execution")
_mock_config = _moto(f"{_SFN}.mocking.mock_config")
MockedResponseReturn = _mock_config.MockedResponseReturn
MockedResponseThrow = _mock_config.MockedResponseThrow
StepFunctionsParserBackend = _moto(f"{_SFN}.models", "StepFunctionsParserBackend")
StepFunctionResponse = _moto("stepfunctions.responses", "StepFunctionResponse")
EmptyResult = _moto("core.responses", "EmptyResult")
HistoryEventType = _moto(f"{_SFN}.api", "HistoryEventType")
TaskFailedEventDetails = _moto(f"{_SFN}.api", "TaskFailedEventDetails")
#: moto's mocked-response type (a response to return, or an error to throw).
MockedResponse = Any

# --------------------------------------------------------------------------------------------------- hooks


@dataclass(frozen=True)
class LambdaInvocation:
    """One synchronous Lambda invoke, as the function's configuration describes it."""

    function_name: str
    function_arn: str
    #: ``Handler`` of a zip function, or the first word of ``ImageConfig.Command`` of an image function.
    handler: str
    event: Any
    environment: Mapping[str, str]
    memory_mb: int
    timeout_s: float


#: Returns (JSON payload, errored) like Lambda's Invoke; an errored payload is the runtime's error document.
LambdaDispatch = Callable[[LambdaInvocation], tuple[str, bool]]


class TrainingOutcomeLike(Protocol):
    """What a finished training job reports (SageMaker's TrainingJobStatus, FailureReason, model
    artifacts)."""

    status: str
    failure_reason: str
    model_artifacts: str


#: Runs one job from its CreateTrainingJob request (boto3 parameter names); blocks until the job ends.
TrainingRunner = Callable[[Mapping[str, Any]], TrainingOutcomeLike]


@dataclass(frozen=True)
class EndpointRequest:
    endpoint_name: str
    body: bytes
    content_type: str
    accept: str
    #: InvokeEndpoint's ``TargetModel`` (multi-model endpoints), or None.
    target_model: str | None = None


@dataclass(frozen=True)
class EndpointReply:
    body: bytes
    content_type: str = "application/json"


class EndpointError(Exception):
    """Raised by an endpoint invoker: surfaces as the sagemaker-runtime error ``code`` (e.g.
    ``ModelError``)."""

    def __init__(self, code: str, message: str, status: int = 424) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


EndpointInvoker = Callable[[EndpointRequest], EndpointReply]


def container_answer(status: int, body: bytes, content_type: str) -> EndpointReply:
    """A serving container's HTTP answer as InvokeEndpoint returns it: the body on 2xx, otherwise SageMaker's
    ``ModelError`` (424), whose message names the container's status as a client (4xx) or server (5xx)
    error."""
    if status < 300:
        return EndpointReply(body=body, content_type=content_type)
    kind = "client" if status < 500 else "server"
    message = f'Received {kind} error ({status}) from primary with message "{body.decode(errors="replace")}"'
    raise EndpointError("ModelError", message, 424)


@dataclass(frozen=True)
class MockConfig:
    """A Step Functions Local mock configuration (``SFN_MOCK_CONFIG`` format)."""

    raw: Mapping[str, Any]

    @classmethod
    def load(cls, path: str | Path) -> MockConfig:
        return cls(json.loads(Path(path).read_text()))

    def test_case(self, state_machine_name: str, test_case_name: str) -> MockTestCase:
        machines = self.raw.get("StateMachines", {})
        cases = machines.get(state_machine_name, {}).get("TestCases", {})
        if test_case_name not in cases:
            raise ValueError(
                f"mock config has no test case {test_case_name!r} for state machine {state_machine_name!r}"
            )
        responses = self.raw.get("MockedResponses", {})
        per_state = []
        for state_name, response_name in cases[test_case_name].items():
            if response_name not in responses:
                raise ValueError(f"mock config has no mocked response {response_name!r}")
            per_state.append(
                StateMockedResponses(
                    state_name=state_name,
                    mocked_response_name=response_name,
                    mocked_responses=[
                        _mocked_response(key, value) for key, value in responses[response_name].items()
                    ],
                )
            )
        return _CountingTestCase(state_machine_name, test_case_name, per_state)


@dataclass(frozen=True)
class EngineHooks:
    """What the shims call; ``None`` leaves moto's own behaviour in place."""

    lambda_dispatch: LambdaDispatch | None = None
    training_runner: TrainingRunner | None = None
    invoke_endpoint: EndpointInvoker | None = None
    mock_config: MockConfig | None = None
    #: Wait states and retry intervals last ``time_scale`` × their seconds (1.0 = real time).
    time_scale: float = 1.0
    sync_poll_seconds: float = 0.5


_hooks = EngineHooks()
_installed = False
_install_lock = threading.Lock()
_pending_test_case = threading.local()
_training_threads: list[threading.Thread] = []


def install(hooks: EngineHooks) -> None:
    """Patch moto (once per process) and make ``hooks`` the active ones."""
    global _hooks, _installed
    with _install_lock:
        _hooks = hooks
        if not _installed:
            redrive.install()
            _patch()
            _installed = True
        state_task_service_callback._DELAY_SECONDS_SYNC_CONDITION_CHECK = hooks.sync_poll_seconds


def current() -> EngineHooks:
    return _hooks


@contextlib.contextmanager
def installed(hooks: EngineHooks) -> Iterator[EngineHooks]:
    """``install(hooks)`` for a block; the previous hooks come back afterwards."""
    previous = _hooks
    install(hooks)
    try:
        yield hooks
    finally:
        install(previous)


def update(**changes: Any) -> EngineHooks:
    """Replace some hooks of the active set (e.g. plug the serving app in once it runs)."""
    hooks = replace(_hooks, **changes)
    install(hooks)
    return hooks


def join_training_jobs(timeout_s: float = 30.0) -> None:
    """Wait for jobs started through ``training_runner`` (a clean shutdown leaves none running)."""
    deadline = time.monotonic() + timeout_s
    for thread in list(_training_threads):
        thread.join(max(0.0, deadline - time.monotonic()))


# --------------------------------------------------------------------------------------------------- patches

_SERVICE_NAME_OVERRIDES = {"sagemakerruntime": "sagemaker-runtime"}
_SERVICE_ERROR_NAMES = {"sagemakerruntime": "SageMakerRuntime", "sagemaker": "SageMaker", "s3": "S3"}


#: Parameters of every moto function the shims replace, as moto 5.2.5 defines them.
PINNED_SIGNATURES: dict[str, list[str]] = {
    "LambdaFunction._invoke_lambda": ["self", "event"],
    "state_task_service_for": ["service_name"],
    "SageMakerModelBackend.create_training_job": [
        "self",
        "training_job_name",
        "hyper_parameters",
        "algorithm_specification",
        "role_arn",
        "input_data_config",
        "output_data_config",
        "resource_config",
        "vpc_config",
        "stopping_condition",
        "tags",
        "enable_network_isolation",
        "enable_inter_container_traffic_encryption",
        "enable_managed_spot_training",
        "checkpoint_config",
        "debug_hook_config",
        "debug_rule_configurations",
        "tensor_board_output_config",
        "experiment_config",
    ],
    "SageMakerRuntimeResponse.invoke_endpoint": ["self"],
    "StepFunctionsParserBackend.start_execution": [
        "self",
        "state_machine_arn",
        "name",
        "execution_input",
        "trace_header",
    ],
    "Execution._get_start_execution_worker": ["self"],
    "Environment.get_current_mocked_response": ["self"],
    "WaitFunction._wait_interval": ["self", "env", "wait_seconds"],
    "CallbackEndpoint.setup_heartbeat_endpoint": ["self", "heartbeat_seconds"],
    "StepFunctionResponse.send_task_failure": ["self"],
}
#: moto's own functions, kept when the shims replace them (the contract test checks these).
originals: dict[str, Callable[..., Any]] = {}


def _pinned(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse to patch a moto function whose parameters changed: the shim would misbehave silently."""
    found = list(inspect.signature(function).parameters)
    if found != PINNED_SIGNATURES[name]:
        raise RuntimeError(
            f"moto internals moved: {name}{found} != {PINNED_SIGNATURES[name]}; update moto_shims"
        )
    originals[name] = function
    return function


def _patch() -> None:
    original_invoke = _pinned("LambdaFunction._invoke_lambda", LambdaFunction._invoke_lambda)
    original_service_for = _pinned("state_task_service_for", state_task_factory.state_task_service_for)
    original_create_training_job = _pinned(
        "SageMakerModelBackend.create_training_job", SageMakerModelBackend.create_training_job
    )
    original_invoke_endpoint = _pinned(
        "SageMakerRuntimeResponse.invoke_endpoint", SageMakerRuntimeResponse.invoke_endpoint
    )
    original_start_execution = _pinned(
        "StepFunctionsParserBackend.start_execution", StepFunctionsParserBackend.start_execution
    )
    original_worker = _pinned("Execution._get_start_execution_worker", Execution._get_start_execution_worker)
    original_mocked_response = _pinned(
        "Environment.get_current_mocked_response", Environment.get_current_mocked_response
    )
    original_wait = _pinned("WaitFunction._wait_interval", WaitFunction._wait_interval)
    original_heartbeat = _pinned(
        "CallbackEndpoint.setup_heartbeat_endpoint", CallbackEndpoint.setup_heartbeat_endpoint
    )
    original_task_failure = _pinned(
        "StepFunctionResponse.send_task_failure", StepFunctionResponse.send_task_failure
    )

    def invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        dispatch = _hooks.lambda_dispatch
        if dispatch is None:
            return original_invoke(self, event)  # type: ignore[no-any-return]
        command = list(getattr(self.image_config, "cmd", None) or [])
        payload, errored = dispatch(
            LambdaInvocation(
                function_name=self.function_name,
                function_arn=self.function_arn,
                handler=str(command[0] if command else self.handler),
                event=event if event is not None else {},
                environment=dict(self.environment_vars or {}),
                memory_mb=int(self.memory_size),
                timeout_s=float(self.timeout),
            )
        )
        return payload, errored, ""

    def service_for(service_name: str) -> Any:
        if service_name == "sagemaker":
            return _SageMakerTaskService()
        if service_name == "aws-sdk":
            return _AwsSdkTaskService()  # type: ignore[no-untyped-call]
        return original_service_for(service_name)

    def create_training_job(self: Any, training_job_name: str, **kwargs: Any) -> Any:
        # moto rewrites parts of the request (e.g. MetricDefinitions): the runner gets what was asked for.
        request = copy.deepcopy(_training_request(training_job_name, kwargs))
        job = original_create_training_job(self, training_job_name, **kwargs)
        runner = _hooks.training_runner
        if runner is not None:
            job.training_job_status = job.secondary_status = "InProgress"
            thread = threading.Thread(target=_run_training, args=(job, runner, request), daemon=True)
            _training_threads.append(thread)
            thread.start()
        return job

    def invoke_endpoint(self: Any) -> Any:
        invoker = _hooks.invoke_endpoint
        if invoker is None:
            return original_invoke_endpoint(self)
        body = self.body if isinstance(self.body, bytes) else str(self.body or "").encode()
        request = EndpointRequest(
            endpoint_name=str(self._get_params().get("EndpointName") or self.path.split("/")[2]),
            body=body,
            content_type=str(self.headers.get("Content-Type", "application/json")),
            accept=str(self.headers.get("Accept", "application/json")),
            target_model=self.headers.get("X-Amzn-SageMaker-Target-Model"),
        )
        try:
            reply = invoker(request)
        except EndpointError as exc:
            error = json.dumps({"message": exc.message})
            headers = {
                "status": str(exc.status),
                "x-amzn-ErrorType": exc.code,
                "Content-Type": "application/json",
            }
            return exc.status, headers, error
        return 200, {"Content-Type": reply.content_type}, reply.body

    def update_endpoint(self: Any) -> Any:
        action_result = _moto("core.responses", "ActionResult")
        arn = _update_endpoint(
            self.sagemaker_backend, self._get_param("EndpointName"), self._get_param("EndpointConfigName")
        )
        return action_result({"EndpointArn": arn})

    def start_execution(self: Any, state_machine_arn: str, *args: Any, **kwargs: Any) -> Any:
        base_arn, _, case_name = state_machine_arn.partition("#")
        if not case_name:
            return original_start_execution(self, state_machine_arn, *args, **kwargs)
        config = _hooks.mock_config
        if config is None:
            raise ValueError("a #TestCase execution needs EngineHooks.mock_config")
        _pending_test_case.value = config.test_case(base_arn.rsplit(":", 1)[-1], case_name)
        try:
            return original_start_execution(self, base_arn, *args, **kwargs)
        finally:
            _pending_test_case.value = None

    def start_execution_worker(self: Any) -> Any:
        worker = original_worker(self)
        case = getattr(_pending_test_case, "value", None)
        if case is not None:
            worker._mock_test_case = case
        return worker

    def get_current_mocked_response(self: Any) -> MockedResponse:
        case = self.mock_test_case
        if isinstance(case, _CountingTestCase):
            return case.next_response(self.next_state_name)
        return original_mocked_response(self)

    def wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        if _hooks.time_scale == 1.0:
            original_wait(self, env, wait_seconds)
        elif wait_seconds > 0:
            env.program_state_event.wait(wait_seconds * _hooks.time_scale)

    def setup_heartbeat_endpoint(self: Any, heartbeat_seconds: int) -> Any:
        # moto sends a callback task's request before it sets up the heartbeat wait: an answer that arrives in
        # between (an approver faster than the engine) is stored but never wakes the waiter, and the execution
        # hangs until the heartbeat lapses. Step Functions honours such an answer, so wake the waiter at once.
        endpoint = original_heartbeat(self, heartbeat_seconds)
        if self.get_outcome() is not None:
            endpoint.notify()
        return endpoint

    def send_task_failure(self: Any) -> Any:
        backend = self.stepfunction_backend
        if not isinstance(backend, StepFunctionsParserBackend):
            return original_task_failure(self)
        backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
        )
        return EmptyResult()

    LambdaFunction._invoke_lambda = invoke_lambda
    StepFunctionResponse.send_task_failure = send_task_failure
    CallbackEndpoint.setup_heartbeat_endpoint = setup_heartbeat_endpoint
    state_task_factory.state_task_service_for = service_for
    SageMakerModelBackend.create_training_job = create_training_job
    SageMakerModelBackend.update_endpoint = _update_endpoint
    SageMakerResponse.update_endpoint = update_endpoint
    SageMakerRuntimeResponse.invoke_endpoint = invoke_endpoint
    StepFunctionsParserBackend.start_execution = start_execution
    Execution._get_start_execution_worker = start_execution_worker
    Environment.get_current_mocked_response = get_current_mocked_response
    WaitFunction._wait_interval = wait_interval
    retrier_decl.time = _ScaledClock()
    StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES.update(_SERVICE_NAME_OVERRIDES)
    state_task_service_aws_sdk._SERVICE_ERROR_NAMES.update(_SERVICE_ERROR_NAMES)


class _ScaledClock:
    """Stands in for the ``time`` module inside moto's retrier, which only sleeps between attempts."""

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(seconds * _hooks.time_scale)


# ------------------------------------------------------------------------------------------- mock config


def _mocked_response(range_key: str, value: Mapping[str, Any]) -> MockedResponse:
    start_text, _, end_text = range_key.partition("-")
    start = int(start_text)
    end = int(end_text) if end_text else start
    if "Return" in value:
        return MockedResponseReturn(start, end, value["Return"])
    throw = value["Throw"]
    return MockedResponseThrow(start, end, throw["Error"], throw.get("Cause", ""))


class _CountingTestCase(MockTestCase):
    """A test case that hands each state its responses in invocation order."""

    def __init__(
        self, state_machine_name: str, test_case_name: str, states: list[StateMockedResponses]
    ) -> None:
        super().__init__(state_machine_name, test_case_name, states)
        self._lock = threading.Lock()
        self._invocations: dict[str, int] = {}

    def next_response(self, state_name: str) -> MockedResponse:
        with self._lock:
            index = self._invocations.get(state_name, 0)
            self._invocations[state_name] = index + 1
        responses = self.state_mocked_responses[state_name].mocked_responses
        if index >= len(responses):
            raise RuntimeError(f"mock config: no response for invocation {index} of state {state_name!r}")
        return responses[index]


# ---------------------------------------------------------------------------------------------- SageMaker

_TRAINING_REQUEST_KEYS = {
    "hyper_parameters": "HyperParameters",
    "algorithm_specification": "AlgorithmSpecification",
    "role_arn": "RoleArn",
    "input_data_config": "InputDataConfig",
    "output_data_config": "OutputDataConfig",
    "resource_config": "ResourceConfig",
    "vpc_config": "VpcConfig",
    "stopping_condition": "StoppingCondition",
    "tags": "Tags",
    "enable_network_isolation": "EnableNetworkIsolation",
    "enable_inter_container_traffic_encryption": "EnableInterContainerTrafficEncryption",
    "enable_managed_spot_training": "EnableManagedSpotTraining",
    "checkpoint_config": "CheckpointConfig",
}


def _training_request(name: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    request = {
        _TRAINING_REQUEST_KEYS[k]: v
        for k, v in kwargs.items()
        if k in _TRAINING_REQUEST_KEYS and v is not None
    }
    request["TrainingJobName"] = name
    return request


def _run_training(job: Any, runner: TrainingRunner, request: Mapping[str, Any]) -> None:
    try:
        outcome = runner(request)
        status, reason, artifacts = outcome.status, outcome.failure_reason, outcome.model_artifacts
    except Exception as exc:  # a broken runner fails the job the way SageMaker reports an internal error
        status, reason, artifacts = "Failed", f"InternalServerError: {type(exc).__name__}: {exc}", ""
    if artifacts:
        job.model_artifacts = {"S3ModelArtifacts": artifacts}
    if reason:
        job.failure_reason = reason
    job.secondary_status = status
    job.training_job_status = status


def _update_endpoint(backend: Any, endpoint_name: str, endpoint_config_name: str) -> str:
    """UpdateEndpoint: the endpoint now serves ``endpoint_config_name`` (a local update cannot fail)."""
    validation_error = _moto("sagemaker.exceptions", "ValidationError")
    endpoint = backend.endpoints.get(endpoint_name)
    if endpoint is None:
        raise validation_error(message=f"Could not find endpoint '{endpoint_name}'.")
    config = backend.describe_endpoint_config(endpoint_config_name)
    endpoint.endpoint_config_name = endpoint_config_name
    endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
    endpoint.endpoint_status = "InService"
    return str(endpoint.arn)


class _SageMakerTaskService(_callback_module.StateTaskServiceCallback):
    """The ``arn:aws:states:::sagemaker:*`` integration: request-response calls and
    ``createTrainingJob.sync``."""

    _TERMINAL = frozenset({"Completed", "Failed", "Stopped"})

    def __init__(self) -> None:
        super().__init__(
            supported_integration_patterns={ResourceCondition.WaitForTaskToken, ResourceCondition.Sync}
        )

    def _validate_service_integration_is_supported(self) -> None:
        """Every SageMaker action is forwarded to the backend; unknown ones fail at run time as on AWS."""

    def _client(self, resource_runtime_part: Any, state_credentials: Any) -> Any:
        return boto_client_for(
            service="sagemaker", region=resource_runtime_part.region, state_credentials=state_credentials
        )

    def _eval_service_task(
        self,
        env: Any,
        resource_runtime_part: Any,
        normalised_parameters: dict[str, Any],
        state_credentials: Any,
    ) -> None:
        client = self._client(resource_runtime_part, state_credentials)
        response = getattr(client, self._get_boto_service_action())(**normalised_parameters) or {}
        response.pop("ResponseMetadata", None)
        env.stack.append(_json_safe(response))

    def _from_error(self, env: Any, ex: Exception) -> Any:
        from botocore.exceptions import ClientError

        if isinstance(ex, ClientError):
            # The optimised integration reports every service error under one name; the cause says which.
            error = "SageMaker.AmazonSageMakerException"
            cause = f"{ex.response['Error'].get('Code', '')}: {ex.response['Error'].get('Message', '')}"
            return FailureEvent(
                env=env,
                error_name=CustomErrorName(error),
                event_type=HistoryEventType.TaskFailed,
                event_details=EventDetails(
                    taskFailedEventDetails=TaskFailedEventDetails(
                        error=error,
                        cause=cause,
                        resource=self._get_sfn_resource(),
                        resourceType=self._get_sfn_resource_type(),
                    )
                ),
            )
        return super()._from_error(env=env, ex=ex)

    def _build_sync_resolver(
        self,
        env: Any,
        resource_runtime_part: Any,
        normalised_parameters: dict[str, Any],
        state_credentials: Any,
    ) -> Callable[[], Any] | None:
        if self._get_boto_service_action() != "create_training_job":
            return super()._build_sync_resolver(
                env, resource_runtime_part, normalised_parameters, state_credentials
            )
        client = self._client(resource_runtime_part, state_credentials)
        env.stack.pop()  # the CreateTrainingJob response; the job's description replaces it
        name = normalised_parameters["TrainingJobName"]

        def resolve() -> dict[str, Any] | None:
            description = client.describe_training_job(TrainingJobName=name)
            description.pop("ResponseMetadata", None)
            status = description.get("TrainingJobStatus")
            if status not in self._TERMINAL:
                return None
            safe: dict[str, Any] = _json_safe(description)
            if status == "Completed":
                return safe
            raise FailureEventException(
                FailureEvent(
                    env=env,
                    error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                    event_type=HistoryEventType.TaskFailed,
                    event_details=EventDetails(
                        taskFailedEventDetails=TaskFailedEventDetails(
                            error="States.TaskFailed",
                            cause=json.dumps(safe, separators=(",", ":")),
                            resource=self._get_sfn_resource(),
                            resourceType=self._get_sfn_resource_type(),
                        )
                    ),
                )
            )

        return resolve


class _AwsSdkTaskService(_aws_sdk_module.StateTaskServiceAwsSdk):
    """moto's aws-sdk integration, with responses made JSON as Step Functions does (timestamps as text)."""

    def _eval_service_task(
        self,
        env: Any,
        resource_runtime_part: Any,
        normalised_parameters: dict[str, Any],
        state_credentials: Any,
    ) -> None:
        # A JSON object given as a blob (S3 PutObject's Body) is sent as its JSON text.
        if isinstance(normalised_parameters.get("Body"), dict | list):
            normalised_parameters["Body"] = json.dumps(normalised_parameters["Body"], separators=(",", ":"))
        super()._eval_service_task(env, resource_runtime_part, normalised_parameters, state_credentials)
        env.stack.append(_json_safe(env.stack.pop()))


def _json_safe(value: Any) -> Any:
    """Datetimes as ISO strings, as Step Functions serialises service responses."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "read"):
        # A streamed payload (InvokeEndpoint's Body): Step Functions hands the task its text.
        data = value.read()
        return data.decode("utf-8", errors="replace") if isinstance(data, bytes) else str(data)
    return str(value)


__all__ = [
    "EndpointError",
    "EndpointInvoker",
    "EndpointReply",
    "EndpointRequest",
    "EngineHooks",
    "LambdaDispatch",
    "LambdaInvocation",
    "MockConfig",
    "TrainingOutcomeLike",
    "TrainingRunner",
    "container_answer",
    "current",
    "install",
    "installed",
    "join_training_jobs",
    "update",
]
