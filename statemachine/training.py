"""The training → deployment pipeline (Standard workflow), rendered from the deployed world's names.

Happy path, with the optional gates in brackets::

    ValidateInput → ExportApprovalGate → [RequestExportApproval] → Export → Preprocess → Train
      → Evaluate → DeployDecision → [RequestDeployApproval] → CreateModel → CreateEndpointConfig
      → CreateOrUpdateEndpoint → CreateEndpoint | UpdateEndpoint
      → WaitForEndpoint → DescribeEndpoint → CheckEndpoint (→ CountPoll → WaitForEndpoint …, bounded)
      → WriteChampion → PublishSucceeded → Succeeded

Every failure sets ``$.failure`` = {Error, Cause} with a named error, publishes ``Training Run Failed`` and
ends in the ``Failed`` state (``RequestRejected`` when the input itself was invalid: no plan exists to name
the tenant). ``InsufficientData`` ends cleanly (``EndedWithoutTraining``) after a ``Training Run Succeeded``
event whose outcome says no model was trained. The state document only ever holds the run plan (names and S3
keys), small function results and SageMaker summaries: never data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from convclass import events
from convclass.training import metric_definitions
from statemachine.asl import (
    EVENTS_RETRY,
    S3_RETRY,
    SAGEMAKER_RETRY,
    SAGEMAKER_SERVICE_ERRORS,
    State,
    catch,
    lambda_task,
    put_event,
    retry,
)
from statemachine.resources import TrainingPipelineResources

# State names: the execution history, the path tests and the README refer to these.
VALIDATE_INPUT = "ValidateInput"
VALIDATION_UNAVAILABLE = "ValidationUnavailable"
REPORT_REJECTED_REQUEST = "ReportRejectedRequest"
REQUEST_REJECTED = "RequestRejected"
EXPORT_APPROVAL_GATE = "ExportApprovalGate"
USE_EARLIER_MODEL = "UseEarlierModel"
REQUEST_EXPORT_APPROVAL = "RequestExportApproval"
EXPORT_APPROVAL_TIMED_OUT = "ExportApprovalTimedOut"
EXPORT = "Export"
PREPROCESS = "Preprocess"
REPORT_NO_TRAINING = "ReportNoTraining"
ENDED_WITHOUT_TRAINING = "EndedWithoutTraining"
TRAIN = "Train"
CLASSIFY_TRAINING_FAILURE = "ClassifyTrainingFailure"
TRAINING_STOPPED = "TrainingStopped"
TRAINING_FAILED = "TrainingFailed"
EVALUATE = "Evaluate"
DEPLOY_DECISION = "DeployDecision"
MODEL_REJECTED = "ModelRejected"
REQUEST_DEPLOY_APPROVAL = "RequestDeployApproval"
DEPLOY_APPROVAL_TIMED_OUT = "DeployApprovalTimedOut"
CREATE_MODEL = "CreateModel"
CREATE_ENDPOINT_CONFIG = "CreateEndpointConfig"
CREATE_OR_UPDATE_ENDPOINT = "CreateOrUpdateEndpoint"
CREATE_ENDPOINT = "CreateEndpoint"
UPDATE_ENDPOINT = "UpdateEndpoint"
WAIT_FOR_ENDPOINT = "WaitForEndpoint"
DESCRIBE_ENDPOINT = "DescribeEndpoint"
CHECK_ENDPOINT = "CheckEndpoint"
COUNT_POLL = "CountPoll"
ENDPOINT_NOT_DEPLOYED = "EndpointNotDeployed"
DEPLOYMENT_FAILED = "DeploymentFailed"
WRITE_CHAMPION = "WriteChampion"
PUBLISH_SUCCEEDED = "PublishSucceeded"
SUCCEEDED = "Succeeded"
NAME_FAILURE = "NameFailure"
STEP_FAILED = "StepFailed"
PUBLISH_FAILURE = "PublishFailure"
FAILED = "Failed"

# Error names a run can end with (Fail states, outcome events, alarms).
ERROR_INVALID_INPUT = "InvalidInput"
ERROR_VALIDATION_FAILED = "ValidationFailed"
ERROR_STEP_FAILED = "StepFailed"
ERROR_APPROVAL_REJECTED = "ApprovalRejected"
ERROR_APPROVAL_TIMED_OUT = "ApprovalTimedOut"
ERROR_TRAINING_FAILED = "TrainingFailed"
ERROR_TRAINING_STOPPED = "TrainingStopped"
ERROR_MODEL_REJECTED = "ModelRejected"
ERROR_DEPLOYMENT_FAILED = "DeploymentFailed"

_TIMEOUTS = ["States.Timeout", "States.HeartbeatTimeout"]
#: Endpoint states from which a deployment cannot come back on its own.
_ENDPOINT_DEAD = ["Failed", "OutOfService", "Deleting", "UpdateRollbackFailed"]


@dataclass(frozen=True)
class PipelineSettings:
    """Deployment-wide knobs of the training pipeline (stack config); per-run choices live in RunOptions."""

    #: A pending approval fails the run as ApprovalTimedOut after this long …
    approval_timeout_seconds: int = 7 * 24 * 3600
    #: … or earlier if the reviewer's tool sends no heartbeat (SendTaskHeartbeat) for this long.
    approval_heartbeat_seconds: int = 3 * 24 * 3600
    endpoint_poll_seconds: int = 60
    #: Bound of the endpoint wait loop: polls × poll interval is the longest a deployment may take.
    endpoint_max_polls: int = 45
    #: Blue/green UpdateEndpoint with auto-rollback on the endpoint's alarms (off: plain rolling update).
    blue_green: bool = True
    #: Baking period of blue/green updates: alarms are watched this long before the old fleet goes away.
    blue_green_bake_seconds: int = 600
    #: State timeout of the training task: above RunOptions' largest max_wait_seconds (5 days) plus upload.
    training_timeout_seconds: int = 5 * 24 * 3600 + 3600
    #: Lambda state timeouts sit just above the functions' own 15-minute limit.
    lambda_timeout_seconds: int = 930

    def __post_init__(self) -> None:
        if self.approval_heartbeat_seconds >= self.approval_timeout_seconds:
            raise ValueError("approval_heartbeat_seconds must be below approval_timeout_seconds")
        if min(self.endpoint_poll_seconds, self.endpoint_max_polls, self.lambda_timeout_seconds) < 1:
            raise ValueError("poll interval, poll bound and timeouts must be positive")


def _failure(error: str, cause_path: str, next_state: str = PUBLISH_FAILURE) -> State:
    """A Pass state that names the failure (the Fail state reads $.failure)."""
    return {
        "Type": "Pass",
        "Parameters": {"Error": error, "Cause.$": cause_path},
        "ResultPath": "$.failure",
        "Next": next_state,
    }


def _run_detail() -> dict[str, Any]:
    return {
        "execution.$": "$$.Execution.Id",
        "tenant.$": "$.plan.tenant",
        "classifier.$": "$.plan.classifier",
        "run_id.$": "$.plan.run_id",
    }


def _approval(
    bus: str,
    gate: events.Gate,
    settings: PipelineSettings,
    *,
    result_path: str,
    next_state: str,
    timed_out: str,
) -> State:
    detail: dict[str, Any] = {
        "gate": gate,
        "task_token.$": "$$.Task.Token",
        **_run_detail(),
        "heartbeat_seconds": settings.approval_heartbeat_seconds,
        "timeout_seconds": settings.approval_timeout_seconds,
    }
    if gate == "deployment":
        detail["evaluation.$"] = "$.evaluation.result"
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::events:putEvents.waitForTaskToken",
        "Parameters": {
            "Entries": [
                {
                    "EventBusName": bus,
                    "Source": events.PIPELINE_SOURCE,
                    "DetailType": events.APPROVAL_REQUESTED,
                    "Detail": detail,
                }
            ]
        },
        "ResultPath": result_path,
        "TimeoutSeconds": settings.approval_timeout_seconds,
        "HeartbeatSeconds": settings.approval_heartbeat_seconds,
        "Retry": [EVENTS_RETRY],
        "Catch": [
            catch([ERROR_APPROVAL_REJECTED], PUBLISH_FAILURE, "$.failure"),
            catch(_TIMEOUTS, timed_out, "$.failure"),
            catch(["States.ALL"], NAME_FAILURE, "$.failure"),
        ],
        "Next": next_state,
    }


def _sagemaker_task(action: str, parameters: dict[str, Any], *, next_state: str, **extra: Any) -> State:
    return {
        "Type": "Task",
        "Resource": f"arn:aws:states:::sagemaker:{action}",
        "Parameters": parameters,
        "ResultPath": None,
        "TimeoutSeconds": 60,
        "Retry": [SAGEMAKER_RETRY],
        "Catch": [catch(["States.ALL"], DEPLOYMENT_FAILED, "$.failure")],
        "Next": next_state,
        **extra,
    }


def _tags(*, per_run: bool = True) -> list[dict[str, str]]:
    """Cost-allocation tags; the endpoint outlives runs, so it is not tagged with one."""
    tags = [
        {"Key": "convclass:tenant", "Value.$": "$.plan.tenant"},
        {"Key": "convclass:classifier", "Value.$": "$.plan.classifier"},
    ]
    if per_run:
        tags.append({"Key": "convclass:run", "Value.$": "$.plan.run_id"})
    return tags


def _train(r: TrainingPipelineResources, settings: PipelineSettings) -> State:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
        "Parameters": {
            # A retried CreateTrainingJob needs a fresh name (names are unique per account and region).
            "TrainingJobName.$": "States.Format('{}-{}', $.plan.training.job_base_name, $$.State.RetryCount)",
            "AlgorithmSpecification": {
                "TrainingImage": r.training_image_uri,
                "TrainingInputMode": "File",
                "MetricDefinitions": metric_definitions(),
            },
            "RoleArn": r.sagemaker_role_arn,
            "HyperParameters.$": "$.plan.training.hyperparameters",
            "InputDataConfig.$": "$.plan.training.input_data_config",
            "OutputDataConfig": {"S3OutputPath.$": "$.plan.training.output_uri", "KmsKeyId": r.kms_key_arn},
            "ResourceConfig": {
                "InstanceCount": 1,
                "InstanceType.$": "$.plan.training.instance_type",
                "VolumeSizeInGB": 30,
                "VolumeKmsKeyId": r.kms_key_arn,
            },
            "StoppingCondition.$": "$.plan.training.stopping_condition",
            "EnableManagedSpotTraining.$": "$.plan.training.managed_spot",
            "CheckpointConfig": {
                "S3Uri.$": "$.plan.training.checkpoint_uri",
                "LocalPath": events.CHECKPOINT_LOCAL_PATH,
            },
            "EnableNetworkIsolation": True,
            "EnableInterContainerTrafficEncryption": True,
            "Tags": _tags(),
        },
        "ResultSelector": {
            "job_name.$": "$.TrainingJobName",
            "status.$": "$.TrainingJobStatus",
            "model_artifacts.$": "$.ModelArtifacts.S3ModelArtifacts",
        },
        "ResultPath": "$.training",
        "TimeoutSeconds": settings.training_timeout_seconds,
        "Retry": [SAGEMAKER_RETRY],
        "Catch": [
            catch(["States.TaskFailed"], CLASSIFY_TRAINING_FAILURE, "$.failure"),
            catch(["States.ALL"], NAME_FAILURE, "$.failure"),
        ],
        "Next": EVALUATE,
    }


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
        "updateEndpoint",
        parameters,
        next_state=WAIT_FOR_ENDPOINT,
        ResultSelector={"polls": 0},
        ResultPath="$.endpoint_wait",
    )


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
                    *({"Variable": "$.endpoint.status", "StringEquals": status} for status in _ENDPOINT_DEAD),
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


def render_training_pipeline(
    resources: TrainingPipelineResources, settings: PipelineSettings | None = None
) -> dict[str, Any]:
    """The Standard workflow's ASL definition (a JSON-ready dict)."""
    r, s = resources, settings or PipelineSettings()
    bus = r.event_bus_name
    states: dict[str, State] = {
        VALIDATE_INPUT: lambda_task(
            r.plan_function_arn,
            {
                "request.$": "$",
                "execution_name.$": "$$.Execution.Name",
                "execution.$": "$$.Execution.Id",
                "bucket": r.data_bucket,
            },
            result_key="plan",
            result_path="$",
            timeout=60,
            next_state=EXPORT_APPROVAL_GATE,
            # The raw input may not even be an object: the failure replaces it.
            catches=[
                catch([ERROR_INVALID_INPUT], REPORT_REJECTED_REQUEST, "$"),
                catch(["States.ALL"], VALIDATION_UNAVAILABLE, "$"),
            ],
        ),
        VALIDATION_UNAVAILABLE: {
            "Type": "Pass",
            "Parameters": {
                "Error": ERROR_VALIDATION_FAILED,
                "Cause.$": "States.Format('{}: {}', $.Error, $.Cause)",
            },
            "Next": REPORT_REJECTED_REQUEST,
        },
        REPORT_REJECTED_REQUEST: put_event(
            bus,
            events.PIPELINE_SOURCE,
            events.RUN_FAILED,
            {
                "outcome": "failed",
                "execution.$": "$$.Execution.Id",
                "error.$": "$.Error",
                "cause.$": "$.Cause",
                "request.$": "$$.Execution.Input",
            },
            next_state=REQUEST_REJECTED,
            catches=[catch(["States.ALL"], REQUEST_REJECTED, None)],
        ),
        REQUEST_REJECTED: {"Type": "Fail", "ErrorPath": "$.Error", "CausePath": "$.Cause"},
        EXPORT_APPROVAL_GATE: {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.plan.redeploy_only", "BooleanEquals": True, "Next": USE_EARLIER_MODEL},
                {
                    "Variable": "$.plan.export_approval",
                    "BooleanEquals": True,
                    "Next": REQUEST_EXPORT_APPROVAL,
                },
            ],
            "Default": EXPORT,
        },
        # A roll back: the earlier model stands where a training job's result would, and goes through the
        # same comparison (never blocking: the plan sets its thresholds) and deployment steps.
        USE_EARLIER_MODEL: {
            "Type": "Pass",
            "Parameters": {
                "job_name.$": "$.plan.request.redeploy.training_job_name",
                "status": "Completed",
                "model_artifacts.$": "$.plan.request.redeploy.model_artifacts",
            },
            "ResultPath": "$.training",
            "Next": EVALUATE,
        },
        REQUEST_EXPORT_APPROVAL: _approval(
            bus,
            "export",
            s,
            result_path="$.export_approval",
            next_state=EXPORT,
            timed_out=EXPORT_APPROVAL_TIMED_OUT,
        ),
        EXPORT_APPROVAL_TIMED_OUT: _failure(
            ERROR_APPROVAL_TIMED_OUT,
            "States.Format('export approval got no answer in time ({})', $.failure.Error)",
        ),
        EXPORT: lambda_task(
            r.export_function_arn,
            "$.plan.export",
            result_path="$.export",
            timeout=s.lambda_timeout_seconds,
            next_state=PREPROCESS,
            # The export already retries inside; an unreachable store gets two more chances a minute apart.
            extra_retries=[retry(["SourceUnavailable"], interval=60, attempts=2)],
            catches=[
                catch(["InsufficientData"], REPORT_NO_TRAINING, "$.failure"),
                catch(["States.ALL"], NAME_FAILURE, "$.failure"),
            ],
        ),
        PREPROCESS: lambda_task(
            r.preprocess_function_arn,
            "$.plan.preprocess",
            result_path="$.dataset",
            timeout=s.lambda_timeout_seconds,
            next_state=TRAIN,
            catches=[
                catch(["InsufficientData"], REPORT_NO_TRAINING, "$.failure"),
                catch(["States.ALL"], NAME_FAILURE, "$.failure"),
            ],
        ),
        REPORT_NO_TRAINING: put_event(
            bus,
            events.PIPELINE_SOURCE,
            events.RUN_SUCCEEDED,
            {
                "outcome": "insufficient_data",
                **_run_detail(),
                "error.$": "$.failure.Error",
                "cause.$": "$.failure.Cause",
            },
            next_state=ENDED_WITHOUT_TRAINING,
            catches=[catch(["States.ALL"], ENDED_WITHOUT_TRAINING, "$.publish_error")],
        ),
        ENDED_WITHOUT_TRAINING: {"Type": "Succeed"},
        TRAIN: _train(r, s),
        CLASSIFY_TRAINING_FAILURE: {
            # The .sync failure's cause is the DescribeTrainingJob JSON; match it as text so that a cause that
            # is not JSON still ends as TrainingFailed instead of a runtime error.
            "Type": "Choice",
            "Choices": [
                {
                    "Or": [
                        {"Variable": "$.failure.Cause", "StringMatches": '*"TrainingJobStatus":"Stopped"*'},
                        {"Variable": "$.failure.Cause", "StringMatches": '*"TrainingJobStatus": "Stopped"*'},
                    ],
                    "Next": TRAINING_STOPPED,
                }
            ],
            "Default": TRAINING_FAILED,
        },
        TRAINING_STOPPED: _failure(ERROR_TRAINING_STOPPED, "$.failure.Cause"),
        TRAINING_FAILED: _failure(ERROR_TRAINING_FAILED, "$.failure.Cause"),
        EVALUATE: lambda_task(
            r.evaluate_function_arn,
            {
                "step.$": "$.plan.evaluation",
                "model_artifacts.$": "$.training.model_artifacts",
                "training_job_name.$": "$.training.job_name",
            },
            result_path="$.evaluation",
            timeout=120,
            next_state=DEPLOY_DECISION,
            catches=[catch(["States.ALL"], NAME_FAILURE, "$.failure")],
        ),
        DEPLOY_DECISION: {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.evaluation.result.deploy", "BooleanEquals": False, "Next": MODEL_REJECTED},
                {
                    "Variable": "$.plan.deploy_approval",
                    "BooleanEquals": True,
                    "Next": REQUEST_DEPLOY_APPROVAL,
                },
            ],
            "Default": CREATE_MODEL,
        },
        MODEL_REJECTED: _failure(ERROR_MODEL_REJECTED, "States.JsonToString($.evaluation.result)"),
        REQUEST_DEPLOY_APPROVAL: _approval(
            bus,
            "deployment",
            s,
            result_path="$.deploy_approval",
            next_state=CREATE_MODEL,
            timed_out=DEPLOY_APPROVAL_TIMED_OUT,
        ),
        DEPLOY_APPROVAL_TIMED_OUT: _failure(
            ERROR_APPROVAL_TIMED_OUT,
            "States.Format('deployment approval got no answer in time ({})', $.failure.Error)",
        ),
        CREATE_MODEL: _sagemaker_task(
            "createModel",
            {
                "ModelName.$": "$.plan.deploy.model_name",
                "ExecutionRoleArn": r.sagemaker_role_arn,
                "PrimaryContainer": {
                    "Image": r.serving_image_uri,
                    "ModelDataUrl.$": "$.training.model_artifacts",
                },
                "EnableNetworkIsolation": True,
                "Tags": _tags(),
            },
            next_state=CREATE_ENDPOINT_CONFIG,
        ),
        CREATE_ENDPOINT_CONFIG: _sagemaker_task(
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
                "Tags": _tags(),
            },
            next_state=CREATE_OR_UPDATE_ENDPOINT,
        ),
        CREATE_OR_UPDATE_ENDPOINT: {
            "Type": "Choice",
            "Choices": [
                {
                    "Variable": "$.evaluation.result.endpoint.exists",
                    "BooleanEquals": True,
                    "Next": UPDATE_ENDPOINT,
                }
            ],
            "Default": CREATE_ENDPOINT,
        },
        CREATE_ENDPOINT: _sagemaker_task(
            "createEndpoint",
            {
                "EndpointName.$": "$.plan.deploy.endpoint_name",
                "EndpointConfigName.$": "$.plan.deploy.endpoint_config_name",
                "Tags": _tags(per_run=False),
            },
            next_state=WAIT_FOR_ENDPOINT,
            ResultSelector={"polls": 0},
            ResultPath="$.endpoint_wait",
        ),
        UPDATE_ENDPOINT: _update_endpoint(s),
        WAIT_FOR_ENDPOINT: {"Type": "Wait", "Seconds": s.endpoint_poll_seconds, "Next": DESCRIBE_ENDPOINT},
        DESCRIBE_ENDPOINT: {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:sagemaker:describeEndpoint",
            "Parameters": {"EndpointName.$": "$.plan.deploy.endpoint_name"},
            # FailureReason is absent unless something failed: keep the whole description as text so the
            # check can look for it without a path that may not exist.
            "ResultSelector": {
                "status.$": "$.EndpointStatus",
                "config_name.$": "$.EndpointConfigName",
                "description.$": "States.JsonToString($)",
            },
            "ResultPath": "$.endpoint",
            "TimeoutSeconds": 60,
            "Retry": [
                retry(
                    [*SAGEMAKER_SERVICE_ERRORS, "SageMaker.ThrottlingException"],
                    interval=5,
                    attempts=5,
                    max_delay=60,
                )
            ],
            "Catch": [catch(["States.ALL"], DEPLOYMENT_FAILED, "$.failure")],
            "Next": CHECK_ENDPOINT,
        },
        CHECK_ENDPOINT: _check_endpoint(s),
        COUNT_POLL: {
            "Type": "Pass",
            "Parameters": {"polls.$": "States.MathAdd($.endpoint_wait.polls, 1)"},
            "ResultPath": "$.endpoint_wait",
            "Next": WAIT_FOR_ENDPOINT,
        },
        ENDPOINT_NOT_DEPLOYED: _failure(
            ERROR_DEPLOYMENT_FAILED,
            "States.Format('endpoint {} is {} on config {} (expected {}): {}', $.plan.deploy.endpoint_name, "
            "$.endpoint.status, $.endpoint.config_name, $.plan.deploy.endpoint_config_name, "
            "$.endpoint.description)",
        ),
        DEPLOYMENT_FAILED: _failure(
            ERROR_DEPLOYMENT_FAILED, "States.Format('{}: {}', $.failure.Error, $.failure.Cause)"
        ),
        WRITE_CHAMPION: {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:s3:putObject",
            # The bucket's default encryption (the stack's KMS key) applies.
            "Parameters": {
                "Bucket": r.data_bucket,
                "Key.$": "$.plan.deploy.champion_key",
                "ContentType": "application/json",
                "Body": {
                    "run_id.$": "$.plan.run_id",
                    "model_name.$": "$.plan.deploy.model_name",
                    "endpoint_config_name.$": "$.plan.deploy.endpoint_config_name",
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
            "Catch": [catch(["States.ALL"], NAME_FAILURE, "$.failure")],
            "Next": PUBLISH_SUCCEEDED,
        },
        PUBLISH_SUCCEEDED: put_event(
            bus,
            events.PIPELINE_SOURCE,
            events.RUN_SUCCEEDED,
            {
                "outcome": "deployed",
                **_run_detail(),
                "endpoint.$": "$.plan.deploy.endpoint_name",
                "metrics.$": "$.evaluation.result.challenger",
                "evaluation.$": "$.evaluation.result",
            },
            next_state=SUCCEEDED,
            # The model is live either way; a lost notification must not turn the run into a failure.
            catches=[catch(["States.ALL"], SUCCEEDED, "$.publish_error")],
        ),
        SUCCEEDED: {"Type": "Succeed"},
        NAME_FAILURE: {
            # Engine errors (States.Timeout, States.TaskFailed, ...) are reserved names: a run ends
            # with its own.
            "Type": "Choice",
            "Choices": [{"Variable": "$.failure.Error", "StringMatches": "States.*", "Next": STEP_FAILED}],
            "Default": PUBLISH_FAILURE,
        },
        STEP_FAILED: _failure(ERROR_STEP_FAILED, "States.Format('{}: {}', $.failure.Error, $.failure.Cause)"),
        PUBLISH_FAILURE: put_event(
            bus,
            events.PIPELINE_SOURCE,
            events.RUN_FAILED,
            {
                "outcome": "failed",
                **_run_detail(),
                "error.$": "$.failure.Error",
                "cause.$": "$.failure.Cause",
            },
            next_state=FAILED,
            catches=[catch(["States.ALL"], FAILED, "$.publish_error")],
        ),
        FAILED: {"Type": "Fail", "ErrorPath": "$.failure.Error", "CausePath": "$.failure.Cause"},
    }
    return {
        "Comment": "convclass training pipeline: export, preprocess, train, evaluate, deploy a classifier",
        "QueryLanguage": "JSONPath",
        "StartAt": VALIDATE_INPUT,
        "States": states,
    }
