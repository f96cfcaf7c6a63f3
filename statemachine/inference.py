"""The inference workflow (Express): one batch of inbound emails, as an SQS → EventBridge Pipe batch arrives.

::

    ClassifyEmails (Map over the SQS records; each item is {record, attempt})
      └─ CheckMessage → FindRoute (s3:getObject champion.json) → RouteChoice
           │              (no champion.json: dedicated)        ├─ dedicated → Classify
           │                                                   └─ shared → ClassifyShared (TargetModel)
           │         Classify | ClassifyShared (invokeEndpoint) → PublishClassified → Classified
           │         │ transient errors: retried with backoff (Retry)
           │         ├─ ModelError → CheckModelError ─(5xx / 429)→ BackOff → WaitToRetry → FindRoute
           │         │                      └─(container 4xx: bad input)→ ReportFailure → NotClassified
           │         ├─ ValidationError (no such endpoint) → ReportFailure → NotClassified
           │         └─ anything else, or retries spent → ReturnToQueue
           └─ ReportMalformed → NotClassified
    any publish that fails → ReturnToQueue

Each record carries ``tenant``, ``classifier`` and ``conversation_id`` as SQS message attributes and the
serving request as its body, which goes to the tenant's endpoint unchanged. Where a classifier is served comes
from its champion record (``champion.json``, written by the deployment): a ``shared`` record routes the email
to the stack's shared endpoint with the record's ``TargetModel``, and anything else (a ``dedicated`` record,
or none) means the classifier's own endpoint, named from the attributes. A stack without a shared endpoint
reads no route. The record is read once per email (and again before a retried call, so a rollback that
re-points the route is followed at once); a read that keeps failing returns
the message to its queue. An email ends in one of three ways:

* ``Classified``: an ``Email Classified`` event was published;
* ``NotClassified``: a final ``Email Classification Failed`` event was published (bad input: a malformed
  message, a request the serving app refused with 4xx, an endpoint that does not exist);
* ``ReturnToQueue``: nothing final happened (the endpoint stayed unavailable, or publishing failed). The
  execution's output lists the message in ``batchItemFailures`` (the Pipe's partial batch response), so the
  Pipe deletes every other message of the batch and this one becomes visible again; after the queue's
  ``maxReceiveCount`` receives it moves to the DLQ.

Every event's detail carries ``event_id`` (``events.email_event_id``: the SQS message id + the kind), the same
on every delivery of a message: EventBridge does not deduplicate, so a consumer keeps the first event per id.
"""

from __future__ import annotations

from typing import Any

from convclass import events, layout
from convclass.errors import InvalidInput
from statemachine.asl import S3_RETRY, State, catch, put_event, retry
from statemachine.resources import InferenceResources

CLASSIFY_EMAILS = "ClassifyEmails"
BATCH_FAILED = "BatchFailed"
CHECK_MESSAGE = "CheckMessage"
FIND_ROUTE = "FindRoute"
ROUTE_CHOICE = "RouteChoice"
CLASSIFY = "Classify"
CLASSIFY_SHARED = "ClassifyShared"
CHECK_MODEL_ERROR = "CheckModelError"
BACK_OFF = "BackOff"
WAIT_TO_RETRY = "WaitToRetry"
PUBLISH_CLASSIFIED = "PublishClassified"
CLASSIFIED = "Classified"
REPORT_MALFORMED = "ReportMalformed"
REPORT_FAILURE = "ReportFailure"
NOT_CLASSIFIED = "NotClassified"
RETURN_TO_QUEUE = "ReturnToQueue"

#: Outcome statuses in the execution's ``results``.
STATUS_CLASSIFIED = "classified"
STATUS_FAILED = "failed"
STATUS_RETURNED = "returned"

_RUNTIME = "SageMakerRuntime"
#: InvokeEndpoint errors worth another attempt: the endpoint is scaling, loading or briefly unavailable.
#: Step Functions names an aws-sdk error ``<Service>.<SDK exception>``; an error the SDK does not model (a
#: throttling "Rate exceeded") arrives as the service's base exception.
RUNTIME_TRANSIENT_ERRORS = [
    f"{_RUNTIME}.ModelNotReadyException",
    f"{_RUNTIME}.ServiceUnavailableException",
    f"{_RUNTIME}.InternalFailureException",
    f"{_RUNTIME}.InternalDependencyException",
    f"{_RUNTIME}.{_RUNTIME}Exception",
]
#: The container answered non-2xx; its status is in the cause ("Received client|server error (<status>)").
MODEL_ERROR = f"{_RUNTIME}.ModelErrorException"
#: The request was refused before any container saw it (for instance: no endpoint of that name).
VALIDATION_ERROR = f"{_RUNTIME}.ValidationErrorException"
#: Seconds to wait before each new attempt after a container 5xx or 429 (the loop's backoff).
MODEL_ERROR_BACKOFF_SECONDS = (1, 3, 9)
#: Emails classified at once per batch; a Pipe batch is small (≤ 10 by default), so all run together.
MAX_CONCURRENCY = 10
#: SageMaker gives a model 60 s to answer; the task gives up a little later and tries once more.
CLASSIFY_TIMEOUT_SECONDS = 70

# The workflow builds layout.endpoint_name() from a message's attributes with States.Format.
ENDPOINT_NAME_FORMAT = layout.ENDPOINT_NAME_FORMAT
# ... and layout.ClassifierLayout.champion_key the same way.
CHAMPION_KEY_FORMAT = layout.CHAMPION_KEY_FORMAT
#: GetObject of a missing champion.json: the classifier has no route, so it is served by its own endpoint.
NO_ROUTE = "S3.NoSuchKeyException"

_RECORD = "$.record"
_MESSAGE_ID = f"{_RECORD}.messageId"


def _attribute(name: str) -> str:
    return f"{_RECORD}.messageAttributes.{name}.stringValue"


def _event_id(kind: events.EmailEventKind) -> str:
    return f"States.Format('{events.EMAIL_EVENT_ID_FORMAT}', {_MESSAGE_ID}, '{kind}')"


def _email_detail(kind: events.EmailEventKind) -> dict[str, Any]:
    return {
        "event_id.$": _event_id(kind),
        "tenant.$": _attribute("tenant"),
        "classifier.$": _attribute("classifier"),
        "conversation_id.$": _attribute("conversation_id"),
        "message_id.$": _MESSAGE_ID,
    }


def _outcome(status: str) -> State:
    return {"Type": "Pass", "Parameters": {"message_id.$": _MESSAGE_ID, "status": status}, "End": True}


def _to_queue() -> list[State]:
    return [catch(["States.ALL"], RETURN_TO_QUEUE, "$.error")]


def _model_error_choice() -> State:
    cause = "$.error.Cause"
    container_refused_input = {
        "And": [
            {"Variable": cause, "StringMatches": "*Received client error (*"},
            {"Not": {"Variable": cause, "StringMatches": "*Received client error (429)*"}},
        ],
        "Next": REPORT_FAILURE,
    }
    attempts_left = {
        "Variable": "$.attempt",
        "NumericLessThan": len(MODEL_ERROR_BACKOFF_SECONDS),
        "Next": BACK_OFF,
    }
    return {"Type": "Choice", "Choices": [container_refused_input, attempts_left], "Default": RETURN_TO_QUEUE}


def _pair_format(template: str) -> str:
    """``template`` (two ``{}``) filled with the message's tenant and classifier attributes."""
    return f"States.Format('{template}', {_attribute('tenant')}, {_attribute('classifier')})"


def _classify(endpoint: dict[str, str]) -> State:
    """InvokeEndpoint of the email's body on ``endpoint`` (its EndpointName, and TargetModel if shared)."""
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:sagemakerruntime:invokeEndpoint",
        "Parameters": {
            **endpoint,
            "ContentType": "application/json",
            "Accept": "application/json",
            "Body.$": f"{_RECORD}.body",
        },
        "ResultSelector": {"prediction.$": "States.StringToJson($.Body)"},
        "ResultPath": "$.classification",
        "TimeoutSeconds": CLASSIFY_TIMEOUT_SECONDS,
        "Retry": [
            retry(RUNTIME_TRANSIENT_ERRORS, interval=1, attempts=3, max_delay=10),
            retry(["States.Timeout"], interval=1, attempts=1),
        ],
        "Catch": [
            catch([MODEL_ERROR], CHECK_MODEL_ERROR, "$.error"),
            catch([VALIDATION_ERROR], REPORT_FAILURE, "$.error"),
            *_to_queue(),
        ],
        "Next": PUBLISH_CLASSIFIED,
    }


def _route_states(resources: InferenceResources, shared_endpoint: str) -> dict[str, State]:
    """``FindRoute`` → ``RouteChoice`` → ``ClassifyShared``: a shared classifier's TargetModel on the stack's
    shared endpoint (literal, so the role reaches that endpoint and the tenants' own ones only)."""
    return {
        FIND_ROUTE: {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
            "Parameters": {
                "Bucket": resources.data_bucket,
                "Key.$": _pair_format(CHAMPION_KEY_FORMAT),
            },
            "ResultSelector": {"record.$": "States.StringToJson($.Body)"},
            "ResultPath": "$.route",
            "TimeoutSeconds": 30,
            "Retry": [S3_RETRY],
            "Catch": [catch([NO_ROUTE], CLASSIFY, "$.route"), *_to_queue()],
            "Next": ROUTE_CHOICE,
        },
        ROUTE_CHOICE: {
            "Type": "Choice",
            "Choices": [
                {
                    "And": [
                        {"Variable": "$.route.record.hosting", "IsPresent": True},
                        {"Variable": "$.route.record.hosting", "StringEquals": "shared"},
                    ],
                    "Next": CLASSIFY_SHARED,
                }
            ],
            "Default": CLASSIFY,
        },
        CLASSIFY_SHARED: _classify(
            {"EndpointName": shared_endpoint, "TargetModel.$": "$.route.record.target_model"}
        ),
    }


def render_inference_workflow(resources: InferenceResources) -> dict[str, Any]:
    """The Express workflow's ASL definition (a JSON-ready dict)."""
    bus = resources.event_bus_name
    shared = resources.shared_endpoint_name
    # Without a shared endpoint every classifier has its own: no route to read.
    first_call = CLASSIFY if shared is None else FIND_ROUTE
    well_formed = {
        "And": [
            *({"Variable": _attribute(name), "IsPresent": True} for name in events.INBOUND_ATTRIBUTES),
            {"Variable": f"{_RECORD}.body", "IsString": True},
        ],
        "Next": first_call,
    }
    backoff = ", ".join(str(seconds) for seconds in MODEL_ERROR_BACKOFF_SECONDS)
    iteration: dict[str, State] = {
        CHECK_MESSAGE: {"Type": "Choice", "Choices": [well_formed], "Default": REPORT_MALFORMED},
        CLASSIFY: _classify({"EndpointName.$": _pair_format(ENDPOINT_NAME_FORMAT)}),
        CHECK_MODEL_ERROR: _model_error_choice(),
        BACK_OFF: {
            "Type": "Pass",
            "Parameters": {
                "record.$": _RECORD,
                "attempt.$": "States.MathAdd($.attempt, 1)",
                "wait_seconds.$": f"States.ArrayGetItem(States.Array({backoff}), $.attempt)",
            },
            "Next": WAIT_TO_RETRY,
        },
        WAIT_TO_RETRY: {"Type": "Wait", "SecondsPath": "$.wait_seconds", "Next": first_call},
        PUBLISH_CLASSIFIED: put_event(
            bus,
            events.INFERENCE_SOURCE,
            events.EMAIL_CLASSIFIED,
            {**_email_detail("classified"), "prediction.$": "$.classification.prediction"},
            next_state=CLASSIFIED,
            catches=_to_queue(),
        ),
        CLASSIFIED: _outcome(STATUS_CLASSIFIED),
        REPORT_FAILURE: put_event(
            bus,
            events.INFERENCE_SOURCE,
            events.EMAIL_CLASSIFICATION_FAILED,
            {**_email_detail("failed"), "error.$": "$.error.Error", "cause.$": "$.error.Cause"},
            next_state=NOT_CLASSIFIED,
            catches=_to_queue(),
        ),
        REPORT_MALFORMED: put_event(
            bus,
            events.INFERENCE_SOURCE,
            events.EMAIL_CLASSIFICATION_FAILED,
            {
                "event_id.$": _event_id("failed"),
                "message_id.$": _MESSAGE_ID,
                "error": InvalidInput.__name__,
                "cause": "an inbound email needs the message attributes "
                + ", ".join(events.INBOUND_ATTRIBUTES)
                + " and a body",
            },
            next_state=NOT_CLASSIFIED,
            catches=_to_queue(),
        ),
        NOT_CLASSIFIED: _outcome(STATUS_FAILED),
        RETURN_TO_QUEUE: {
            "Type": "Pass",
            "Parameters": {
                "message_id.$": _MESSAGE_ID,
                "status": STATUS_RETURNED,
                "error.$": "$.error.Error",
                # The Pipe's partial batch response names a failed SQS message by its message id.
                "failure": {"itemIdentifier.$": _MESSAGE_ID},
            },
            "End": True,
        },
    }
    if shared is not None:
        iteration.update(_route_states(resources, shared))
    return {
        "Comment": "convclass inference: classify a batch of inbound emails with each tenant's endpoint",
        "QueryLanguage": "JSONPath",
        "StartAt": CLASSIFY_EMAILS,
        "States": {
            CLASSIFY_EMAILS: {
                "Type": "Map",
                "ItemsPath": "$",
                "ItemSelector": {"record.$": "$$.Map.Item.Value", "attempt": 0},
                "MaxConcurrency": MAX_CONCURRENCY,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": CHECK_MESSAGE,
                    "States": iteration,
                },
                # Only returned messages carry "failure": the Pipe deletes every other message of the batch.
                "ResultSelector": {"results.$": "$", "batchItemFailures.$": "$[*].failure"},
                # An iteration always ends in one of its outcomes; should the engine itself fail one, the
                # whole batch comes back (its events carry the same event ids, so consumers drop the repeats).
                "Catch": [catch(["States.ALL"], BATCH_FAILED, "$")],
                "End": True,
            },
            BATCH_FAILED: {"Type": "Fail", "Error": "BatchFailed", "CausePath": "$.Cause"},
        },
    }
