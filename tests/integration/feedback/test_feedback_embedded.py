"""The automatic run's path on the embedded AWS: the policy's request goes through the real training queue,
the real starter Lambda and starts the real training state machine, which carries the reason; the CLI
shows agreement, drift and that reason."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from feedback_support import classified_event, confirmed_event, deploy, deployed_request
from typer.testing import CliRunner

from convclass.cli import app
from convclass.events import TrainingRunRequest
from convclass.feedback.loop import FeedbackLoop
from convclass.feedback.policy import RetrainingPolicy
from convclass.layout import training_execution_name
from convclass_local.runtime import LocalRuntime

pytestmark = pytest.mark.xdist_group("embedded-runtime")


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    with LocalRuntime(workdir=tmp_path_factory.mktemp("feedback-stack"), persist=False) as started:
        yield started


def _wait_for_execution(runtime: LocalRuntime, name: str, timeout_s: float = 60) -> dict[str, Any]:
    sfn = runtime.aws.client("stepfunctions")
    arn = (
        runtime.outputs.require("training_state_machine_arn").replace(":stateMachine:", ":execution:")
        + f":{name}"
    )
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return sfn.describe_execution(executionArn=arn)  # type: ignore[no-any-return]
        except sfn.exceptions.ExecutionDoesNotExist:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_an_automatic_run_starts_through_the_starter_and_carries_its_reason(runtime: LocalRuntime) -> None:
    aws, outputs = runtime.aws, runtime.outputs
    sfn = aws.client("stepfunctions")
    # The deployed model's run: its input is the request the automatic run repeats (what the run does
    # afterwards does not matter here).
    first = sfn.start_execution(
        stateMachineArn=outputs.require("training_state_machine_arn"),
        name="acme--intent--first",
        input=deployed_request("acme").model_dump_json(),
    )["executionArn"]
    now = datetime.now(UTC).replace(microsecond=0)
    deploy(
        aws.client("s3"),
        runtime.bucket,
        outputs.require("kms_key_arn"),
        tenant="acme",
        execution_arn=first,
        accuracy=0.9,
        train_counts={"billing": 60, "delivery": 30, "refund": 10},
        deployed_at=(now - timedelta(days=1)).isoformat(),
    )
    loop = FeedbackLoop(
        s3=aws.client("s3"),
        sfn=sfn,
        sqs=aws.client("sqs"),
        events=aws.client("events"),
        bucket=runtime.bucket,
        kms_key_arn=outputs.require("kms_key_arn"),
        training_state_machine_arn=outputs.require("training_state_machine_arn"),
        training_queue_url=outputs.require("training_queue_url"),
        event_bus_name=outputs.require("event_bus_name"),
        default_policy=RetrainingPolicy(min_unknown_label_conversations=10),
    )
    for i in range(10):
        when = now - timedelta(minutes=30 - i)
        loop.capture(classified_event("acme", f"n{i}", [("billing", 0.9)], when - timedelta(minutes=5)))
        loop.capture(confirmed_event("acme", f"n{i}", "crypto", when))

    decision = loop.evaluate("acme", "intent", now)
    assert decision.sent
    name = training_execution_name("acme", "intent", f"feedback-{now.date().isoformat()}")
    assert decision.execution_name == name
    execution = _wait_for_execution(runtime, name)
    request = TrainingRunRequest.model_validate_json(execution["input"])
    assert request.reason == "unknown-labels: crypto (10)"
    assert request.data_source == deployed_request("acme").data_source
    # Evaluating again the same day finds the run and queues nothing.
    assert not loop.evaluate("acme", "intent", now).sent

    shown = CliRunner().invoke(
        app, ["feedback", "acme", "-c", "intent", "--json", "--outputs", str(runtime.outputs_path)]
    )
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.output)
    assert (report["confirmations"], report["matched"], report["top1"]) == (10, 10, 0.0)
    assert report["drift"]["unknown_labels"] == {"crypto": 10}
    assert [(r["run"], r["reason"]) for r in report["automatic_runs"]] == [
        (name, "unknown-labels: crypto (10)")
    ]
    # Another tenant has no deployed model: a clear error, nothing of acme's.
    other = CliRunner().invoke(
        app, ["feedback", "globex", "-c", "intent", "--outputs", str(runtime.outputs_path)]
    )
    assert other.exit_code == 2
    assert "no deployed model for globex/intent" in other.output
