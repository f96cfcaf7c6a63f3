"""The training → deployment pipeline (Standard workflow), rendered from the deployed world's names.

Happy path, with the optional gates in brackets::

    ValidateInput → ExportApprovalGate → [RequestExportApproval → RecordExportConsent] → PlanExport
      → ExportSize → Export (small tenants) | ExportChunks (Map) → FinalizeExport (big ones) → Preprocess
      → FindChampion → Train → Evaluate → DeployDecision → [RequestDeployApproval] → CreateModel
      → CreateEndpointConfig → InspectEndpoint → CreateOrUpdateEndpoint → CreateEndpoint | UpdateEndpoint
        (Failed: DeleteFailedEndpoint → WaitForDeletion → InspectEndpoint …, bounded → CreateEndpoint)
      → WaitForEndpoint → DescribeEndpoint → CheckEndpoint (→ CountPoll → WaitForEndpoint …, bounded)
      → WriteChampion → CommitHistory → PublishSucceeded → Succeeded

A ``shared`` run (``RunOptions.hosting``) leaves the dedicated branch at ``HostingChoice``, after the decision
and the optional approval::

    HostingChoice → PublishSharedModel (S3 CopyObject to the immutable shared-model key)
      → WarmSharedModel (InvokeEndpoint with TargetModel; refused: SharedModelNotServed → DeploymentFailed)
      → WriteSharedChampion (champion.json records the route) → CommitHistory → PublishSucceeded → Succeeded

A rejected export gate records the tenant's refusal (``RecordExportRefusal``) before the run fails as
``ApprovalRejected``; ``CommitHistory`` — the watermark and the training history this run built — is the last
step before success, so a run that fails anywhere leaves the next incremental export where it was.

A run ends through its ``Failed`` state — ``$.failure`` = {Error, Cause} with a named error, a published
``Training Run Failed`` — only for an outcome a retry would not change: an error of
``errors.FINAL_STEP_ERRORS``, a rejected or unanswered gate, a failed or stopped training job, a permanent
SageMaker error (``RequestRejected`` when the input itself was invalid: no plan exists to name the
tenant). Any other error that outlives its retries (a crashed function, an exhausted transient SageMaker
error, a timeout) fails the execution at the step that raised it, so ``convclass redrive``
(RedriveExecution) resumes the run there; the stack's execution-failure alarm reports it.
``InsufficientData`` ends cleanly (``EndedWithoutTraining``) after a ``Training Run Succeeded`` event whose
outcome says no model was trained; a challenger the comparison rejects ends cleanly too
(``ModelRejected`` publishes ``Training Run Succeeded`` with outcome ``rejected``, then ``EndedRejected``):
the champion keeps serving and no execution-failure alarm fires. The state document only ever holds the run
plan (names and S3 keys), small function results and SageMaker summaries: never data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from convclass import errors, events
from convclass.events import ExportStep
from convclass.hosting.keys import MODEL_ARCHIVE as SHARED_ARCHIVE
from convclass.training import metric_definitions
from statemachine.asl import (
    EVENTS_RETRY,
    S3_RETRY,
    SAGEMAKER_ERRORS,
    State,
    catch,
    lambda_task,
    put_event,
    retry,
    sagemaker_call,
)
from statemachine.inference import MODEL_ERROR, RUNTIME_TRANSIENT_ERRORS, VALIDATION_ERROR
from statemachine.resources import TrainingPipelineResources

#: The serving request WarmSharedModel sends (no customer text).
WARM_UP_REQUEST = json.dumps({"body": "warm-up", "body_content_type": "text/plain"})

# State names: the execution history, the path tests and the README refer to these.
VALIDATE_INPUT = "ValidateInput"
VALIDATION_UNAVAILABLE = "ValidationUnavailable"
REPORT_REJECTED_REQUEST = "ReportRejectedRequest"
REQUEST_REJECTED = "RequestRejected"
EXPORT_APPROVAL_GATE = "ExportApprovalGate"
USE_EARLIER_MODEL = "UseEarlierModel"
NO_CHAMPION_SCORED = "NoChampionScored"
REQUEST_EXPORT_APPROVAL = "RequestExportApproval"
RECORD_EXPORT_CONSENT = "RecordExportConsent"
RECORD_EXPORT_REFUSAL = "RecordExportRefusal"
EXPORT_APPROVAL_TIMED_OUT = "ExportApprovalTimedOut"
PLAN_EXPORT = "PlanExport"
EXPORT_SIZE = "ExportSize"
EXPORT = "Export"
EXPORT_CHUNKS = "ExportChunks"
EXPORT_CHUNK = "ExportChunk"
FINALIZE_EXPORT = "FinalizeExport"
PREPROCESS = "Preprocess"
REPORT_NO_TRAINING = "ReportNoTraining"
ENDED_WITHOUT_TRAINING = "EndedWithoutTraining"
FIND_CHAMPION = "FindChampion"
TRAIN = "Train"
CLASSIFY_TRAINING_FAILURE = "ClassifyTrainingFailure"
TRAINING_STOPPED = "TrainingStopped"
TRAINING_FAILED = "TrainingFailed"
EVALUATE = "Evaluate"
DEPLOY_DECISION = "DeployDecision"
MODEL_REJECTED = "ModelRejected"
ENDED_REJECTED = "EndedRejected"
REQUEST_DEPLOY_APPROVAL = "RequestDeployApproval"
DEPLOY_APPROVAL_TIMED_OUT = "DeployApprovalTimedOut"
CREATE_MODEL = "CreateModel"
CREATE_ENDPOINT_CONFIG = "CreateEndpointConfig"
INSPECT_ENDPOINT = "InspectEndpoint"
CREATE_OR_UPDATE_ENDPOINT = "CreateOrUpdateEndpoint"
DELETE_FAILED_ENDPOINT = "DeleteFailedEndpoint"
AWAIT_DELETION = "AwaitDeletion"
WAIT_FOR_DELETION = "WaitForDeletion"
COUNT_DELETION_POLL = "CountDeletionPoll"
ENDPOINT_NOT_DELETED = "EndpointNotDeleted"
CREATE_ENDPOINT = "CreateEndpoint"
UPDATE_ENDPOINT = "UpdateEndpoint"
WAIT_FOR_ENDPOINT = "WaitForEndpoint"
DESCRIBE_ENDPOINT = "DescribeEndpoint"
CHECK_ENDPOINT = "CheckEndpoint"
COUNT_POLL = "CountPoll"
ENDPOINT_NOT_DEPLOYED = "EndpointNotDeployed"
DEPLOYMENT_FAILED = "DeploymentFailed"
WRITE_CHAMPION = "WriteChampion"
HOSTING_CHOICE = "HostingChoice"
PUBLISH_SHARED_MODEL = "PublishSharedModel"
WARM_SHARED_MODEL = "WarmSharedModel"
SHARED_MODEL_NOT_SERVED = "SharedModelNotServed"
WRITE_SHARED_CHAMPION = "WriteSharedChampion"
COMMIT_HISTORY = "CommitHistory"
COMMIT_REJECTED_RUN_HISTORY = "CommitRejectedRunHistory"
HISTORY_TO_COMMIT = "HistoryToCommit"
REJECTED_RUN_HISTORY_TO_COMMIT = "RejectedRunHistoryToCommit"
PUBLISH_SUCCEEDED = "PublishSucceeded"
SUCCEEDED = "Succeeded"
PUBLISH_FAILURE = "PublishFailure"
FAILED = "Failed"

# Error names a run can end with (Fail states, outcome events, alarms).
ERROR_INVALID_INPUT = errors.InvalidInput.__name__
ERROR_VALIDATION_FAILED = errors.ValidationFailed.__name__
ERROR_APPROVAL_REJECTED = errors.ApprovalRejected.__name__
ERROR_APPROVAL_TIMED_OUT = errors.ApprovalTimedOut.__name__
ERROR_TRAINING_FAILED = errors.TrainingFailed.__name__
ERROR_TRAINING_STOPPED = errors.TrainingStopped.__name__
ERROR_DEPLOYMENT_FAILED = errors.DeploymentFailed.__name__
ERROR_INSUFFICIENT_DATA = errors.InsufficientData.__name__

_TIMEOUTS = ["States.Timeout", "States.HeartbeatTimeout"]
#: Caught and reported as the run's outcome; any other error fails the run at its step (redrivable).
FINAL_ERRORS = [error.__name__ for error in errors.FINAL_STEP_ERRORS]
#: InspectEndpoint's status for an endpoint that does not exist.
ENDPOINT_ABSENT = "Absent"
#: Endpoint states from which a deployment cannot come back on its own.
_ENDPOINT_DEAD = ["Failed", "OutOfService", "Deleting", "UpdateRollbackFailed"]


#: AWS runs at most this many inline Map iterations concurrently.
_INLINE_MAP_MAX_CONCURRENCY = 40


@dataclass(frozen=True)
class PipelineSettings:
    """Deployment-wide knobs of the training pipeline (stack config); per-run choices live in RunOptions."""

    #: A pending approval fails the run as ApprovalTimedOut after this long (no heartbeat is required).
    approval_timeout_seconds: int = 7 * 24 * 3600
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
    #: How a big tenant's export chunks run: ``distributed`` (a Distributed Map: every chunk a child
    #: execution, up to 10,000 in parallel, its own history) on AWS; ``inline`` (an inline Map, at most 40
    #: iterations at once, in the run's own history) where the engine has no Distributed Map (moto's).
    export_map: Literal["distributed", "inline"] = "distributed"
    #: Chunks exported at once (bounded so a source store is not overrun by one tenant's export).
    export_max_concurrency: int = 10
    #: The most chunks a plan cuts a window into (chunks widen evenly beyond it; at most MAX_CHUNKS).
    export_max_chunks: int = 100

    def __post_init__(self) -> None:
        if (
            min(
                self.approval_timeout_seconds,
                self.endpoint_poll_seconds,
                self.endpoint_max_polls,
                self.lambda_timeout_seconds,
                self.export_max_concurrency,
                self.export_max_chunks,
            )
            < 1
        ):
            raise ValueError("poll interval, poll bound, timeouts and export concurrency must be positive")
        if self.export_map not in ("distributed", "inline"):
            raise ValueError("export_map must be 'distributed' or 'inline'")
        if self.export_map == "inline" and self.export_max_concurrency > _INLINE_MAP_MAX_CONCURRENCY:
            raise ValueError(f"an inline Map runs at most {_INLINE_MAP_MAX_CONCURRENCY} iterations at once")


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
    rejected: str = PUBLISH_FAILURE,
) -> State:
    detail: dict[str, Any] = {
        "gate": gate,
        "task_token.$": "$$.Task.Token",
        **_run_detail(),
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
        "Retry": [EVENTS_RETRY],
        "Catch": [
            catch([ERROR_APPROVAL_REJECTED], rejected, "$.failure"),
            catch(_TIMEOUTS, timed_out, "$.failure"),
        ],
        "Next": next_state,
    }


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
    task: State = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
        "Parameters": {
            # Names are unique per account and region: neither a retried nor a redriven CreateTrainingJob
            # may reuse one, hence the redrive count and the attempt in it.
            "TrainingJobName.$": (
                "States.Format('{}-{}-{}', $.plan.training.job_base_name, $.redrive, $.attempt)"
            ),
            "AlgorithmSpecification": {
                "TrainingImage": r.training_image_uri,
                "TrainingInputMode": "File",
                "MetricDefinitions": metric_definitions(),
            },
            "RoleArn": r.sagemaker_role_arn,
            "HyperParameters.$": "$.plan.training.hyperparameters",
            # The plan's channels plus the champion's model archive (FindChampion), scored on the same split.
            "InputDataConfig.$": "$.champion.result.input_data_config",
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
        "TimeoutSeconds": settings.training_timeout_seconds,
    }
    return sagemaker_call(
        TRAIN,
        task,
        next_state=EVALUATE,
        result_path="$.training",
        # The branch sees the plan, the channels and which attempt this is (the job name's suffix).
        parameters={
            "plan.$": "$.plan",
            "champion.$": "$.champion",
            "redrive.$": "$$.Execution.RedriveCount",
            "attempt.$": "$$.State.RetryCount",
        },
        catches=[
            catch([errors.SageMakerTaskFailed.__name__], CLASSIFY_TRAINING_FAILURE, "$.failure"),
            catch(SAGEMAKER_ERRORS, PUBLISH_FAILURE, "$.failure"),
        ],
    )


def _export_action(
    r: TrainingPipelineResources,
    settings: PipelineSettings,
    action: str,
    extra: dict[str, Any],
    *,
    result_path: str,
    next_state: str,
    on_error: tuple[str, str] = (PUBLISH_FAILURE, "$.failure"),
    on_error_names: list[str] = FINAL_ERRORS,
    catches: list[State] | None = None,
) -> State:
    """An export-function action on this run's export step (commit, recording the export gate's answer).

    ``on_error`` catches ``on_error_names`` (default: the final step errors; other errors fail the run at
    this step, to be redriven); ``catches`` replaces that one catcher."""
    payload: dict[str, Any] = {f"{name}.$": f"$.plan.export.{name}" for name in ExportStep.model_fields}
    return lambda_task(
        r.export_function_arn,
        {**payload, "action": action, **extra},
        result_path=result_path,
        timeout=settings.lambda_timeout_seconds,
        next_state=next_state,
        catches=catches or [catch(on_error_names, on_error[0], on_error[1])],
    )


_EXPORT_CATCHES = [
    catch([ERROR_INSUFFICIENT_DATA], REPORT_NO_TRAINING, "$.failure"),
    catch(FINAL_ERRORS, PUBLISH_FAILURE, "$.failure"),
]


def _export_task(r: TrainingPipelineResources, s: PipelineSettings, payload: str, **rest: Any) -> State:
    """One export-function call of an export (whole window or one chunk)."""
    return lambda_task(
        r.export_function_arn,
        payload,
        timeout=s.lambda_timeout_seconds,
        # The export already retries inside; an unreachable store gets two more chances a minute apart.
        extra_retries=[retry([errors.SourceUnavailable.__name__], interval=60, attempts=2)],
        **rest,
    )


def _chunk_task(r: TrainingPipelineResources, s: PipelineSettings) -> State:
    """One Map iteration: export one chunk (its errors reach the Map state's catchers)."""
    task = _export_task(r, s, "$", result_path="$", next_state=EXPORT_CHUNK, catches=[])
    del task["Next"], task["Catch"]
    return {**task, "End": True}


def _export_states(r: TrainingPipelineResources, s: PipelineSettings) -> dict[str, State]:
    """PlanExport → ExportSize → Export (one task: small tenants) | ExportChunks → FinalizeExport.

    The plan's size rule (``ExportPlan.chunked``) picks the path; both end with the run manifest at the
    same key and its summary at ``$.export``. The Map's chunk results are dropped (``ResultPath: null``): up
    to 500 summaries would not fit the state payload, and FinalizeExport reads the chunk manifests instead.
    """
    processor: State = {"Mode": "INLINE"}
    if s.export_map == "distributed":
        processor = {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    fields: dict[str, Any] = {f"{name}.$": f"$.plan.export.{name}" for name in ExportStep.model_fields}
    return {
        PLAN_EXPORT: _export_action(
            r,
            s,
            "plan",
            {"max_chunks": s.export_max_chunks},
            result_path="$.export_plan",
            next_state=EXPORT_SIZE,
            catches=_EXPORT_CATCHES,
        ),
        EXPORT_SIZE: {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.export_plan.result.chunked", "BooleanEquals": True, "Next": EXPORT_CHUNKS}
            ],
            "Default": EXPORT,
        },
        EXPORT: _export_task(
            r, s, "$.plan.export", result_path="$.export", next_state=PREPROCESS, catches=_EXPORT_CATCHES
        ),
        EXPORT_CHUNKS: {
            "Type": "Map",
            "ItemsPath": "$.export_plan.result.chunks",
            "ItemSelector": {**fields, "action": "export", "chunk.$": "$$.Map.Item.Value"},
            "MaxConcurrency": s.export_max_concurrency,
            "ItemProcessor": {
                "ProcessorConfig": processor,
                "StartAt": EXPORT_CHUNK,
                "States": {EXPORT_CHUNK: _chunk_task(r, s)},
            },
            "ResultPath": None,
            "Catch": _EXPORT_CATCHES,
            "Next": FINALIZE_EXPORT,
        },
        FINALIZE_EXPORT: _export_action(
            r,
            s,
            "finalize",
            {"window.$": "$.export_plan.result.window", "chunk_count.$": "$.export_plan.result.chunk_count"},
            result_path="$.export",
            next_state=PREPROCESS,
        ),
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


def _write_champion(r: TrainingPipelineResources, route: dict[str, Any]) -> State:
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


def _history_to_commit(commit: str, skip_to: str) -> State:
    """A roll back read no data: it has no history to commit."""
    return {
        "Type": "Choice",
        "Choices": [{"Variable": "$.plan.redeploy_only", "BooleanEquals": True, "Next": skip_to}],
        "Default": commit,
    }


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


def _shared_branch(r: TrainingPipelineResources, endpoint: str) -> dict[str, State]:
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
        SHARED_MODEL_NOT_SERVED: _failure(
            ERROR_DEPLOYMENT_FAILED,
            "States.Format('shared endpoint {} does not serve {}: {}: {}', $.plan.shared.endpoint_name, "
            "$.plan.shared.target_model, $.failure.Error, $.failure.Cause)",
        ),
        WRITE_SHARED_CHAMPION: _write_champion(
            r,
            {
                "run_id.$": "$.plan.run_id",
                "hosting": "shared",
                "endpoint_name.$": "$.plan.shared.endpoint_name",
                "target_model.$": "$.plan.shared.target_model",
            },
        ),
    }


def render_training_pipeline(
    resources: TrainingPipelineResources, settings: PipelineSettings | None = None
) -> dict[str, Any]:
    """The Standard workflow's ASL definition (a JSON-ready dict)."""
    r, s = resources, settings or PipelineSettings()
    bus = r.event_bus_name
    # Without a shared endpoint the plan refuses ``shared`` runs: every approved model goes to CreateModel.
    deploy = CREATE_MODEL if r.shared_endpoint_name is None else HOSTING_CHOICE
    states: dict[str, State] = {
        VALIDATE_INPUT: lambda_task(
            r.plan_function_arn,
            {
                "request.$": "$",
                "execution_name.$": "$$.Execution.Name",
                "execution.$": "$$.Execution.Id",
                "bucket": r.data_bucket,
                "shared_endpoint": r.shared_endpoint_name,
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
            "Default": PLAN_EXPORT,
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
            "Next": NO_CHAMPION_SCORED,
        },
        # Nothing was trained, so no champion was scored against it (Evaluate reads FindChampion's answer).
        NO_CHAMPION_SCORED: {
            "Type": "Pass",
            "Result": {"result": {"model_artifacts": None}},
            "ResultPath": "$.champion",
            "Next": EVALUATE,
        },
        REQUEST_EXPORT_APPROVAL: _approval(
            bus,
            "export",
            s,
            result_path="$.export_approval",
            next_state=RECORD_EXPORT_CONSENT,
            timed_out=EXPORT_APPROVAL_TIMED_OUT,
            rejected=RECORD_EXPORT_REFUSAL,
        ),
        RECORD_EXPORT_CONSENT: _export_action(
            r,
            s,
            "consent",
            {"answer.$": "$.export_approval"},
            result_path="$.consent",
            next_state=PLAN_EXPORT,
        ),
        RECORD_EXPORT_REFUSAL: _export_action(
            r,
            s,
            "refuse",
            {"answer.$": "$.failure.Cause"},
            result_path="$.consent",
            next_state=PUBLISH_FAILURE,
            # The run fails as ApprovalRejected either way: a refusal that could not be stored is kept apart.
            on_error=(PUBLISH_FAILURE, "$.consent_error"),
            on_error_names=["States.ALL"],
        ),
        EXPORT_APPROVAL_TIMED_OUT: _failure(
            ERROR_APPROVAL_TIMED_OUT,
            "States.Format('export approval got no answer in time ({})', $.failure.Error)",
        ),
        **_export_states(r, s),
        PREPROCESS: lambda_task(
            r.preprocess_function_arn,
            "$.plan.preprocess",
            result_path="$.dataset",
            timeout=s.lambda_timeout_seconds,
            next_state=FIND_CHAMPION,
            catches=[
                catch([ERROR_INSUFFICIENT_DATA], REPORT_NO_TRAINING, "$.failure"),
                catch(FINAL_ERRORS, PUBLISH_FAILURE, "$.failure"),
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
        FIND_CHAMPION: lambda_task(
            r.evaluate_function_arn,
            {
                "action": "find_champion",
                "step.$": "$.plan.evaluation",
                "channels.$": "$.plan.training.input_data_config",
            },
            result_path="$.champion",
            timeout=120,
            next_state=TRAIN,
            catches=[catch(FINAL_ERRORS, PUBLISH_FAILURE, "$.failure")],
        ),
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
                "champion_model.$": "$.champion.result.model_artifacts",
            },
            result_path="$.evaluation",
            timeout=120,
            next_state=DEPLOY_DECISION,
            catches=[catch(FINAL_ERRORS, PUBLISH_FAILURE, "$.failure")],
        ),
        DEPLOY_DECISION: {
            "Type": "Choice",
            "Choices": [
                {
                    "Variable": "$.evaluation.result.deploy",
                    "BooleanEquals": False,
                    "Next": REJECTED_RUN_HISTORY_TO_COMMIT,
                },
                {
                    "Variable": "$.plan.deploy_approval",
                    "BooleanEquals": True,
                    "Next": REQUEST_DEPLOY_APPROVAL,
                },
            ],
            "Default": deploy,
        },
        REJECTED_RUN_HISTORY_TO_COMMIT: _history_to_commit(COMMIT_REJECTED_RUN_HISTORY, MODEL_REJECTED),
        # The run read and trained on its data: the next run continues from this history either way.
        COMMIT_REJECTED_RUN_HISTORY: _export_action(
            r, s, "commit", {}, result_path="$.commit", next_state=MODEL_REJECTED
        ),
        # A rejected challenger is a normal outcome: the champion keeps serving, nobody is paged.
        MODEL_REJECTED: put_event(
            bus,
            events.PIPELINE_SOURCE,
            events.RUN_SUCCEEDED,
            {
                "outcome": "rejected",
                **_run_detail(),
                "metrics.$": "$.evaluation.result.challenger",
                "evaluation.$": "$.evaluation.result",
            },
            next_state=ENDED_REJECTED,
            catches=[catch(["States.ALL"], ENDED_REJECTED, "$.publish_error")],
        ),
        ENDED_REJECTED: {"Type": "Succeed"},
        REQUEST_DEPLOY_APPROVAL: _approval(
            bus,
            "deployment",
            s,
            result_path="$.deploy_approval",
            next_state=deploy,
            timed_out=DEPLOY_APPROVAL_TIMED_OUT,
        ),
        DEPLOY_APPROVAL_TIMED_OUT: _failure(
            ERROR_APPROVAL_TIMED_OUT,
            "States.Format('deployment approval got no answer in time ({})', $.failure.Error)",
        ),
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
                "Tags": _tags(),
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
                "Tags": _tags(),
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
        ENDPOINT_NOT_DELETED: _failure(
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
                "Tags": _tags(per_run=False),
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
        ENDPOINT_NOT_DEPLOYED: _failure(
            ERROR_DEPLOYMENT_FAILED,
            "States.Format('endpoint {} is {} on config {} (expected {}): {}', $.plan.deploy.endpoint_name, "
            "$.endpoint.status, $.endpoint.config_name, $.plan.deploy.endpoint_config_name, "
            "$.endpoint.description)",
        ),
        DEPLOYMENT_FAILED: _failure(
            ERROR_DEPLOYMENT_FAILED, "States.Format('{}: {}', $.failure.Error, $.failure.Cause)"
        ),
        WRITE_CHAMPION: _write_champion(
            r,
            {
                "run_id.$": "$.plan.run_id",
                "hosting": "dedicated",
                "model_name.$": "$.plan.deploy.model_name",
                "endpoint_config_name.$": "$.plan.deploy.endpoint_config_name",
            },
        ),
        HISTORY_TO_COMMIT: _history_to_commit(COMMIT_HISTORY, PUBLISH_SUCCEEDED),
        COMMIT_HISTORY: _export_action(
            r, s, "commit", {}, result_path="$.commit", next_state=PUBLISH_SUCCEEDED
        ),
        PUBLISH_SUCCEEDED: put_event(
            bus,
            events.PIPELINE_SOURCE,
            events.RUN_SUCCEEDED,
            {
                "outcome": "deployed",
                **_run_detail(),
                "endpoint.$": "$.plan.serving_endpoint",
                "metrics.$": "$.evaluation.result.challenger",
                "evaluation.$": "$.evaluation.result",
            },
            next_state=SUCCEEDED,
            # The model is live either way; a lost notification must not turn the run into a failure.
            catches=[catch(["States.ALL"], SUCCEEDED, "$.publish_error")],
        ),
        SUCCEEDED: {"Type": "Succeed"},
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
    if r.shared_endpoint_name is not None:
        states.update(_shared_branch(r, r.shared_endpoint_name))
    return {
        "Comment": "convclass training pipeline: export, preprocess, train, evaluate, deploy a classifier",
        "QueryLanguage": "JSONPath",
        "StartAt": VALIDATE_INPUT,
        "States": states,
    }
