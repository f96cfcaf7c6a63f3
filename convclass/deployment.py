"""One description of a convclass deployment, read by the Pulumi program and by the embedded local stack.

Function sizes and environments, role names, the workflows' types, queue and event-source settings, the
training-request rule, the shared endpoint's defaults and the data bucket's policy are declared here once, so
``make demo`` runs what ``pulumi up`` creates: the stack config may override sizes and counts, and both read
their defaults from here. The training workflow's own knobs are :class:`statemachine.PipelineSettings`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from convclass.events import PIPELINE_SOURCE, TRAIN_REQUESTED
from convclass.layout import (
    FEEDBACK_FUNCTION,
    INFERENCE_WORKFLOW,
    PIPELINE_FUNCTIONS,
    PROJECT,
    STARTER_FUNCTION,
    TRAINING_WORKFLOW,
    function_handler,
)

_Value = TypeVar("_Value")

#: Environment variables the Lambda handlers read (the deployment sets them).
DATA_BUCKET_ENV = "CONVCLASS_DATA_BUCKET"
KMS_KEY_ENV = "CONVCLASS_KMS_KEY_ARN"
TRAINING_STATE_MACHINE_ENV = "CONVCLASS_TRAINING_STATE_MACHINE_ARN"
#: Read by the feedback function (convclass.feedback): where it queues requests and publishes reviews.
TRAINING_QUEUE_URL_ENV = "CONVCLASS_TRAINING_QUEUE_URL"
EVENT_BUS_ENV = "CONVCLASS_EVENT_BUS_NAME"
#: JSON ``{"tenant/classifier": RetrainingPolicy fields}``; classifiers not named get the defaults.
FEEDBACK_POLICIES_ENV = "CONVCLASS_FEEDBACK_POLICIES"


@dataclass(frozen=True)
class FunctionSpec:
    """One container-image Lambda: the handler it runs (the image's CMD) and its default sizing."""

    key: str
    memory_mb: int
    timeout_s: int
    ephemeral_storage_mb: int = 512

    @property
    def handler(self) -> str:
        return function_handler(self.key)


FUNCTION_SPECS: dict[str, FunctionSpec] = {
    spec.key: spec
    for spec in (
        FunctionSpec("plan", 256, 30),
        FunctionSpec("export", 1024, 900),
        FunctionSpec("preprocess", 3008, 900, ephemeral_storage_mb=4096),
        FunctionSpec("evaluate", 512, 120),
        FunctionSpec(STARTER_FUNCTION, 256, 30),
        FunctionSpec(FEEDBACK_FUNCTION, 512, 120),
    )
}
assert set(PIPELINE_FUNCTIONS) | {STARTER_FUNCTION, FEEDBACK_FUNCTION} == set(FUNCTION_SPECS)

#: Every function is traced with X-Ray (Lambda's TracingConfig mode).
LAMBDA_TRACING_MODE = "Active"


def function_environment(function: str, environment: Mapping[str, _Value]) -> dict[str, _Value | str]:
    """A function's environment: Powertools' service name and metrics namespace, then what its handler
    reads."""
    return {
        "POWERTOOLS_SERVICE_NAME": f"{PROJECT}-{function}",
        "POWERTOOLS_METRICS_NAMESPACE": PROJECT,
        **environment,
    }


# IAM roles, as name parts under the stack's prefix (convclass.layout.stack_resource_name).
def function_role(function: str) -> tuple[str, ...]:
    """Each function has a role of its own."""
    return (function, "fn")


def state_machine_role(workflow: str) -> tuple[str, ...]:
    """Each workflow has a role of its own, derived from its definition."""
    return (workflow, "sfn")


#: The role SageMaker's training jobs and the tenants' endpoints run as.
SAGEMAKER_ROLE: tuple[str, ...] = ("sagemaker",)

#: Step Functions workflow type of each workflow: training runs for days and must not run twice; inference is
#: a short, idempotent batch.
WORKFLOW_TYPES = {TRAINING_WORKFLOW: "STANDARD", INFERENCE_WORKFLOW: "EXPRESS"}

#: The shared multi-model endpoint: its name part, its variant, and the fleet's defaults (the stack config's
#: sharedEndpoint block may change them). Two instances keep it answering through an instance failure.
SHARED_ENDPOINT = "shared"
SHARED_ENDPOINT_VARIANT = "shared"
SHARED_ENDPOINT_INSTANCE_TYPE = "ml.c5.large"
SHARED_ENDPOINT_MIN_INSTANCES = 2
#: SageMaker keeps loaded models on the instances (evicting the least used when memory runs short).
SHARED_MODEL_CACHE_SETTING = "Enabled"

#: Express workflows run at most five minutes; an inbound message stays hidden a minute longer than that,
#: so a batch still being classified is never delivered twice.
EXPRESS_MAX_SECONDS = 300
INBOUND_VISIBILITY_TIMEOUT_S = EXPRESS_MAX_SECONDS + 60
#: Inbound emails the Pipe hands to one inference execution (the stack config may lower it).
INBOUND_BATCH_SIZE = 10
#: Deliveries before a message moves to its queue's DLQ.
TRAINING_MAX_RECEIVE_COUNT = 3
INBOUND_MAX_RECEIVE_COUNT = 5
#: An SQS event source should hide a message for at least six times the function timeout (AWS guidance).
VISIBILITY_PER_FUNCTION_TIMEOUT = 6
FEEDBACK_MAX_RECEIVE_COUNT = 5
#: The feedback queue's event source mapping: up to this many events per invocation, gathered for at most
#: this many seconds (each invocation evaluates the retraining policy once per classifier it touched).
FEEDBACK_BATCH_SIZE = 100
FEEDBACK_BATCHING_WINDOW_S = 5
#: A feedback batch stays hidden while the feedback function (and its retries) handle it.
FEEDBACK_VISIBILITY_TIMEOUT_S = VISIBILITY_PER_FUNCTION_TIMEOUT * FUNCTION_SPECS[FEEDBACK_FUNCTION].timeout_s
#: A training request stays hidden while the starter (and its retries) handle it.
TRAINING_VISIBILITY_TIMEOUT_S = VISIBILITY_PER_FUNCTION_TIMEOUT * FUNCTION_SPECS[STARTER_FUNCTION].timeout_s
#: How long a queue keeps a message, and a DLQ keeps one for an operator to look at.
QUEUE_RETENTION_S = 4 * 24 * 3600
DLQ_RETENTION_S = 14 * 24 * 3600
#: How long SQS reuses a data key before calling KMS again.
QUEUE_KMS_DATA_KEY_REUSE_S = 300


def dead_letter_queue(queue: str) -> str:
    """The name of ``queue``'s DLQ."""
    return f"{queue}-dlq"


#: The starter's event source: training requests per invocation, how long it gathers them, and how many
#: starters run at once.
STARTER_BATCH_SIZE = 10
STARTER_BATCHING_WINDOW_S = 1
STARTER_MAX_CONCURRENCY = 2
#: The "train classifier" rule: training requests on the bus go to the training queue, detail only (a
#: TrainingRunRequest).
TRAIN_REQUEST_PATTERN = {"source": [PIPELINE_SOURCE], "detail-type": [TRAIN_REQUESTED]}
TRAIN_REQUEST_INPUT_PATH = "$.detail"

#: Sid of the bucket-policy statement that needs TLS; the embedded AWS speaks plain HTTP on loopback.
TLS_ONLY_SID = "DenyInsecureTransport"


def bucket_policy(bucket_arn: str, key_arn: str) -> dict[str, Any]:
    """TLS only, and no object may be written with anything but this deployment's KMS key."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": TLS_ONLY_SID,
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                "Sid": "DenyOtherEncryption",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/*",
                "Condition": {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}},
            },
            {
                "Sid": "DenyOtherKmsKeys",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/*",
                "Condition": {
                    "StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn},
                },
            },
        ],
    }


def bucket_policy_json(bucket_arn: str, key_arn: str) -> str:
    return json.dumps(bucket_policy(bucket_arn, key_arn), sort_keys=True)


def put_denied_by(policy: dict[str, Any], headers: dict[str, str | None]) -> str | None:
    """The Sid of the PutObject Deny statement ``headers`` trip, or None.

    Evaluates the ``StringNotEqualsIfExists`` conditions this module writes, the way S3 does: an absent
    header counts as "not equal", so a PUT without the encryption headers is denied.
    """
    for item in policy["Statement"]:
        if item["Effect"] != "Deny" or item["Action"] not in ("s3:PutObject", "s3:*"):
            continue
        for operator, conditions in item.get("Condition", {}).items():
            if operator != "StringNotEqualsIfExists":
                continue
            if any(headers.get(key) != expected for key, expected in conditions.items()):
                return str(item["Sid"])
    return None


def sse_kms(kms_key_arn: str) -> dict[str, str]:
    """PutObject / upload arguments that satisfy :func:`bucket_policy` (every writer passes them)."""
    return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_arn}
