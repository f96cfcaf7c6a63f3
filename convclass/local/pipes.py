"""The inbound-email Pipe of a local deployment: SQS batches → the inference workflow, as EventBridge Pipes
does.

A Pipe from SQS to an Express workflow reads up to a batch of messages, starts the workflow synchronously with
the batch as its input (the Pipe's SQS record shape) and deletes the messages only when the workflow
succeeded, so a failed batch is received again and reaches the dead-letter queue after the queue's
``maxReceiveCount``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any


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

    def run_batch(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """Start the workflow for one batch, wait for it, delete the messages if it succeeded."""
        self._batches += 1
        records = [self._record(message) for message in messages]
        arn = self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn,
            name=f"inbound-{int(time.time() * 1000)}-{self._batches}",
            input=json.dumps(records),
        )["executionArn"]
        deadline = time.monotonic() + self.execution_timeout_s
        described: dict[str, Any] = self.sfn.describe_execution(executionArn=arn)
        while described["status"] == "RUNNING" and time.monotonic() < deadline and not self._stop.is_set():
            time.sleep(0.05)
            described = self.sfn.describe_execution(executionArn=arn)
        if described["status"] == "SUCCEEDED":
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(messages)
                ],
            )
        return described

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        """One message as a Pipe hands it to its target (the Lambda/Pipes SQS record format)."""
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
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.region,
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
