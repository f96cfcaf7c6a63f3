"""What a training run's execution history says: the state it is in, the approval it waits on, its jobs.

Pure functions of the history events (no AWS calls), so the CLI, the console and the local demo read a run
the same way and the reading is tested without a stack.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

_TOKEN_KEY = re.compile(r"task_?token", re.IGNORECASE)


def json_or_none(text: str | None) -> dict[str, Any] | None:
    """A JSON document of the history as a dict (a bare value under ``value``); None where it is not JSON."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else {"value": value}


def pending_state(
    history: Sequence[Mapping[str, Any]],
) -> tuple[str | None, str | None, dict[str, Any] | None]:
    """The state a run is in now and, if it waits on a callback task, its token and request document."""
    current: str | None = None
    token: str | None = None
    request: dict[str, Any] | None = None
    for event in history:
        kind = event.get("type", "")
        if kind.endswith("StateEntered"):
            current = event.get("stateEnteredEventDetails", {}).get("name")
            token, request = None, None
        elif kind == "TaskScheduled":
            parameters = json_or_none(event.get("taskScheduledEventDetails", {}).get("parameters"))
            found = _find_token(parameters)
            if found:
                token, request = found, _token_holder(parameters)
        elif kind in {"TaskSucceeded", "TaskFailed", "TaskTimedOut"} or kind.endswith("StateExited"):
            token, request = None, None
    return current, token, request


def training_jobs(history: Sequence[Mapping[str, Any]]) -> Iterator[str]:
    """The SageMaker training jobs the run created, in order (their logs are the run's training logs)."""
    for event in history:
        if event.get("type") != "TaskScheduled":
            continue
        details = event.get("taskScheduledEventDetails", {})
        if details.get("resourceType") == "sagemaker" and str(details.get("resource", "")).startswith(
            "createTrainingJob"
        ):
            parameters = json_or_none(details.get("parameters")) or {}
            name = parameters.get("TrainingJobName")
            if isinstance(name, str):
                yield name


def _find_token(value: Any) -> str | None:
    """A task token anywhere in a task's parameters (the approval request carries it to the approver)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(item, str) and _TOKEN_KEY.search(str(key)):
                return item
            if isinstance(item, str) and item.startswith("{"):
                item = json_or_none(item)
            found = _find_token(item)
            if found:
                return found
    elif isinstance(value, list):
        for item in value:
            found = _find_token(item)
            if found:
                return found
    return None


def _token_holder(value: Any) -> dict[str, Any] | None:
    """The innermost document that carries the task token (an approval request's ``detail``)."""
    if isinstance(value, Mapping):
        if any(isinstance(item, str) and _TOKEN_KEY.search(str(key)) for key, item in value.items()):
            return dict(value)
        for item in value.values():
            if isinstance(item, str) and item.startswith("{"):
                item = json_or_none(item)
            found = _token_holder(item)
            if found is not None:
                return found
    elif isinstance(value, list):
        for item in value:
            found = _token_holder(item)
            if found is not None:
                return found
    return None


def find_value(document: Any, key: str) -> Any:
    """First value stored under ``key`` anywhere in a run's input or output (they nest summaries by step)."""
    if isinstance(document, Mapping):
        if key in document:
            return document[key]
        for value in document.values():
            found = find_value(value, key)
            if found is not None:
                return found
    elif isinstance(document, list):
        for value in document:
            found = find_value(value, key)
            if found is not None:
                return found
    return None
