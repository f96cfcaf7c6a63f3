"""Small builders for Amazon States Language (JSONPath) shared by both workflows.

Query language: **JSONPath**, not JSONata. AWS recommends JSONata for new workflows, but the engine convclass
runs locally and in its path tests (moto 5.2.5's Step Functions parser) ships JSONata with its evaluator
unwired: every JSONata expression, and every ``Assign`` variable, fails there with
``States.Runtime``. JSONPath
runs natively in that engine and on AWS, so the definition tested is the definition deployed. Everything the
workflows need exists in JSONPath: intrinsics (``States.Format``, ``States.MathAdd``,
``States.JsonToString``),
the context object (``$$.State.RetryCount`` for per-attempt names, ``$$.Task.Token`` for callbacks),
``ResultSelector`` to keep payloads small, and ``ErrorPath``/``CausePath`` on Fail states.
"""

from __future__ import annotations

from typing import Any

State = dict[str, Any]

#: AWS's recommended retry for Lambda service errors (not function errors), throttling included.
LAMBDA_SERVICE_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.TooManyRequestsException",
]
#: SageMaker API throttling ("Rate exceeded") and transient service errors.
SAGEMAKER_SERVICE_ERRORS = ["SageMaker.AmazonSageMakerException", "SageMaker.InternalFailure"]
#: EventBridge PutEvents: service errors and entries it could not accept.
EVENTS_ERRORS = [
    "EventBridge.AmazonEventBridgeException",
    "EventBridge.InternalException",
    "EventBridge.FailedEntry",
]
#: S3 through the aws-sdk integration: throttling and 5xx.
S3_ERRORS = ["S3.SlowDownException", "S3.InternalErrorException", "S3.ServiceUnavailableException"]


def retry(
    errors: list[str],
    *,
    interval: int,
    attempts: int,
    backoff: float = 2.0,
    max_delay: int | None = None,
) -> State:
    """One Retrier with full jitter, so throttled executions do not retry in lockstep."""
    rule: State = {
        "ErrorEquals": list(errors),
        "IntervalSeconds": interval,
        "MaxAttempts": attempts,
        "BackoffRate": backoff,
        "JitterStrategy": "FULL",
    }
    if max_delay is not None:
        rule["MaxDelaySeconds"] = max_delay
    return rule


LAMBDA_RETRY = retry(LAMBDA_SERVICE_ERRORS, interval=2, attempts=6, max_delay=60)
SAGEMAKER_RETRY = retry(SAGEMAKER_SERVICE_ERRORS, interval=5, attempts=5, max_delay=60)
EVENTS_RETRY = retry(EVENTS_ERRORS, interval=1, attempts=4, max_delay=20)
S3_RETRY = retry(S3_ERRORS, interval=1, attempts=5, max_delay=20)


def catch(errors: list[str], next_state: str, result_path: str | None) -> State:
    return {"ErrorEquals": list(errors), "ResultPath": result_path, "Next": next_state}


def lambda_task(
    function_arn: str,
    payload: dict[str, Any] | str,
    *,
    result_path: str,
    timeout: int,
    next_state: str,
    catches: list[State],
    extra_retries: list[State] | None = None,
    result_key: str = "result",
) -> State:
    """Optimised ``lambda:invoke``: keeps only the function's returned ``Payload`` (pointers and counts).

    ``payload`` is a template, or a path whose value is the whole event (the plan's ready-made steps).
    """
    parameters: dict[str, Any] = {"FunctionName": function_arn}
    if isinstance(payload, str):
        parameters["Payload.$"] = payload
    else:
        parameters["Payload"] = payload
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": parameters,
        "ResultSelector": {f"{result_key}.$": "$.Payload"},
        "ResultPath": result_path,
        "TimeoutSeconds": timeout,
        "Retry": [*(extra_retries or []), LAMBDA_RETRY],
        "Catch": catches,
        "Next": next_state,
    }


def put_event(
    bus: str,
    source: str,
    detail_type: str,
    detail: dict[str, Any],
    *,
    next_state: str | None = None,
    end: bool = False,
    result_path: str | None = None,
    catches: list[State] | None = None,
) -> State:
    """PutEvents with one entry; the bus is encrypted and rules route by detail-type."""
    state: State = {
        "Type": "Task",
        "Resource": "arn:aws:states:::events:putEvents",
        "Parameters": {
            "Entries": [{"EventBusName": bus, "Source": source, "DetailType": detail_type, "Detail": detail}]
        },
        "ResultPath": result_path,
        "TimeoutSeconds": 30,
        "Retry": [EVENTS_RETRY],
    }
    if catches:
        state["Catch"] = catches
    if end:
        state["End"] = True
    else:
        assert next_state is not None, "a state either ends or names its successor"
        state["Next"] = next_state
    return state
