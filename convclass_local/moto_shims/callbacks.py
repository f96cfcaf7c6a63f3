"""Answers to callback tasks reach the waiting task as on Step Functions.

* A task failure keeps its cause: moto's ``StepFunctionResponse.send_task_failure`` drops ``cause``, so it is
  passed on to the backend and a Catch sees ``{Error, Cause}`` (an approval's rejection carries its reason).
* An answer that comes early still wakes the task: moto sends a callback task's request before
  ``CallbackEndpoint.setup_heartbeat_endpoint`` sets up the heartbeat wait, so an answer arriving in between
  (an approver faster than the engine) is stored but never wakes the waiter, and the execution hangs until the
  heartbeat lapses.
"""

from __future__ import annotations

from typing import Any

from convclass_local.moto_shims.internals import SFN, moto, pinned

CallbackEndpoint = moto(f"{SFN}.asl.eval.callback.callback", "CallbackEndpoint")
StepFunctionsParserBackend = moto(f"{SFN}.models", "StepFunctionsParserBackend")
StepFunctionResponse = moto("stepfunctions.responses", "StepFunctionResponse")
EmptyResult = moto("core.responses", "EmptyResult")

#: Parameters of the moto functions this shim replaces, as moto 5.2.5 defines them.
PINNED = {
    "CallbackEndpoint.setup_heartbeat_endpoint": ["self", "heartbeat_seconds"],
    "StepFunctionResponse.send_task_failure": ["self"],
}


def patch() -> None:
    original_heartbeat = pinned(
        "CallbackEndpoint.setup_heartbeat_endpoint",
        CallbackEndpoint.setup_heartbeat_endpoint,
        PINNED["CallbackEndpoint.setup_heartbeat_endpoint"],
    )
    original_task_failure = pinned(
        "StepFunctionResponse.send_task_failure",
        StepFunctionResponse.send_task_failure,
        PINNED["StepFunctionResponse.send_task_failure"],
    )

    def setup_heartbeat_endpoint(self: Any, heartbeat_seconds: int) -> Any:
        # Step Functions honours an answer that arrived before the heartbeat wait: wake the waiter at once.
        endpoint = original_heartbeat(self, heartbeat_seconds)
        if self.get_outcome() is not None:
            endpoint.notify()
        return endpoint

    def send_task_failure(self: Any) -> Any:
        backend = self.stepfunction_backend
        if not isinstance(backend, StepFunctionsParserBackend):
            return original_task_failure(self)
        backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
        )
        return EmptyResult()

    CallbackEndpoint.setup_heartbeat_endpoint = setup_heartbeat_endpoint
    StepFunctionResponse.send_task_failure = send_task_failure
