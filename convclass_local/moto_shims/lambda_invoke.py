"""Lambda in process: ``LambdaFunction._invoke_lambda`` calls ``EngineHooks.lambda_dispatch``, not Docker.

moto runs a Lambda function in a Docker container; every invoke path (the Invoke API, Step Functions'
``lambda:invoke``, event sources) goes through this one method, so hooking it runs convclass's handlers in
this process. Without a dispatch hook moto's own invoke runs.
"""

from __future__ import annotations

from typing import Any

from convclass_local.moto_shims.hooks import LambdaInvocation, current
from convclass_local.moto_shims.internals import moto, pinned

LambdaFunction = moto("awslambda.models", "LambdaFunction")

#: Parameters of the moto function this shim replaces, as moto 5.2.5 defines them.
PINNED = {"LambdaFunction._invoke_lambda": ["self", "event"]}


def patch() -> None:
    name = "LambdaFunction._invoke_lambda"
    original_invoke = pinned(name, LambdaFunction._invoke_lambda, PINNED[name])

    def invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        dispatch = current().lambda_dispatch
        if dispatch is None:
            return original_invoke(self, event)  # type: ignore[no-any-return]
        command = list(getattr(self.image_config, "cmd", None) or [])
        payload, errored = dispatch(
            LambdaInvocation(
                function_name=self.function_name,
                function_arn=self.function_arn,
                handler=str(command[0] if command else self.handler),
                event=event if event is not None else {},
                environment=dict(self.environment_vars or {}),
                memory_mb=int(self.memory_size),
                timeout_s=float(self.timeout),
            )
        )
        return payload, errored, ""

    LambdaFunction._invoke_lambda = invoke_lambda
