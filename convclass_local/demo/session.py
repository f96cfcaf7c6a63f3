"""What every act of the demo shares: the narration, the bus observer, and following a run through its
approval gates to its outcome event."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.prompt import Confirm

from convclass import layout
from convclass.events import INFERENCE_SOURCE, PIPELINE_SOURCE, RUN_FAILED, RUN_SUCCEEDED
from convclass.operator import Operator
from convclass.operator.history import pending_state
from convclass_local.demo.options import APPROVER, DemoOptions, DemoResult, fmt
from convclass_local.runtime import LocalRuntime
from convclass_local.stack import function_name

#: The starter answers a queued request within seconds; longer means it failed (its log says why).
START_TIMEOUT_S = 60.0
OBSERVER = "convclass-demo-observer"


@dataclass(frozen=True)
class Outcome:
    """A run's outcome event, as published on the bus."""

    outcome: str | None
    test_accuracy: float | None
    champion_accuracy: float | None
    detail: dict[str, Any]


@dataclass
class DemoSession:
    runtime: LocalRuntime
    options: DemoOptions
    console: Console
    progress: Progress
    result: DemoResult
    started: float = field(default_factory=time.monotonic)
    operator: Operator = field(init=False)

    def __post_init__(self) -> None:
        self.operator = Operator(self.runtime.outputs)

    @property
    def aws(self) -> Any:
        return self.runtime.aws

    def say(self, text: str) -> None:
        self.console.print(f"[dim]{time.monotonic() - self.started:6.1f}s[/] {text}")

    def observe_bus(self) -> str:
        """A queue subscribed to the pipeline and inference events, as a tenant's integration would be."""
        sqs, events = self.aws.client("sqs"), self.aws.client("events")
        url = sqs.create_queue(QueueName=OBSERVER)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        bus = self.runtime.outputs.require("event_bus_name")
        events.put_rule(
            Name=OBSERVER,
            EventBusName=bus,
            EventPattern=json.dumps({"source": [PIPELINE_SOURCE, INFERENCE_SOURCE]}),
        )
        events.put_targets(Rule=OBSERVER, EventBusName=bus, Targets=[{"Id": "observer", "Arn": arn}])
        return str(url)

    def follow(self, arn: str) -> tuple[str, str | None]:
        """Narrate a run's states and answer its approval gates until it ends; its status and error."""
        sfn, operator = self.aws.client("stepfunctions"), self.operator
        deadline = time.monotonic() + self.options.timeout_s
        seen = 0
        answered: set[str] = set()
        described: dict[str, Any] = {"status": "RUNNING"}
        start_deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                described = sfn.describe_execution(executionArn=arn)
            except sfn.exceptions.ExecutionDoesNotExist:
                if time.monotonic() > start_deadline:
                    self.say(
                        "[red]the starter did not start the run[/]: see the log group "
                        f"{layout.lambda_log_group(function_name('starter'))} and the training queue's DLQ"
                    )
                    return "NOT_STARTED", "StarterFailed"
                time.sleep(0.1)  # the starter has not started it yet
                continue
            history = operator.history(arn)
            for event in history[seen:]:
                self._narrate(event)
            seen = len(history)
            _, token, pending = pending_state(history)
            if described["status"] == "RUNNING" and token and token not in answered:
                answered.add(token)
                self._answer(operator, token, pending or {})
            if described["status"] != "RUNNING":
                break
            time.sleep(0.2)
        else:
            self.say(f"[red]the run did not finish within {self.options.timeout_s:.0f}s: stopping it[/]")
            sfn.stop_execution(executionArn=arn, error="DemoTimeout", cause="the demo's time limit passed")
            described = sfn.describe_execution(executionArn=arn)
        status, error = str(described["status"]), described.get("error")
        colour = "green" if status == "SUCCEEDED" else "red"
        self.say(f"execution [{colour}]{status}[/]" + (f": {error}" if error else ""))
        return status, error

    def _narrate(self, event: Mapping[str, Any]) -> None:
        kind = str(event.get("type", ""))
        if kind.endswith("StateEntered"):
            self.say(f"→ {event.get('stateEnteredEventDetails', {}).get('name')}")
        elif kind == "TaskFailed":
            details = event.get("taskFailedEventDetails", {})
            self.say(f"  [yellow]task failed: {details.get('error')}[/] (the workflow handles it)")

    def _answer(self, operator: Operator, token: str, request: Mapping[str, Any]) -> None:
        gate = str(request.get("gate", "approval"))
        evaluation = request.get("evaluation") or {}
        what = f"{gate} approval requested"
        if isinstance(evaluation, Mapping) and evaluation.get("challenger"):
            challenger = evaluation["challenger"].get("accuracy")
            champion = (evaluation.get("champion") or {}).get("accuracy")
            what += f": challenger accuracy {challenger:.3f}" + (
                f" vs champion {champion:.3f}" if champion is not None else " (no champion yet)"
            )
        if self.options.interactive:
            self.progress.stop()
            approve = Confirm.ask(f"  {what}. Approve?", console=self.console, default=True)
            self.progress.start()
        else:
            approve = True
        operator.answer(token, approve=approve, approver=APPROVER, reason="demo")
        self.say(f"  {what} → {'[green]approved[/]' if approve else '[red]rejected[/]'}")

    def outcome(self, observer: str) -> Outcome | None:
        """The run's outcome event, as published on the bus (narrated)."""
        for event in drain(
            self.aws.client("sqs"), observer, lambda e: e["detail-type"] in (RUN_SUCCEEDED, RUN_FAILED)
        ):
            detail: dict[str, Any] = event["detail"]
            evaluation = detail.get("evaluation") or {}
            challenger = evaluation.get("challenger") or detail.get("metrics") or {}
            champion = evaluation.get("champion") or {}
            found = Outcome(
                outcome=detail.get("outcome"),
                test_accuracy=None if challenger.get("accuracy") is None else float(challenger["accuracy"]),
                champion_accuracy=None if champion.get("accuracy") is None else float(champion["accuracy"]),
                detail=detail,
            )
            if found.test_accuracy is None:
                self.say(f"outcome [bold]{found.outcome}[/]: {detail.get('error')}")
                return found
            verdict = evaluation.get("reason") or detail.get("error") or ""
            self.say(
                f"outcome [bold]{found.outcome}[/]: challenger {fmt(found.test_accuracy)} vs champion "
                f"{fmt(found.champion_accuracy)}" + (f" — {verdict}" if verdict else "")
            )
            return found
        return None


def drain(
    sqs: Any, url: str, wanted: Callable[[dict[str, Any]], bool], wait_s: int = 0
) -> list[dict[str, Any]]:
    """Receive what the observer queue holds; return the events ``wanted`` accepts (others are dropped)."""
    found: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_s).get(
            "Messages", []
        )
        if not messages:
            return found
        for message in messages:
            event = json.loads(message["Body"])
            if isinstance(event, dict) and wanted(event):
                found.append(event)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        wait_s = 0
