"""SageMaker in the engine: the ``arn:aws:states:::sagemaker:*`` optimised integration.

moto rejects ``sagemaker`` as an unsupported service (and ``createTrainingJob.sync`` as an unsupported
procedure); :mod:`~convclass_local.moto_shims.task_services` hands out this task service in its place. It
forwards request-response calls to the SageMaker backend and makes ``createTrainingJob.sync`` wait for the job
(run by :mod:`~convclass_local.moto_shims.training_jobs`), failing the task as Step Functions does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_callback as _callback_module,
)

from convclass_local.moto_shims.aws_sdk import json_safe
from convclass_local.moto_shims.internals import SERVICE, SFN, moto

CustomErrorName = moto(f"{SFN}.asl.component.common.error_name.custom_error_name", "CustomErrorName")
StatesErrorName = moto(f"{SFN}.asl.component.common.error_name.states_error_name", "StatesErrorName")
StatesErrorNameType = moto(
    f"{SFN}.asl.component.common.error_name.states_error_name_type", "StatesErrorNameType"
)
FailureEvent = moto(f"{SFN}.asl.component.common.error_name.failure_event", "FailureEvent")
FailureEventException = moto(f"{SFN}.asl.component.common.error_name.failure_event", "FailureEventException")
ResourceCondition = moto(f"{SERVICE}.resource", "ResourceCondition")
EventDetails = moto(f"{SFN}.asl.eval.event.event_detail", "EventDetails")
boto_client_for = moto(f"{SFN}.asl.utils.boto_client", "boto_client_for")
HistoryEventType = moto(f"{SFN}.api", "HistoryEventType")
TaskFailedEventDetails = moto(f"{SFN}.api", "TaskFailedEventDetails")


class SageMakerTaskService(_callback_module.StateTaskServiceCallback):
    """The ``arn:aws:states:::sagemaker:*`` integration: request-response calls and
    ``createTrainingJob.sync``."""

    _TERMINAL = frozenset({"Completed", "Failed", "Stopped"})

    def __init__(self) -> None:
        super().__init__(
            supported_integration_patterns={ResourceCondition.WaitForTaskToken, ResourceCondition.Sync}
        )

    def _validate_service_integration_is_supported(self) -> None:
        """Every SageMaker action is forwarded to the backend; unknown ones fail at run time as on AWS."""

    def _client(self, resource_runtime_part: Any, state_credentials: Any) -> Any:
        return boto_client_for(
            service="sagemaker", region=resource_runtime_part.region, state_credentials=state_credentials
        )

    def _eval_service_task(
        self,
        env: Any,
        resource_runtime_part: Any,
        normalised_parameters: dict[str, Any],
        state_credentials: Any,
    ) -> None:
        client = self._client(resource_runtime_part, state_credentials)
        response = getattr(client, self._get_boto_service_action())(**normalised_parameters) or {}
        response.pop("ResponseMetadata", None)
        env.stack.append(json_safe(response))

    def _from_error(self, env: Any, ex: Exception) -> Any:
        from botocore.exceptions import ClientError

        if isinstance(ex, ClientError):
            # The optimised integration reports every service error under one name; the cause says which.
            error = "SageMaker.AmazonSageMakerException"
            cause = f"{ex.response['Error'].get('Code', '')}: {ex.response['Error'].get('Message', '')}"
            return FailureEvent(
                env=env,
                error_name=CustomErrorName(error),
                event_type=HistoryEventType.TaskFailed,
                event_details=EventDetails(
                    taskFailedEventDetails=TaskFailedEventDetails(
                        error=error,
                        cause=cause,
                        resource=self._get_sfn_resource(),
                        resourceType=self._get_sfn_resource_type(),
                    )
                ),
            )
        return super()._from_error(env=env, ex=ex)

    def _build_sync_resolver(
        self,
        env: Any,
        resource_runtime_part: Any,
        normalised_parameters: dict[str, Any],
        state_credentials: Any,
    ) -> Callable[[], Any] | None:
        if self._get_boto_service_action() != "create_training_job":
            return super()._build_sync_resolver(
                env, resource_runtime_part, normalised_parameters, state_credentials
            )
        client = self._client(resource_runtime_part, state_credentials)
        env.stack.pop()  # the CreateTrainingJob response; the job's description replaces it
        name = normalised_parameters["TrainingJobName"]

        def resolve() -> dict[str, Any] | None:
            description = client.describe_training_job(TrainingJobName=name)
            description.pop("ResponseMetadata", None)
            status = description.get("TrainingJobStatus")
            if status not in self._TERMINAL:
                return None
            safe: dict[str, Any] = json_safe(description)
            if status == "Completed":
                return safe
            raise FailureEventException(
                FailureEvent(
                    env=env,
                    error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                    event_type=HistoryEventType.TaskFailed,
                    event_details=EventDetails(
                        taskFailedEventDetails=TaskFailedEventDetails(
                            error="States.TaskFailed",
                            cause=json.dumps(safe, separators=(",", ":")),
                            resource=self._get_sfn_resource(),
                            resourceType=self._get_sfn_resource_type(),
                        )
                    ),
                )
            )

        return resolve
