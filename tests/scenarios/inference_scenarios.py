"""Inference scenarios on the embedded AWS: the local stack, the local Pipe and the real inference workflow,
with the real serving app (over a numpy model) behind each tenant's endpoint.

Each scenario sends emails to the inbound queue the way a support system does (``convclass.inbound``), lets
the Pipe and the workflow run, then counts what a consumer of the bus and an operator of the DLQ would see. It
returns those counts (``InferenceCounts``), so the tests assert on them and a benchmark can print them.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convclass import layout
from convclass.deployment import INBOUND_BATCH_SIZE
from convclass.errors import EmailTooLarge
from convclass.events import (
    EMAIL_CLASSIFICATION_FAILED,
    EMAIL_CLASSIFIED,
    INFERENCE_SOURCE,
    EmailClassificationFailed,
    EmailClassified,
    inbound_max_message_bytes,
)
from convclass.inbound import inbound_message
from convclass.serving import ServingLimits
from convclass.serving.schemas import EmailIn
from convclass_local import moto_shims
from convclass_local.runtime import LocalRuntime

sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "serving"))
from serving_fakes import CONTAINER_FAILURE, ServingEndpoints

TENANT, CLASSIFIER = "acme", "support"
ENDPOINT = layout.endpoint_name(TENANT, CLASSIFIER)
#: Returned messages come back after this long (the deployed queue hides them for the Express maximum).
VISIBILITY_TIMEOUT_S = 1
#: Retry intervals and Wait states run this fraction of their seconds.
TIME_SCALE = 0.01


@dataclass(frozen=True)
class InferenceCounts:
    """What one scenario did with its emails, counted by SQS message id."""

    scenario: str
    emails_sent: int
    #: Emails with an ``Email Classified`` event.
    emails_classified: int
    #: Emails with a final ``Email Classification Failed`` event (bad input): answered, not lost.
    emails_failed: int
    emails_in_dlq: int
    #: Emails with no final event and not in the DLQ.
    emails_lost: int
    #: Events a consumer that keeps the first event per ``event_id`` still sees beyond one per email.
    duplicate_events: int
    #: Events that repeat an ``event_id`` already published (a redelivery): the consumer drops them.
    redelivered_events: int
    seconds: float

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class InferenceStage:
    """The running local deployment, its endpoints, and a queue that captures every inference event."""

    runtime: LocalRuntime
    endpoints: ServingEndpoints
    events_queue: str
    sent: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    dlq: set[str] = field(default_factory=set)

    def client(self, service: str) -> Any:
        return self.runtime.aws.client(service)

    def send(self, emails: list[EmailIn], *, tenant: str = TENANT, classifier: str = CLASSIFIER) -> list[str]:
        sqs = self.client("sqs")
        queue = self.runtime.outputs.require("inbound_queue_url")
        ids: list[str] = []
        for start in range(0, len(emails), 10):
            entries = [
                inbound_message(
                    entry_id=str(index),
                    tenant=tenant,
                    classifier=classifier,
                    conversation_id=f"c-{len(self.sent) + start + index}",
                    email=email,
                    max_bytes=inbound_max_message_bytes(INBOUND_BATCH_SIZE),
                )
                for index, email in enumerate(emails[start : start + 10])
            ]
            answer = sqs.send_message_batch(QueueUrl=queue, Entries=entries)
            assert not answer.get("Failed"), answer.get("Failed")
            ids.extend(item["MessageId"] for item in sorted(answer["Successful"], key=lambda i: int(i["Id"])))
        self.sent.extend(ids)
        return ids

    def send_raw(self, body: str, *, tenant: str = TENANT, classifier: str = CLASSIFIER) -> str:
        """A message from a producer that skips ``convclass.inbound`` (its body is not checked here)."""
        attributes = {
            "tenant": tenant,
            "classifier": classifier,
            "conversation_id": f"c-raw-{len(self.sent)}",
        }
        answer = self.client("sqs").send_message(
            QueueUrl=self.runtime.outputs.require("inbound_queue_url"),
            MessageBody=body,
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
        )
        self.sent.append(answer["MessageId"])
        return str(answer["MessageId"])

    def collect(self) -> None:
        """Drain the captured events and the inbound DLQ."""
        sqs = self.client("sqs")
        for url, sink in (
            (self.events_queue, "events"),
            (self.runtime.outputs.require("inbound_dlq_url"), "dlq"),
        ):
            while True:
                messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
                if not messages:
                    break
                for message in messages:
                    if sink == "events":
                        self.events.append(json.loads(message["Body"]))
                    else:
                        self.dlq.add(message["MessageId"])
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def outcomes(self) -> tuple[dict[str, set[str]], Counter[str]]:
        """Per message id, the distinct event ids published for it; and how often each event id was seen."""
        per_message: dict[str, set[str]] = {}
        seen: Counter[str] = Counter()
        for event in self.events:
            detail = event["detail"]
            if event["detail-type"] == EMAIL_CLASSIFIED:
                EmailClassified.model_validate(detail)
            else:
                EmailClassificationFailed.model_validate(detail)
            per_message.setdefault(detail["message_id"], set()).add(detail["event_id"])
            seen[detail["event_id"]] += 1
        return per_message, seen

    def settled(self) -> bool:
        per_message, _ = self.outcomes()
        return all(m in per_message or m in self.dlq for m in self.sent)

    def run_until(self, done: Callable[[InferenceStage], bool], timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.collect()
            if done(self):
                return
            time.sleep(0.1)
        raise TimeoutError(f"scenario did not settle in {timeout_s:.0f}s")

    def counts(self, scenario: str, started: float) -> InferenceCounts:
        self.collect()
        per_message, seen = self.outcomes()
        kinds = {e["detail"]["event_id"]: e["detail-type"] for e in self.events}
        sent = set(self.sent)
        classified = {m for m, ids in per_message.items() if any(kinds[i] == EMAIL_CLASSIFIED for i in ids)}
        failed = {
            m for m, ids in per_message.items() if any(kinds[i] == EMAIL_CLASSIFICATION_FAILED for i in ids)
        }
        return InferenceCounts(
            scenario=scenario,
            emails_sent=len(sent),
            emails_classified=len(classified & sent),
            emails_failed=len(failed & sent),
            emails_in_dlq=len(self.dlq & sent),
            emails_lost=len(sent - classified - failed - self.dlq),
            duplicate_events=sum(len(ids) - 1 for ids in per_message.values())
            + len(self.dlq & set(per_message)),
            redelivered_events=sum(count - 1 for count in seen.values()),
            seconds=round(time.monotonic() - started, 3),
        )


@contextmanager
def inference_stage(workdir: Path) -> Iterator[InferenceStage]:
    """A local deployment whose endpoint for (acme, support) is the real serving app, in this process."""
    endpoints = ServingEndpoints(limits=ServingLimits())
    endpoints.add(ENDPOINT)
    try:
        with LocalRuntime(workdir=workdir, persist=False) as runtime:
            moto_shims.update(invoke_endpoint=endpoints.invoke, time_scale=TIME_SCALE, sync_poll_seconds=0.05)
            sqs, bus_events = runtime.aws.client("sqs"), runtime.aws.client("events")
            sqs.set_queue_attributes(
                QueueUrl=runtime.outputs.require("inbound_queue_url"),
                Attributes={"VisibilityTimeout": str(VISIBILITY_TIMEOUT_S)},
            )
            url = sqs.create_queue(QueueName="scenario-inference-events")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            bus = runtime.outputs.require("event_bus_name")
            bus_events.put_rule(
                Name="scenario-inference-events",
                EventBusName=bus,
                EventPattern=json.dumps({"source": [INFERENCE_SOURCE]}),
            )
            bus_events.put_targets(
                Rule="scenario-inference-events", EventBusName=bus, Targets=[{"Id": "capture", "Arn": arn}]
            )
            yield InferenceStage(runtime=runtime, endpoints=endpoints, events_queue=url)
    finally:
        endpoints.close()


def _emails(n: int, **fields: Any) -> list[EmailIn]:
    return [
        EmailIn(
            subject=f"order {i}", body=f"<p>where is my order #{1000 + i}? it has not arrived</p>", **fields
        )
        for i in range(n)
    ]


def transient_endpoint(stage: InferenceStage, n: int = 12) -> InferenceCounts:
    """The endpoint throttles, is not ready, and its container fails a few times, then recovers; one email is
    bad input (the serving app refuses it). Every email is answered once; nothing reaches the DLQ."""
    started = time.monotonic()
    stage.endpoints.fail_next(
        "ThrottlingException",
        "ModelNotReadyException",
        CONTAINER_FAILURE,
        "ServiceUnavailable",
        CONTAINER_FAILURE,
        "InternalFailure",
    )
    stage.send(_emails(n))
    # The serving schema forbids unknown fields: the app answers 400, a final answer for this email.
    stage.send_raw(json.dumps({"body": "where is my order?", "content_type": "text/plain"}))
    stage.run_until(InferenceStage.settled)
    return stage.counts("transient_endpoint", started)


def failing_endpoint(stage: InferenceStage, n: int = 4) -> InferenceCounts:
    """The container fails every request: each email is returned to the queue until it moves to the DLQ."""
    started = time.monotonic()
    stage.endpoints.broken[ENDPOINT] = CONTAINER_FAILURE
    stage.send(_emails(n))
    stage.run_until(InferenceStage.settled)
    return stage.counts("failing_endpoint", started)


class _LosesFirstDelete:
    """An SQS client whose first DeleteMessageBatch response is lost: the Pipe's messages come back."""

    def __init__(self, sqs: Any) -> None:
        self._sqs, self.lost = sqs, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)

    def delete_message_batch(self, **kwargs: Any) -> Any:
        if self.lost == 0:
            self.lost += 1
            return {"Successful": [], "Failed": []}
        return self._sqs.delete_message_batch(**kwargs)


def redelivered_message(stage: InferenceStage, n: int = 3) -> InferenceCounts:
    """The Pipe classifies a batch but its delete is lost, so SQS delivers the batch again: the workflow
    publishes again under the same event ids, and a consumer that keeps the first per id sees each email
    once."""
    started = time.monotonic()
    pipe = stage.runtime.inbound_pipe
    pipe.sqs = _LosesFirstDelete(pipe.sqs)
    stage.send(_emails(n))
    stage.run_until(lambda s: s.settled() and max(s.outcomes()[1].values(), default=0) >= 2)
    return stage.counts("redelivered_message", started)


def largest_emails(stage: InferenceStage) -> InferenceCounts:
    """A full Pipe batch of emails at the producer's size limit (a body the Pipe must escape) fits one Step
    Functions input and is classified."""
    started = time.monotonic()
    limit = inbound_max_message_bytes(INBOUND_BATCH_SIZE)
    emails = []
    for i in range(INBOUND_BATCH_SIZE):
        text = f'<p class="q">order {i}: "where is it?"</p>\n'
        body = (text * (limit // len(text)))[: limit // 2]
        # Grow the body until the producer would refuse one more line: the largest email it accepts.
        while True:
            try:
                inbound_message(
                    entry_id="0",
                    tenant=TENANT,
                    classifier=CLASSIFIER,
                    conversation_id=f"c-{i}",
                    email=EmailIn(body=body + text),
                    max_bytes=limit,
                )
            except EmailTooLarge:
                break
            body += text
        emails.append(EmailIn(body=body))
    stage.send(emails)
    stage.run_until(InferenceStage.settled)
    return stage.counts("largest_emails", started)
