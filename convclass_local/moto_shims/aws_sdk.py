"""aws-sdk calls: responses made JSON (timestamps as ISO text) and a JSON ``Body`` sent as text.

Step Functions serialises every service response to JSON; moto's ``StateTaskServiceAwsSdk`` keeps
``datetime`` objects (they break ``States.JsonToString`` and DescribeExecution) and cannot send a JSON object
as an S3 body. :mod:`~convclass_local.moto_shims.task_services` hands out this subclass in its place; the
patch names the service errors of the services convclass calls as Step Functions does
(``_SERVICE_ERROR_NAMES``).
"""

from __future__ import annotations

import json
from typing import Any

from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_aws_sdk as _aws_sdk_module,
)

_SERVICE_ERROR_NAMES = {"sagemakerruntime": "SageMakerRuntime", "sagemaker": "SageMaker", "s3": "S3"}


class AwsSdkTaskService(_aws_sdk_module.StateTaskServiceAwsSdk):
    """moto's aws-sdk integration, with responses made JSON as Step Functions does (timestamps as text)."""

    def _eval_service_task(
        self,
        env: Any,
        resource_runtime_part: Any,
        normalised_parameters: dict[str, Any],
        state_credentials: Any,
    ) -> None:
        # A JSON object given as a blob (S3 PutObject's Body) is sent as its JSON text.
        if isinstance(normalised_parameters.get("Body"), dict | list):
            normalised_parameters["Body"] = json.dumps(normalised_parameters["Body"], separators=(",", ":"))
        super()._eval_service_task(env, resource_runtime_part, normalised_parameters, state_credentials)
        env.stack.append(json_safe(env.stack.pop()))


def json_safe(value: Any) -> Any:
    """Datetimes as ISO strings, as Step Functions serialises service responses."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "read"):
        # A streamed payload (InvokeEndpoint's Body): Step Functions hands the task its text.
        data = value.read()
        return data.decode("utf-8", errors="replace") if isinstance(data, bytes) else str(data)
    return str(value)


def patch() -> None:
    _aws_sdk_module._SERVICE_ERROR_NAMES.update(_SERVICE_ERROR_NAMES)
