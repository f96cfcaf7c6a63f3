"""Pure parts of the operator tooling: stack outputs, approvals in execution histories, demo parsing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from convclass.errors import InvalidInput
from convclass.operator import pending_state
from convclass.stack import MissingStackOutput, StackOutputs
from convclass.training.logs import log_epoch
from convclass_local.demo import EPOCH_LINE


def test_outputs_merge_file_environment_and_flags_later_ones_winning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"data_bucket": "from-file", "region": "eu-west-1", "unknown_output": [1]}))
    monkeypatch.setenv("CONVCLASS_DATA_BUCKET", "from-env")
    outputs = StackOutputs.load(path, region="us-east-2")
    assert outputs.data_bucket == "from-env"
    assert outputs.region == "us-east-2"
    with pytest.raises(MissingStackOutput, match="CONVCLASS_TRAINING_STATE_MACHINE_ARN"):
        outputs.require("training_state_machine_arn")


def test_outputs_file_that_is_not_an_object_is_named(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text("[1, 2]")
    with pytest.raises(InvalidInput, match="must hold a JSON object"):
        StackOutputs.load(path)
    path.write_text("{not json")
    with pytest.raises(InvalidInput, match="is not JSON"):
        StackOutputs.load(path)


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


def test_epoch_lines_of_the_training_log_drive_the_progress_bar() -> None:
    class Sink:
        text = ""

        def write(self, value: str) -> None:
            self.text += value

        def flush(self) -> None:
            pass

    sink = Sink()
    log_epoch(3, 8, {"loss": 0.4, "val_accuracy": 0.91}, stream=sink)  # type: ignore[arg-type]
    match = EPOCH_LINE.search(sink.text)
    assert match is not None
    assert (match.group(1), match.group(2)) == ("3", "8")
