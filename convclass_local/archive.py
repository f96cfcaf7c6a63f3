"""The inference-event archive of a local deployment, as the deployed EventBridge rule → Firehose does.

A queue subscribed to the bus receives every ``Email Classified`` / ``Email Classification Failed`` event;
a background thread writes them to the data bucket per tenant, classifier and day with
:func:`convclass.console.inference.archive_events`, where the console's inference page reads them.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from convclass.console.inference import archive_events
from convclass.events import EMAIL_CLASSIFICATION_FAILED, EMAIL_CLASSIFIED, INFERENCE_SOURCE
from convclass.layout import stack_resource_name

RULE = "inference-archive"


@dataclass
class InferenceArchive:
    sqs: Any
    s3: Any
    bucket: str
    kms_key_arn: str
    queue_url: str
    poll_s: float = 0.3
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    archived: int = 0

    @classmethod
    def create(
        cls, clients: dict[str, Any], *, stack: str, bus: str, bucket: str, kms_key_arn: str
    ) -> InferenceArchive:
        """Subscribe a queue to the bus's inference events (the local stand-in for the Firehose rule)."""
        sqs, events = clients["sqs"], clients["events"]
        name = stack_resource_name(stack, RULE)
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(
            Name=name,
            EventBusName=bus,
            EventPattern=json.dumps(
                {"source": [INFERENCE_SOURCE], "detail-type": [EMAIL_CLASSIFIED, EMAIL_CLASSIFICATION_FAILED]}
            ),
        )
        events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "archive", "Arn": arn}])
        return cls(sqs=sqs, s3=clients["s3"], bucket=bucket, kms_key_arn=kms_key_arn, queue_url=str(url))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="convclass-inference-archive", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.drain()  # what arrived since the last poll

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self.drain():
                self._stop.wait(self.poll_s)

    def drain(self) -> int:
        """Archive what the queue holds now; returns how many messages were handled."""
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            return 0
        events = []
        for message in messages:
            try:
                events.append(json.loads(message["Body"]))
            except (KeyError, json.JSONDecodeError):
                continue
        self.archived += archive_events(self.s3, self.bucket, events, kms_key_arn=self.kms_key_arn)
        self.sqs.delete_message_batch(
            QueueUrl=self.queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
        return len(messages)
