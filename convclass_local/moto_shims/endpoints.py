"""Endpoints: UpdateEndpoint (moto has none) and InvokeEndpoint routed to ``EngineHooks.invoke_endpoint``.

The training pipeline updates a live endpoint to a new config, so ``SageMakerModelBackend`` and its response
get an ``update_endpoint``. ``SageMakerRuntimeResponse.invoke_endpoint`` is hooked so requests reach the
serving app convclass_local runs (without a hook, moto's canned answer), and Step Functions' service name
``aws-sdk:sagemakerruntime`` resolves to boto3's ``sagemaker-runtime``
(``StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES``).
"""

from __future__ import annotations

import json
from typing import Any

from convclass_local.moto_shims.hooks import EndpointError, EndpointRequest, current
from convclass_local.moto_shims.internals import SERVICE, moto, pinned

SageMakerModelBackend = moto("sagemaker.models", "SageMakerModelBackend")
SageMakerResponse = moto("sagemaker.responses", "SageMakerResponse")
SageMakerRuntimeResponse = moto("sagemakerruntime.responses", "SageMakerRuntimeResponse")
StateTaskService = moto(f"{SERVICE}.state_task_service", "StateTaskService")

#: Parameters of the moto function this shim replaces, as moto 5.2.5 defines them.
PINNED = {"SageMakerRuntimeResponse.invoke_endpoint": ["self"]}

_SERVICE_NAME_OVERRIDES = {"sagemakerruntime": "sagemaker-runtime"}


def patch() -> None:
    name = "SageMakerRuntimeResponse.invoke_endpoint"
    original_invoke_endpoint = pinned(name, SageMakerRuntimeResponse.invoke_endpoint, PINNED[name])

    def invoke_endpoint(self: Any) -> Any:
        invoker = current().invoke_endpoint
        if invoker is None:
            return original_invoke_endpoint(self)
        body = self.body if isinstance(self.body, bytes) else str(self.body or "").encode()
        request = EndpointRequest(
            endpoint_name=str(self._get_params().get("EndpointName") or self.path.split("/")[2]),
            body=body,
            content_type=str(self.headers.get("Content-Type", "application/json")),
            accept=str(self.headers.get("Accept", "application/json")),
            target_model=self.headers.get("X-Amzn-SageMaker-Target-Model"),
        )
        try:
            reply = invoker(request)
        except EndpointError as exc:
            error = json.dumps({"message": exc.message})
            headers = {
                "status": str(exc.status),
                "x-amzn-ErrorType": exc.code,
                "Content-Type": "application/json",
            }
            return exc.status, headers, error
        return 200, {"Content-Type": reply.content_type}, reply.body

    def update_endpoint(self: Any) -> Any:
        action_result = moto("core.responses", "ActionResult")
        arn = _update_endpoint(
            self.sagemaker_backend, self._get_param("EndpointName"), self._get_param("EndpointConfigName")
        )
        return action_result({"EndpointArn": arn})

    SageMakerModelBackend.update_endpoint = _update_endpoint
    SageMakerResponse.update_endpoint = update_endpoint
    SageMakerRuntimeResponse.invoke_endpoint = invoke_endpoint
    StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES.update(_SERVICE_NAME_OVERRIDES)


def _update_endpoint(backend: Any, endpoint_name: str, endpoint_config_name: str) -> str:
    """UpdateEndpoint: the endpoint now serves ``endpoint_config_name`` (a local update cannot fail)."""
    validation_error = moto("sagemaker.exceptions", "ValidationError")
    endpoint = backend.endpoints.get(endpoint_name)
    if endpoint is None:
        raise validation_error(message=f"Could not find endpoint '{endpoint_name}'.")
    config = backend.describe_endpoint_config(endpoint_config_name)
    endpoint.endpoint_config_name = endpoint_config_name
    endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
    endpoint.endpoint_status = "InService"
    return str(endpoint.arn)
