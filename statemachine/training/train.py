"""The training section: find the champion, train the challenger on SageMaker, evaluate it against the
champion, and decide: reject it, ask for the deployment approval, or deploy it.

A failed or stopped training job ends the run (``TrainingFailed`` / ``TrainingStopped``); a transient
SageMaker error that outlived its retries leaves the run failed at ``Train``, to be redriven.
"""

from __future__ import annotations

from typing import Any

from convclass import errors, events
from convclass.training import metric_definitions
from statemachine.asl import SAGEMAKER_ERRORS, State, catch, lambda_task, sagemaker_call
from statemachine.resources import TrainingPipelineResources
from statemachine.training.common import cost_tags, failure
from statemachine.training.names import (
    CLASSIFY_TRAINING_FAILURE,
    DEPLOY_DECISION,
    ERROR_TRAINING_FAILED,
    ERROR_TRAINING_STOPPED,
    EVALUATE,
    FINAL_ERRORS,
    FIND_CHAMPION,
    PUBLISH_FAILURE,
    REJECTED_RUN_HISTORY_TO_COMMIT,
    REQUEST_DEPLOY_APPROVAL,
    TRAIN,
    TRAINING_FAILED,
    TRAINING_STOPPED,
)
from statemachine.training.settings import PipelineSettings


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
            "Tags": cost_tags(),
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


def _evaluate_function(
    r: TrainingPipelineResources, payload: dict[str, Any], *, result_path: str, next_state: str
) -> State:
    """A call of the evaluate function (two minutes at most); a final error ends the run."""
    return lambda_task(
        r.evaluate_function_arn,
        payload,
        result_path=result_path,
        timeout=120,
        next_state=next_state,
        catches=[catch(FINAL_ERRORS, PUBLISH_FAILURE, "$.failure")],
    )


def training_states(r: TrainingPipelineResources, s: PipelineSettings, deploy: str) -> dict[str, State]:
    """FindChampion → Train → Evaluate → DeployDecision: rejected (the outcome section), approval, or
    ``deploy`` (the deployment's first state)."""
    return {
        FIND_CHAMPION: _evaluate_function(
            r,
            {
                "action": "find_champion",
                "step.$": "$.plan.evaluation",
                "channels.$": "$.plan.training.input_data_config",
            },
            result_path="$.champion",
            next_state=TRAIN,
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
        TRAINING_STOPPED: failure(ERROR_TRAINING_STOPPED, "$.failure.Cause"),
        TRAINING_FAILED: failure(ERROR_TRAINING_FAILED, "$.failure.Cause"),
        EVALUATE: _evaluate_function(
            r,
            {
                "step.$": "$.plan.evaluation",
                "model_artifacts.$": "$.training.model_artifacts",
                "training_job_name.$": "$.training.job_name",
                "champion_model.$": "$.champion.result.model_artifacts",
            },
            result_path="$.evaluation",
            next_state=DEPLOY_DECISION,
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
    }
