"""The dedicated deployment: the tenant's own endpoint, created or updated (blue/green with auto-rollback by
default) to serve the approved model, then recorded in ``champion.json``::

    CreateModel → CreateEndpointConfig → InspectEndpoint → CreateOrUpdateEndpoint
      → CreateEndpoint | UpdateEndpoint
      (Failed: DeleteFailedEndpoint → WaitForDeletion → InspectEndpoint …, bounded → CreateEndpoint)
      → WaitForEndpoint → DescribeEndpoint → CheckEndpoint (→ CountPoll → WaitForEndpoint …, bounded)
      → WriteChampion → (the outcome section)

A permanent SageMaker error ends the run as ``DeploymentFailed``; a transient one that outlived its retries
leaves it failed at its step, to be redriven.
"""

from __future__ import annotations

from typing import Any

from convclass import events
from statemachine.asl import S3_RETRY, SAGEMAKER_ERRORS, State, catch, sagemaker_call
from statemachine.resources import TrainingPipelineResources
from statemachine.training.common import cost_tags, failure
from statemachine.training.names import (
    AWAIT_DELETION,
    CHECK_ENDPOINT,
    COUNT_DELETION_POLL,
    COUNT_POLL,
    CREATE_ENDPOINT,
    CREATE_ENDPOINT_CONFIG,
    CREATE_MODEL,
    CREATE_OR_UPDATE_ENDPOINT,
    DELETE_FAILED_ENDPOINT,
    DEPLOYMENT_FAILED,
    DESCRIBE_ENDPOINT,
    ENDPOINT_ABSENT,
    ENDPOINT_DEAD,
    ENDPOINT_NOT_DELETED,
    ENDPOINT_NOT_DEPLOYED,
    ERROR_DEPLOYMENT_FAILED,
    HISTORY_TO_COMMIT,
    INSPECT_ENDPOINT,
    UPDATE_ENDPOINT,
    WAIT_FOR_DELETION,
    WAIT_FOR_ENDPOINT,
    WRITE_CHAMPION,
)
from statemachine.training.settings import PipelineSettings


def _sagemaker_task(
    name: str,
    action: str,
    parameters: dict[str, Any],
    *,
    next_state: str,
    result_selector: dict[str, Any] | None = None,
    result_path: str | None = None,
    not_found: dict[str, Any] | None = None,
) -> State:
    """A deployment call (optimised integration ``sagemaker:<action>``, or ``aws-sdk:sagemaker:<action>``);
    ``not_found``: its result when the endpoint it names does not exist."""
    resource = action if action.startswith("aws-sdk:") else f"sagemaker:{action}"
    task: State = {
        "Type": "Task",
        "Resource": f"arn:aws:states:::{resource}",
        "Parameters": parameters,
        "TimeoutSeconds": 60,
    }
    if result_selector is not None:
        task["ResultSelector"] = result_selector
    return sagemaker_call(
        name,
        task,
        next_state=next_state,
        result_path=result_path,
        # A permanent SageMaker error ends the run; a transient one that outlived its retries (or a timeout)
        # leaves it FAILED here, to be redriven.
        catches=[catch(SAGEMAKER_ERRORS, DEPLOYMENT_FAILED, "$.failure")],
        not_found=not_found,
    )


def _describe_endpoint(
    name: str, selector: dict[str, Any], *, result_path: str, next_state: str, absent: bool = False
) -> State:
    return _sagemaker_task(
        name,
        "aws-sdk:sagemaker:describeEndpoint",
        {"EndpointName.$": "$.plan.deploy.endpoint_name"},
        next_state=next_state,
        result_selector=selector,
        result_path=result_path,
        not_found={"status": ENDPOINT_ABSENT} if absent else None,
    )


def _update_endpoint(settings: PipelineSettings) -> State:
    parameters: dict[str, Any] = {
        "EndpointName.$": "$.plan.deploy.endpoint_name",
        "EndpointConfigName.$": "$.plan.deploy.endpoint_config_name",
        "RetainAllVariantProperties": False,
    }
    if settings.blue_green:
        parameters["DeploymentConfig"] = {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
                "TerminationWaitInSeconds": settings.blue_green_bake_seconds,
            },
            "AutoRollbackConfiguration": {"Alarms.$": "$.plan.deploy.rollback_alarms"},
        }
    return _sagemaker_task(
        UPDATE_ENDPOINT,
        "updateEndpoint",
        parameters,
        next_state=WAIT_FOR_ENDPOINT,
        result_selector={"polls": 0},
        result_path="$.endpoint_wait",
    )


def _create_or_update(settings: PipelineSettings) -> State:
    """Absent → create; Failed → delete, wait until gone (bounded), create; Deleting → wait; else update."""
    status = "$.existing.status"
    deleting = {
        "Or": [
            {"Variable": status, "StringEquals": "Deleting"},
            {"Variable": status, "StringEquals": "Failed"},
        ]
    }
    waited = {"Variable": "$.endpoint_deletion", "IsPresent": True}
    return {
        "Type": "Choice",
        "Choices": [
            {"Variable": status, "StringEquals": ENDPOINT_ABSENT, "Next": CREATE_ENDPOINT},
            {
                "And": [
                    deleting,
                    waited,
                    {
                        "Variable": "$.endpoint_deletion.polls",
                        "NumericGreaterThanEquals": settings.endpoint_max_polls - 1,
                    },
                ],
                "Next": ENDPOINT_NOT_DELETED,
            },
            {"And": [deleting, waited], "Next": COUNT_DELETION_POLL},
            {"Variable": status, "StringEquals": "Failed", "Next": DELETE_FAILED_ENDPOINT},
            {"Variable": status, "StringEquals": "Deleting", "Next": AWAIT_DELETION},
        ],
        "Default": UPDATE_ENDPOINT,
    }


def _check_endpoint(settings: PipelineSettings) -> State:
    in_service = {"Variable": "$.endpoint.status", "StringEquals": "InService"}
    return {
        "Type": "Choice",
        "Choices": [
            {
                # A failed update leaves the endpoint InService on the OLD config with FailureReason set:
                # success means the new config is live and nothing failed.
                "And": [
                    in_service,
                    {
                        "Variable": "$.endpoint.config_name",
                        "StringEqualsPath": "$.plan.deploy.endpoint_config_name",
                    },
                    {"Not": {"Variable": "$.endpoint.description", "StringMatches": '*"FailureReason"*'}},
                ],
                "Next": WRITE_CHAMPION,
            },
            {
                "Or": [
                    in_service,
                    *({"Variable": "$.endpoint.status", "StringEquals": status} for status in ENDPOINT_DEAD),
                    {
                        "Variable": "$.endpoint_wait.polls",
                        "NumericGreaterThanEquals": settings.endpoint_max_polls - 1,
                    },
                ],
                "Next": ENDPOINT_NOT_DEPLOYED,
            },
        ],
        "Default": COUNT_POLL,
    }


def write_champion(r: TrainingPipelineResources, route: dict[str, Any]) -> State:
    """champion.json: ``route`` (how the classifier is served now) plus the model's provenance and figures."""
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:s3:putObject",
        "Parameters": {
            "Bucket": r.data_bucket,
            "Key.$": "$.plan.deploy.champion_key",
            "ContentType": "application/json",
            # The bucket policy denies writes that do not name the stack's KMS key.
            "ServerSideEncryption": "aws:kms",
            "SSEKMSKeyId": r.kms_key_arn,
            "Body": {
                **route,
                "model_artifacts.$": "$.training.model_artifacts",
                "training_job_name.$": "$.training.job_name",
                "metrics.$": "$.evaluation.result.challenger",
                "execution.$": "$$.Execution.Id",
                "deployed_at.$": "$$.State.EnteredTime",
            },
        },
        "ResultPath": None,
        "TimeoutSeconds": 60,
        "Retry": [S3_RETRY],
        "Next": HISTORY_TO_COMMIT,
    }


def dedicated_states(r: TrainingPipelineResources, s: PipelineSettings) -> dict[str, State]:
    """CreateModel … WriteChampion: the approved model on the tenant's own endpoint."""
    return {
        CREATE_MODEL: _sagemaker_task(
            CREATE_MODEL,
            "createModel",
            {
                "ModelName.$": "$.plan.deploy.model_name",
                "ExecutionRoleArn": r.sagemaker_role_arn,
                "PrimaryContainer": {
                    "Image": r.serving_image_uri,
                    "ModelDataUrl.$": "$.training.model_artifacts",
                },
                "EnableNetworkIsolation": True,
                "Tags": cost_tags(),
            },
            next_state=CREATE_ENDPOINT_CONFIG,
        ),
        CREATE_ENDPOINT_CONFIG: _sagemaker_task(
            CREATE_ENDPOINT_CONFIG,
            "createEndpointConfig",
            {
                "EndpointConfigName.$": "$.plan.deploy.endpoint_config_name",
                "ProductionVariants": [
                    {
                        "VariantName": events.VARIANT_NAME,
                        "ModelName.$": "$.plan.deploy.model_name",
                        "InitialInstanceCount.$": "$.plan.deploy.instance_count",
                        "InstanceType.$": "$.plan.deploy.instance_type",
                    }
                ],
                "KmsKeyId": r.kms_key_arn,
                "Tags": cost_tags(),
            },
            next_state=INSPECT_ENDPOINT,
        ),
        # What the endpoint is now decides create, update, or delete-and-recreate (a Failed endpoint accepts
        # nothing but DeleteEndpoint).
        INSPECT_ENDPOINT: _describe_endpoint(
            INSPECT_ENDPOINT,
            {"status.$": "$.EndpointStatus"},
            result_path="$.existing",
            next_state=CREATE_OR_UPDATE_ENDPOINT,
            absent=True,
        ),
        CREATE_OR_UPDATE_ENDPOINT: _create_or_update(s),
        # Already gone (deleted by someone else meanwhile) is as good as deleted.
        DELETE_FAILED_ENDPOINT: _sagemaker_task(
            DELETE_FAILED_ENDPOINT,
            "aws-sdk:sagemaker:deleteEndpoint",
            {"EndpointName.$": "$.plan.deploy.endpoint_name"},
            next_state=WAIT_FOR_DELETION,
            result_selector={"polls": 0},
            result_path="$.endpoint_deletion",
            not_found={"polls": 0},
        ),
        AWAIT_DELETION: {
            "Type": "Pass",
            "Result": {"polls": 0},
            "ResultPath": "$.endpoint_deletion",
            "Next": WAIT_FOR_DELETION,
        },
        WAIT_FOR_DELETION: {"Type": "Wait", "Seconds": s.endpoint_poll_seconds, "Next": INSPECT_ENDPOINT},
        COUNT_DELETION_POLL: {
            "Type": "Pass",
            "Parameters": {"polls.$": "States.MathAdd($.endpoint_deletion.polls, 1)"},
            "ResultPath": "$.endpoint_deletion",
            "Next": WAIT_FOR_DELETION,
        },
        ENDPOINT_NOT_DELETED: failure(
            ERROR_DEPLOYMENT_FAILED,
            "States.Format('endpoint {} is still {} after DeleteEndpoint: it cannot be recreated yet', "
            "$.plan.deploy.endpoint_name, $.existing.status)",
        ),
        CREATE_ENDPOINT: _sagemaker_task(
            CREATE_ENDPOINT,
            "createEndpoint",
            {
                "EndpointName.$": "$.plan.deploy.endpoint_name",
                "EndpointConfigName.$": "$.plan.deploy.endpoint_config_name",
                "Tags": cost_tags(per_run=False),
            },
            next_state=WAIT_FOR_ENDPOINT,
            result_selector={"polls": 0},
            result_path="$.endpoint_wait",
        ),
        UPDATE_ENDPOINT: _update_endpoint(s),
        WAIT_FOR_ENDPOINT: {"Type": "Wait", "Seconds": s.endpoint_poll_seconds, "Next": DESCRIBE_ENDPOINT},
        # FailureReason is absent unless something failed: keep the whole description as text so the check
        # can look for it without a path that may not exist.
        DESCRIBE_ENDPOINT: _describe_endpoint(
            DESCRIBE_ENDPOINT,
            {
                "status.$": "$.EndpointStatus",
                "config_name.$": "$.EndpointConfigName",
                "description.$": "States.JsonToString($)",
            },
            result_path="$.endpoint",
            next_state=CHECK_ENDPOINT,
        ),
        CHECK_ENDPOINT: _check_endpoint(s),
        COUNT_POLL: {
            "Type": "Pass",
            "Parameters": {"polls.$": "States.MathAdd($.endpoint_wait.polls, 1)"},
            "ResultPath": "$.endpoint_wait",
            "Next": WAIT_FOR_ENDPOINT,
        },
        ENDPOINT_NOT_DEPLOYED: failure(
            ERROR_DEPLOYMENT_FAILED,
            "States.Format('endpoint {} is {} on config {} (expected {}): {}', $.plan.deploy.endpoint_name, "
            "$.endpoint.status, $.endpoint.config_name, $.plan.deploy.endpoint_config_name, "
            "$.endpoint.description)",
        ),
        DEPLOYMENT_FAILED: failure(
            ERROR_DEPLOYMENT_FAILED, "States.Format('{}: {}', $.failure.Error, $.failure.Cause)"
        ),
        WRITE_CHAMPION: write_champion(
            r,
            {
                "run_id.$": "$.plan.run_id",
                "hosting": "dedicated",
                "model_name.$": "$.plan.deploy.model_name",
                "endpoint_config_name.$": "$.plan.deploy.endpoint_config_name",
            },
        ),
    }
