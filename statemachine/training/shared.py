"""The shared deployment: a ``shared`` run (``RunOptions.hosting``) leaves the dedicated branch at
``HostingChoice``, after the decision and the optional approval::

    HostingChoice → PublishSharedModel (S3 CopyObject to the immutable shared-model key)
      → WarmSharedModel (InvokeEndpoint with TargetModel; refused: SharedModelNotServed → DeploymentFailed)
      → WriteSharedChampion (champion.json records the route) → (the outcome section)

Only a stack with a shared endpoint has this branch; without one the plan refuses ``shared`` runs.
"""

from __future__ import annotations

import json

from convclass.hosting.keys import MODEL_ARCHIVE as SHARED_ARCHIVE
from statemachine.asl import S3_RETRY, State, catch, retry
from statemachine.inference import MODEL_ERROR, RUNTIME_TRANSIENT_ERRORS, VALIDATION_ERROR
from statemachine.resources import TrainingPipelineResources
from statemachine.training.common import failure
from statemachine.training.deployment import write_champion
from statemachine.training.names import (
    CREATE_MODEL,
    ERROR_DEPLOYMENT_FAILED,
    HOSTING_CHOICE,
    PUBLISH_SHARED_MODEL,
    SHARED_MODEL_NOT_SERVED,
    WARM_SHARED_MODEL,
    WRITE_SHARED_CHAMPION,
)

#: The serving request WarmSharedModel sends (no customer text).
WARM_UP_REQUEST = json.dumps({"body": "warm-up", "body_content_type": "text/plain"})


def _publish_shared_model(r: TrainingPipelineResources) -> State:
    """Copy the approved archive to its immutable key under the shared endpoint's model prefix.

    SageMaker writes a job's archive to ``<S3OutputPath>/<job>/output/model.tar.gz``."""
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:s3:copyObject",
        "Parameters": {
            "Bucket": r.data_bucket,
            "Key.$": "$.plan.shared.model_key",
            "CopySource.$": (
                f"States.Format('{{}}{{}}/output/{SHARED_ARCHIVE}', $.plan.shared.copy_source_prefix, "
                "$.training.job_name)"
            ),
            # The bucket policy denies writes that do not name the stack's KMS key.
            "ServerSideEncryption": "aws:kms",
            "SSEKMSKeyId": r.kms_key_arn,
        },
        "ResultPath": None,
        "TimeoutSeconds": 60,
        "Retry": [S3_RETRY],
        "Next": WARM_SHARED_MODEL,
    }


def _warm_shared_model(endpoint: str) -> State:
    """One request with ``TargetModel``: the endpoint loads the model now, and a model it refuses (or cannot
    load) fails the deployment before any route points at it."""
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:sagemakerruntime:invokeEndpoint",
        "Parameters": {
            # Literal, so the role may invoke this endpoint only (the plan names the same one).
            "EndpointName": endpoint,
            "TargetModel.$": "$.plan.shared.target_model",
            "ContentType": "application/json",
            "Accept": "application/json",
            "Body": WARM_UP_REQUEST,
        },
        "ResultPath": None,
        "TimeoutSeconds": 90,
        "Retry": [retry(RUNTIME_TRANSIENT_ERRORS, interval=2, attempts=4, max_delay=30)],
        "Catch": [catch([MODEL_ERROR, VALIDATION_ERROR], SHARED_MODEL_NOT_SERVED, "$.failure")],
        "Next": WRITE_SHARED_CHAMPION,
    }


def shared_states(r: TrainingPipelineResources, endpoint: str) -> dict[str, State]:
    """``HostingChoice`` and the ``shared`` deployment: publish, warm, record the route."""
    return {
        HOSTING_CHOICE: {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.plan.hosting", "StringEquals": "shared", "Next": PUBLISH_SHARED_MODEL}
            ],
            "Default": CREATE_MODEL,
        },
        PUBLISH_SHARED_MODEL: _publish_shared_model(r),
        WARM_SHARED_MODEL: _warm_shared_model(endpoint),
        SHARED_MODEL_NOT_SERVED: failure(
            ERROR_DEPLOYMENT_FAILED,
            "States.Format('shared endpoint {} does not serve {}: {}: {}', $.plan.shared.endpoint_name, "
            "$.plan.shared.target_model, $.failure.Error, $.failure.Cause)",
        ),
        WRITE_SHARED_CHAMPION: write_champion(
            r,
            {
                "run_id.$": "$.plan.run_id",
                "hosting": "shared",
                "endpoint_name.$": "$.plan.shared.endpoint_name",
                "target_model.$": "$.plan.shared.target_model",
            },
        ),
    }
