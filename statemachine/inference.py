"""The inference workflow (Express): one batch of inbound emails, as an SQS → EventBridge Pipe batch arrives.

::

    ClassifyEmails (Map over the SQS records)
      └─ CheckMessage → Classify (sagemakerruntime:invokeEndpoint) → PublishClassified → Classified
                      ↘ ReportMalformed ─┐          ↘ (any error) ReportFailure ─┴→ NotClassified

Each record carries ``tenant``, ``classifier`` and ``conversation_id`` as SQS message attributes
and the serving
request as its body, which goes to the tenant's endpoint unchanged. Every email ends as exactly one event:
``Email Classified`` or ``Email Classification Failed``. If even the failure report cannot be published, the
iteration fails, the batch fails and SQS redelivers it (then its DLQ): no email is dropped silently.
"""

from __future__ import annotations

from typing import Any

from convclass import errors, events, layout
from statemachine.asl import State, catch, put_event, retry
from statemachine.resources import InferenceResources

CLASSIFY_EMAILS = "ClassifyEmails"
BATCH_FAILED = "BatchFailed"
CHECK_MESSAGE = "CheckMessage"
CLASSIFY = "Classify"
PUBLISH_CLASSIFIED = "PublishClassified"
CLASSIFIED = "Classified"
REPORT_MALFORMED = "ReportMalformed"
REPORT_FAILURE = "ReportFailure"
NOT_CLASSIFIED = "NotClassified"

#: sagemaker-runtime errors worth another attempt (the endpoint is scaling or briefly unavailable).
RUNTIME_TRANSIENT_ERRORS = [
    "SageMakerRuntime.ThrottlingException",
    "SageMakerRuntime.ServiceUnavailableException",
    "SageMakerRuntime.InternalFailureException",
    "SageMakerRuntime.InternalDependencyException",
]
#: Emails classified at once per batch; a Pipe batch is small (≤ 10 by default), so all run together.
MAX_CONCURRENCY = 10

# The workflow builds layout.endpoint_name() from a message's attributes with States.Format.
ENDPOINT_NAME_FORMAT = layout.ENDPOINT_NAME_FORMAT


def _attribute(name: str) -> str:
    return f"$.messageAttributes.{name}.stringValue"


def _email_detail() -> dict[str, Any]:
    return {
        "tenant.$": _attribute("tenant"),
        "classifier.$": _attribute("classifier"),
        "conversation_id.$": _attribute("conversation_id"),
        "message_id.$": "$.messageId",
    }


def _outcome(status: str) -> State:
    return {"Type": "Pass", "Parameters": {"message_id.$": "$.messageId", "status": status}, "End": True}


def render_inference_workflow(resources: InferenceResources) -> dict[str, Any]:
    """The Express workflow's ASL definition (a JSON-ready dict)."""
    bus = resources.event_bus_name
    well_formed = {
        "And": [
            *({"Variable": _attribute(name), "IsPresent": True} for name in events.INBOUND_ATTRIBUTES),
            {"Variable": "$.body", "IsString": True},
        ],
        "Next": CLASSIFY,
    }
    iteration: dict[str, State] = {
        CHECK_MESSAGE: {"Type": "Choice", "Choices": [well_formed], "Default": REPORT_MALFORMED},
        CLASSIFY: {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:sagemakerruntime:invokeEndpoint",
            "Parameters": {
                "EndpointName.$": f"States.Format('{ENDPOINT_NAME_FORMAT}', {_attribute('tenant')}, "
                f"{_attribute('classifier')})",
                "ContentType": "application/json",
                "Accept": "application/json",
                "Body.$": "$.body",
            },
            "ResultSelector": {"prediction.$": "States.StringToJson($.Body)"},
            "ResultPath": "$.classification",
            # SageMaker gives a model 60 s to answer.
            "TimeoutSeconds": 70,
            "Retry": [retry(RUNTIME_TRANSIENT_ERRORS, interval=1, attempts=3, max_delay=10)],
            "Catch": [catch(["States.ALL"], REPORT_FAILURE, "$.error")],
            "Next": PUBLISH_CLASSIFIED,
        },
        PUBLISH_CLASSIFIED: put_event(
            bus,
            events.INFERENCE_SOURCE,
            events.EMAIL_CLASSIFIED,
            {**_email_detail(), "prediction.$": "$.classification.prediction"},
            next_state=CLASSIFIED,
            catches=[catch(["States.ALL"], REPORT_FAILURE, "$.error")],
        ),
        CLASSIFIED: _outcome("classified"),
        REPORT_FAILURE: put_event(
            bus,
            events.INFERENCE_SOURCE,
            events.EMAIL_CLASSIFICATION_FAILED,
            {**_email_detail(), "error.$": "$.error.Error", "cause.$": "$.error.Cause"},
            next_state=NOT_CLASSIFIED,
        ),
        REPORT_MALFORMED: put_event(
            bus,
            events.INFERENCE_SOURCE,
            events.EMAIL_CLASSIFICATION_FAILED,
            {
                "message_id.$": "$.messageId",
                "error": errors.InvalidInput.__name__,
                "cause": "an inbound email needs the message attributes "
                + ", ".join(events.INBOUND_ATTRIBUTES)
                + " and a body",
            },
            next_state=NOT_CLASSIFIED,
        ),
        NOT_CLASSIFIED: _outcome("failed"),
    }
    return {
        "Comment": "convclass inference: classify a batch of inbound emails with each tenant's endpoint",
        "QueryLanguage": "JSONPath",
        "StartAt": CLASSIFY_EMAILS,
        "States": {
            CLASSIFY_EMAILS: {
                "Type": "Map",
                "ItemsPath": "$",
                "MaxConcurrency": MAX_CONCURRENCY,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": CHECK_MESSAGE,
                    "States": iteration,
                },
                "ResultSelector": {"results.$": "$"},
                # An iteration fails only when even its failure report could not be published.
                "Catch": [catch(["States.ALL"], BATCH_FAILED, "$")],
                "End": True,
            },
            BATCH_FAILED: {"Type": "Fail", "Error": "BatchFailed", "CausePath": "$.Cause"},
        },
    }
