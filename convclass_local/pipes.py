"""Queue consumers of a local deployment: the inbound-email Pipe (SQS batches → the inference workflow, as
EventBridge Pipes does) and the Lambda event source mappings (SQS batches → a function).

A Pipe from SQS to an Express workflow reads up to a batch of messages, starts the workflow synchronously with
the batch as its input (the Pipe's SQS record shape) and then, as the real Pipe does:

* the execution failed (or its input was over the Step Functions limit): no message is deleted;
* it succeeded and its output is a partial batch response, ``{"batchItemFailures": [{"itemIdentifier":
  <messageId>}, ...]}``: every message except those is deleted;
* it succeeded without ``batchItemFailures`` (or with an empty list): every message is deleted;
* a malformed response (an item that is not ``{"itemIdentifier": <an id of this batch>}``) fails the batch.

A message that is not deleted becomes visible again after the queue's visibility timeout and reaches the
dead-letter queue after its ``maxReceiveCount``.

An event source mapping (:class:`QueueFunctionSource`) polls on its own thread, as Lambda's pollers do,
gathers up to ``batch_size`` messages for at most ``window_s`` and invokes the function through the Lambda
API with the batch; a function error leaves every message, a partial batch response the ones it names.
moto's own mappings invoke the function inside the ``SendMessage`` call, so a function that sends to another
mapped queue (the feedback function queueing a training request for the starter) would wait on itself.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from convclass.events import STEP_FUNCTIONS_MAX_INPUT_BYTES

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchOutcome:
    """What the Pipe did with one batch: the execution, and the message ids it deleted or left."""

    execution: dict[str, Any]
    deleted: tuple[str, ...]
    returned: tuple[str, ...]


@dataclass
class InboundPipe:
    """Polls the inbound queue on a background thread and runs one inference execution per batch."""

    sqs: Any
    sfn: Any
    queue_url: str
    queue_arn: str
    region: str
    state_machine_arn: str
    batch_size: int = 10
    poll_s: float = 0.2
    execution_timeout_s: float = 300.0
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _batches: int = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="convclass-inbound-pipe", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.execution_timeout_s)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=self.batch_size,
                WaitTimeSeconds=0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                self._stop.wait(self.poll_s)
                continue
            self.run_batch(messages)

    def run_batch(self, messages: list[dict[str, Any]]) -> BatchOutcome:
        """Start the workflow for one batch, wait for it, delete the messages it did not report as failed."""
        self._batches += 1
        records = [sqs_record(message, self.queue_arn, self.region) for message in messages]
        ids = [message["MessageId"] for message in messages]
        payload = json.dumps(records, ensure_ascii=False)
        if len(payload.encode()) > STEP_FUNCTIONS_MAX_INPUT_BYTES:
            _log.error("inbound batch of %d messages is over the Step Functions input limit", len(messages))
            return BatchOutcome({"status": "NOT_STARTED"}, (), tuple(ids))
        arn = self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn,
            name=f"inbound-{int(time.time() * 1000)}-{self._batches}",
            input=payload,
        )["executionArn"]
        deadline = time.monotonic() + self.execution_timeout_s
        described: dict[str, Any] = self.sfn.describe_execution(executionArn=arn)
        while described["status"] == "RUNNING" and time.monotonic() < deadline and not self._stop.is_set():
            time.sleep(0.05)
            described = self.sfn.describe_execution(executionArn=arn)
        failed = _failed_items(described, set(ids))
        done = [message for message in messages if message["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(done)
                ],
            )
        return BatchOutcome(
            described,
            tuple(m["MessageId"] for m in done),
            tuple(i for i in ids if i in failed),
        )


@dataclass
class QueueFunctionSource:
    """A Lambda event source mapping (SQS → function, partial batch responses) on a background thread."""

    sqs: Any
    lam: Any
    queue_url: str
    queue_arn: str
    region: str
    function_name: str
    batch_size: int = 10
    window_s: float = 0.0
    poll_s: float = 0.2
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name=f"convclass-source-{self.function_name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 120.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            messages = self._gather()
            if not messages:
                self._stop.wait(self.poll_s)
                continue
            try:
                self.run_batch(messages)
            except Exception:  # the messages come back after their visibility timeout, as on AWS
                _log.exception("event source of %s failed a batch", self.function_name)

    def _gather(self) -> list[dict[str, Any]]:
        """Up to ``batch_size`` messages, waiting at most ``window_s`` for more after the first."""
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + self.window_s
        while len(found) < self.batch_size and not self._stop.is_set():
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.batch_size - len(found)),
                WaitTimeSeconds=0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            found += messages
            if not found:
                return found
            if not messages:
                if time.monotonic() >= deadline:
                    break
                self._stop.wait(min(self.poll_s, max(0.0, deadline - time.monotonic())))
        return found

    def run_batch(self, messages: list[dict[str, Any]]) -> BatchOutcome:
        """Invoke the function with one batch; delete what it did not report as failed."""
        ids = [message["MessageId"] for message in messages]
        records = [sqs_record(message, self.queue_arn, self.region) for message in messages]
        response = self.lam.invoke(FunctionName=self.function_name, Payload=json.dumps({"Records": records}))
        output = response["Payload"].read()
        outcome = {"status": "FAILED" if response.get("FunctionError") else "SUCCEEDED", "output": output}
        failed = _failed_items(outcome, set(ids))
        done = [message for message in messages if message["MessageId"] not in failed]
        for first in range(0, len(done), 10):
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(done[first : first + 10])
                ],
            )
        return BatchOutcome(
            outcome, tuple(m["MessageId"] for m in done), tuple(i for i in ids if i in failed)
        )


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One received message as Pipes and Lambda hand it to their target (the SQS event record format)."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: _record_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def _record_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """SQS API attribute (``StringValue``, ``DataType``) → event record attribute (``stringValue``,
    ``dataType``)."""
    return {
        "stringValue": value.get("StringValue"),
        "binaryValue": value.get("BinaryValue"),
        "stringListValues": value.get("StringListValues", []),
        "binaryListValues": value.get("BinaryListValues", []),
        "dataType": value.get("DataType", "String"),
    }


def _failed_items(described: dict[str, Any], ids: set[str]) -> set[str]:
    """The message ids left on the queue after this execution or invocation (all of them unless it
    succeeded)."""
    if described["status"] != "SUCCEEDED":
        return ids
    try:
        output = json.loads(described.get("output") or "null")
    except json.JSONDecodeError:
        return ids
    if not isinstance(output, dict) or not output.get("batchItemFailures"):
        return set()
    items = output["batchItemFailures"]
    if not isinstance(items, list):
        return ids
    failed = {item.get("itemIdentifier") if isinstance(item, dict) else None for item in items}
    return {str(item) for item in failed} if failed <= ids else ids
