"""What the shims call: the active :class:`EngineHooks` and the types its callables take and return.

convclass_local plugs its in-process Lambda runner, training runner and serving app in here; every shim reads
the active set when moto calls it, so swapping hooks needs no re-patching.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from convclass_local.moto_shims.mock_config import MockConfig


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
class EngineHooks:
    """What the shims call; ``None`` leaves moto's own behaviour in place."""

    lambda_dispatch: LambdaDispatch | None = None
    training_runner: TrainingRunner | None = None
    invoke_endpoint: EndpointInvoker | None = None
    mock_config: MockConfig | None = None
    #: Wait states and retry intervals last ``time_scale`` × their seconds (1.0 = real time).
    time_scale: float = 1.0
    sync_poll_seconds: float = 0.5


_active = EngineHooks()


def current() -> EngineHooks:
    return _active


def activate(hooks: EngineHooks) -> None:
    """Make ``hooks`` the set the shims call (the package's ``install`` does this under its lock)."""
    global _active
    _active = hooks
