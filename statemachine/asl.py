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

from convclass.errors import SageMakerTaskFailed, SageMakerTransient

State = dict[str, Any]

#: AWS's recommended retry for Lambda service errors (not function errors), throttling included.
LAMBDA_SERVICE_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.TooManyRequestsException",
]
#: How SageMaker API errors reach a state: the optimised integration names every service error
#: ``SageMaker.AmazonSageMakerException`` and the aws-sdk one names unmodelled errors (ValidationException,
#: ThrottlingException) ``SageMaker.SageMakerException``. Only the cause tells a throttled call from a
#: permanent ValidationException, so :func:`sagemaker_call` classifies by cause before anything is retried.
SAGEMAKER_ERRORS = ["SageMaker.AmazonSageMakerException", "SageMaker.SageMakerException"]
#: Causes of SageMaker errors worth retrying: throttling and internal (5xx) errors.
SAGEMAKER_TRANSIENT_CAUSES = (
    "*ThrottlingException*",
    "*Rate exceeded*",
    "*InternalFailure*",
    "*InternalServerError*",
    "*ServiceUnavailable*",
    "*Status Code: 5*",
)
#: DescribeEndpoint's answer for an endpoint that does not exist (a ValidationException).
ENDPOINT_NOT_FOUND_CAUSE = "*Could not find endpoint*"
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
#: Retries transient SageMaker errors only (what :func:`sagemaker_call` raises as ``SageMakerTransient``).
SAGEMAKER_RETRY = retry([SageMakerTransient.__name__], interval=5, attempts=5, max_delay=60)
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


def call_state(name: str) -> str:
    """The Task state inside :func:`sagemaker_call` ``name`` (what mocked responses and histories name)."""
    return f"{name}Call"


def sagemaker_call(
    name: str,
    task: State,
    *,
    next_state: str,
    catches: list[State],
    result_path: str | None,
    parameters: dict[str, Any] | None = None,
    not_found: dict[str, Any] | None = None,
) -> State:
    """A SageMaker call of which only throttling and internal errors are retried.

    ``task`` (a Task state without Next/Retry/Catch) runs as the single branch of a Parallel state named
    ``name``: a SageMaker error is classified by its cause inside the branch and re-raised as
    ``SageMakerTransient`` (retried by the Parallel's ``SAGEMAKER_RETRY``, with back-off and jitter) or as
    itself (permanent: straight to ``catches``, e.g. a ValidationException). A ``.sync`` job that ended
    Failed or Stopped (``States.TaskFailed``) leaves the branch as ``SageMakerTaskFailed``; any other error
    leaves it unchanged. The branch's result (the task's
    ``ResultSelector`` keys) lands at ``result_path``; ``parameters`` are the branch's input (default: the
    whole state). ``not_found``: the result when the endpoint the call names does not exist.
    """
    call, classify = call_state(name), f"{name}Error"
    transient, permanent, absent = f"{name}Transient", f"{name}Permanent", f"{name}Absent"
    job_failed = f"{name}JobFailed"
    choices: list[State] = []
    states: dict[str, State] = {
        call: {
            **task,
            "ResultPath": "$.result",
            "Catch": [catch(SAGEMAKER_ERRORS, classify, "$"), catch(["States.TaskFailed"], job_failed, "$")],
            "End": True,
        },
        transient: {"Type": "Fail", "Error": SageMakerTransient.__name__, "CausePath": "$.Cause"},
        # Error names a Fail state raises may not start with "States.": a failed .sync job leaves the branch
        # as SageMakerTaskFailed with the job's description as its cause.
        job_failed: {"Type": "Fail", "Error": SageMakerTaskFailed.__name__, "CausePath": "$.Cause"},
        permanent: {"Type": "Fail", "ErrorPath": "$.Error", "CausePath": "$.Cause"},
    }
    if not_found is not None:
        choices.append({"Variable": "$.Cause", "StringMatches": ENDPOINT_NOT_FOUND_CAUSE, "Next": absent})
        states[absent] = {"Type": "Pass", "Result": not_found, "ResultPath": "$.result", "End": True}
    choices.append(
        {
            "Or": [{"Variable": "$.Cause", "StringMatches": cause} for cause in SAGEMAKER_TRANSIENT_CAUSES],
            "Next": transient,
        }
    )
    states[classify] = {"Type": "Choice", "Choices": choices, "Default": permanent}
    keys = [key.removesuffix(".$") for key in task.get("ResultSelector", {})]
    state: State = {
        "Type": "Parallel",
        "Branches": [{"StartAt": call, "States": states}],
        "ResultPath": result_path,
        "Retry": [SAGEMAKER_RETRY],
        "Catch": catches,
        "Next": next_state,
    }
    if keys and result_path is not None:
        # The branch's output is its input plus ``result``; the Parallel's output is a one-element array.
        state["ResultSelector"] = {f"{key}.$": f"$[0].result.{key}" for key in keys}
    if parameters is not None:
        state["Parameters"] = parameters
    return state
