"""Reading an execution back: its final status, the states it entered, and what it cost in transitions.

Works with any Step Functions client (AWS, or the embedded engine): the CLI follows runs with it, the path
tests assert the entered-state sequence with it and the benchmark counts billable transitions with it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ExecutionRecord:
    status: str
    error: str | None
    cause: str | None
    output: Any
    #: Names of the states entered, in history order (Map iterations included).
    entered: tuple[str, ...]
    history_events: int

    @property
    def transitions(self) -> int:
        """Billable state transitions of a Standard workflow: one per state entered."""
        return len(self.entered)


def entered_states(events: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    return tuple(
        str(event["stateEnteredEventDetails"]["name"])
        for event in events
        if str(event.get("type", "")).endswith("StateEntered")
    )


def history(client: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = client.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def wait_for(
    client: Any, execution_arn: str, *, timeout_s: float = 60.0, poll_s: float = 0.05
) -> ExecutionRecord:
    """Poll until the execution leaves RUNNING; ``TimeoutError`` if it does not within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        described = client.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution {execution_arn} still RUNNING after {timeout_s} s")
        time.sleep(poll_s)
    events = history(client, execution_arn)
    output = described.get("output")
    return ExecutionRecord(
        status=str(described["status"]),
        error=described.get("error"),
        cause=described.get("cause"),
        output=json.loads(output) if output else None,
        entered=entered_states(events),
        history_events=len(events),
    )
