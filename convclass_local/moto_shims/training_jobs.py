"""Training jobs run by ``EngineHooks.training_runner``: ``SageMakerModelBackend.create_training_job`` hooked.

moto marks a training job Completed the moment it is created; with a runner set, the job stays InProgress
while the runner trains on a thread of its own (as SageMaker's job runs beside the execution), and its outcome
becomes the job's status, failure reason and model artifacts. Without a runner moto's behaviour stays.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Mapping
from typing import Any

from convclass_local.moto_shims.hooks import TrainingRunner, current
from convclass_local.moto_shims.internals import moto, pinned

SageMakerModelBackend = moto("sagemaker.models", "SageMakerModelBackend")

#: Parameters of the moto function this shim replaces, as moto 5.2.5 defines them.
PINNED = {
    "SageMakerModelBackend.create_training_job": [
        "self",
        "training_job_name",
        "hyper_parameters",
        "algorithm_specification",
        "role_arn",
        "input_data_config",
        "output_data_config",
        "resource_config",
        "vpc_config",
        "stopping_condition",
        "tags",
        "enable_network_isolation",
        "enable_inter_container_traffic_encryption",
        "enable_managed_spot_training",
        "checkpoint_config",
        "debug_hook_config",
        "debug_rule_configurations",
        "tensor_board_output_config",
        "experiment_config",
    ],
}

_TRAINING_REQUEST_KEYS = {
    "hyper_parameters": "HyperParameters",
    "algorithm_specification": "AlgorithmSpecification",
    "role_arn": "RoleArn",
    "input_data_config": "InputDataConfig",
    "output_data_config": "OutputDataConfig",
    "resource_config": "ResourceConfig",
    "vpc_config": "VpcConfig",
    "stopping_condition": "StoppingCondition",
    "tags": "Tags",
    "enable_network_isolation": "EnableNetworkIsolation",
    "enable_inter_container_traffic_encryption": "EnableInterContainerTrafficEncryption",
    "enable_managed_spot_training": "EnableManagedSpotTraining",
    "checkpoint_config": "CheckpointConfig",
}

_training_threads: list[threading.Thread] = []


def join_training_jobs(timeout_s: float = 30.0) -> None:
    """Wait for jobs started through ``training_runner`` (a clean shutdown leaves none running)."""
    deadline = time.monotonic() + timeout_s
    for thread in list(_training_threads):
        thread.join(max(0.0, deadline - time.monotonic()))


def patch() -> None:
    name = "SageMakerModelBackend.create_training_job"
    original_create_training_job = pinned(name, SageMakerModelBackend.create_training_job, PINNED[name])

    def create_training_job(self: Any, training_job_name: str, **kwargs: Any) -> Any:
        # moto rewrites parts of the request (e.g. MetricDefinitions): the runner gets what was asked for.
        request = copy.deepcopy(_training_request(training_job_name, kwargs))
        job = original_create_training_job(self, training_job_name, **kwargs)
        runner = current().training_runner
        if runner is not None:
            job.training_job_status = job.secondary_status = "InProgress"
            thread = threading.Thread(target=_run_training, args=(job, runner, request), daemon=True)
            _training_threads.append(thread)
            thread.start()
        return job

    SageMakerModelBackend.create_training_job = create_training_job


def _training_request(name: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    request = {
        _TRAINING_REQUEST_KEYS[k]: v
        for k, v in kwargs.items()
        if k in _TRAINING_REQUEST_KEYS and v is not None
    }
    request["TrainingJobName"] = name
    return request


def _run_training(job: Any, runner: TrainingRunner, request: Mapping[str, Any]) -> None:
    try:
        outcome = runner(request)
        status, reason, artifacts = outcome.status, outcome.failure_reason, outcome.model_artifacts
    except Exception as exc:  # a broken runner fails the job the way SageMaker reports an internal error
        status, reason, artifacts = "Failed", f"InternalServerError: {type(exc).__name__}: {exc}", ""
    if artifacts:
        job.model_artifacts = {"S3ModelArtifacts": artifacts}
    if reason:
        job.failure_reason = reason
    job.secondary_status = status
    job.training_job_status = status
