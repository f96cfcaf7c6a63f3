"""RedriveExecution on the embedded AWS (moto 5.2.5 has the API's types but no implementation).

As on AWS, a redriven Standard execution keeps its ARN, name and history, and resumes at the state that did
not complete, with the input that state was entered with; states that completed are not run again, and
``$$.Execution.RedriveCount`` counts the redrives (0 before the first). What differs locally:
``$$.Execution.Input`` inside the resumed part is that state's input (AWS keeps the original), a redrive
restarts the whole unfinished state (AWS redrives only the failed branches of a Parallel or Map), and
DescribeExecution reports no ``redriveCount``.
"""

from __future__ import annotations

import copy
import json
import threading
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.backend.execution import Execution
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse

_REDRIVABLE = {ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.ABORTED}
_lock = threading.Lock()
_patched = False


class ExecutionNotRedrivable(JsonRESTError):
    """Only a failed, timed-out or aborted execution that stopped inside a state can be redriven."""

    def __init__(self, message: str) -> None:
        super().__init__("ExecutionNotRedrivable", message)


def unfinished_state(events: list[dict[str, Any]]) -> tuple[str, str]:
    """Name and input of the last top-level state entered and never exited (where a redrive resumes)."""
    open_states: dict[str, str] = {}
    last: str | None = None
    for event in events:
        kind = str(event.get("type", ""))
        if kind.endswith("StateEntered") and "stateEnteredEventDetails" in event:
            details = event["stateEnteredEventDetails"]
            open_states[details["name"]] = details.get("input", "{}")
            last = details["name"]
        elif kind.endswith("StateExited") and "stateExitedEventDetails" in event:
            open_states.pop(event["stateExitedEventDetails"]["name"], None)
    if last is None or last not in open_states:
        raise ExecutionNotRedrivable("the execution did not stop inside a state")
    return last, open_states[last]


def install() -> None:
    """Give moto's backend and server a RedriveExecution action (once per process)."""
    global _patched
    with _lock:
        if _patched:
            return
        original_history = Execution.to_history_output
        original_environment = ExecutionWorker._get_evaluation_environment

        def evaluation_environment(self: Any) -> Any:
            environment = original_environment(self)
            execution = getattr(self._execution_communication, "execution", None)
            context: Any = environment.states.context_object.context_object_data["Execution"]
            context["RedriveCount"] = getattr(execution, "convclass_redrive_count", 0)
            return environment

        def to_history_output(self: Any) -> Any:
            current = original_history(self)
            earlier = getattr(self, "convclass_earlier_events", [])
            if not earlier:
                return current
            events = [*earlier, *current["events"]]
            for number, event in enumerate(events, start=1):
                event["id"] = number
                event["previousEventId"] = number - 1
            current["events"] = events
            return current

        def redrive_execution(self: Any, execution_arn: str) -> Any:
            execution: Any = self.describe_execution(execution_arn)
            if execution.exec_status not in _REDRIVABLE:
                raise ExecutionNotRedrivable(f"execution is {execution.exec_status}, not redrivable")
            events = execution.to_history_output()["events"]
            state, state_input = unfinished_state(events)
            definition = json.loads(execution.state_machine.definition)
            definition["StartAt"] = state
            resumed = copy.copy(execution.state_machine)
            resumed.definition = json.dumps(definition)
            execution.convclass_earlier_events = events
            execution.convclass_redrive_count = getattr(execution, "convclass_redrive_count", 0) + 1
            execution.state_machine = resumed
            execution.input_data = json.loads(state_input)
            execution.exec_worker = None
            execution.error = execution.cause = execution.stop_date = None
            execution.start()
            return execution

        def respond(self: Any) -> Any:
            execution = self.stepfunction_backend.redrive_execution(self._get_param("executionArn"))
            return ActionResult({"redriveDate": execution.start_date})

        Execution.to_history_output = to_history_output  # type: ignore[method-assign]
        ExecutionWorker._get_evaluation_environment = evaluation_environment  # type: ignore[method-assign]
        StepFunctionsParserBackend.redrive_execution = redrive_execution  # type: ignore[attr-defined]
        StepFunctionResponse.redrive_execution = respond  # type: ignore[attr-defined]
        _patched = True
