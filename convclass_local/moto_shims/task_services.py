"""Which task service runs a Task state: ``state_task_factory.state_task_service_for`` hands out convclass's.

The factory is the one place moto picks the integration behind a ``Resource``; replacing it is how the
``sagemaker`` integration (:mod:`~convclass_local.moto_shims.sagemaker_tasks`) and the JSON-making ``aws-sdk``
integration (:mod:`~convclass_local.moto_shims.aws_sdk`) take part. Every other service stays moto's.
"""

from __future__ import annotations

from typing import Any

from convclass_local.moto_shims.aws_sdk import AwsSdkTaskService
from convclass_local.moto_shims.internals import TASK, moto, pinned
from convclass_local.moto_shims.sagemaker_tasks import SageMakerTaskService

state_task_factory = moto(f"{TASK}.state_task_factory")

#: Parameters of the moto function this shim replaces, as moto 5.2.5 defines them.
PINNED = {"state_task_service_for": ["service_name"]}


def patch() -> None:
    name = "state_task_service_for"
    original_service_for = pinned(name, state_task_factory.state_task_service_for, PINNED[name])

    def service_for(service_name: str) -> Any:
        if service_name == "sagemaker":
            return SageMakerTaskService()
        if service_name == "aws-sdk":
            return AwsSdkTaskService()  # type: ignore[no-untyped-call]
        return original_service_for(service_name)

    state_task_factory.state_task_service_for = service_for
