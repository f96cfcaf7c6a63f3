"""Reading a run's execution history: the state it is in and the approval it waits on."""

from __future__ import annotations

import json

from convclass.operator.history import pending_state


def _scheduled(parameters: object) -> dict[str, object]:
    return {"type": "TaskScheduled", "taskScheduledEventDetails": {"parameters": json.dumps(parameters)}}


def test_pending_state_finds_the_open_callback_token_and_its_request() -> None:
    detail = {"gate": "deployment", "task_token": "tok-1", "evaluation": {"challenger": {"accuracy": 0.9}}}
    history = [
        {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "Export"}},
        _scheduled({"FunctionName": "x", "Payload": {"n": 1}}),
        {"type": "TaskSucceeded"},
        {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "RequestDeployApproval"}},
        _scheduled({"Entries": [{"Detail": json.dumps(detail)}]}),
        {"type": "TaskSubmitted"},
    ]
    state, token, request = pending_state(history)
    assert (state, token) == ("RequestDeployApproval", "tok-1")
    assert request == detail

    answered = [*history, {"type": "TaskSucceeded"}, {"type": "TaskStateExited"}]
    assert pending_state(answered)[1:] == (None, None)
