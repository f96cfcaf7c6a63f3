"""What every scenario shares: the embedded deployment, tenants' data, an observer of the bus, and the
counts `make bench-scenarios` reports (every scenario adds what it sent, saw classified, saw in a DLQ, …)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convclass.deployment import sse_kms
from convclass.events import INFERENCE_SOURCE, PIPELINE_SOURCE, DataSource, RunOptions, TrainingRunRequest
from convclass_local.runtime import LocalRuntime

#: Counts a scenario may add; bench_scenarios.py prints their totals.
COUNT_NAMES = (
    "emails_sent",
    "emails_classified",
    "emails_in_dlq",
    "emails_lost",
    "duplicate_events",
    "cross_tenant_leaks",
)
LABEL_FIELD = "intent"
#: Small and fast, as the CI-sized demo trains.
FAST_TRAINING = {"architecture": "cnn", "epochs": "3", "max_length": "48"}


@dataclass
class ScenarioCounts:
    """Thread-safe totals of a test session, written where CONVCLASS_SCENARIO_REPORT says."""

    totals: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **counts: int) -> None:
        unknown = set(counts) - set(COUNT_NAMES)
        if unknown:
            raise ValueError(f"unknown scenario counts: {sorted(unknown)}")
        with self._lock:
            self.totals.update(counts)

    def add_from(self, facts: object) -> None:
        """Add the counts an object (a scenario's result dataclass) carries as attributes."""
        self.add(**{name: int(getattr(facts, name)) for name in COUNT_NAMES if hasattr(facts, name)})

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return {name: int(self.totals.get(name, 0)) for name in COUNT_NAMES}


def drop_records(runtime: LocalRuntime, tenant: str, records: list[dict[str, Any]], tmp: Path) -> str:
    """Upload a tenant's labelled conversations for the ``files`` source; returns the source URI."""
    from convclass_local.generator import write_parquet

    local = tmp / f"{tenant}.parquet"
    write_parquet(records, local)
    key = f"sources/{tenant}/snapshot.parquet"
    runtime.aws.client("s3").upload_file(
        str(local), runtime.bucket, key, ExtraArgs=sse_kms(runtime.outputs.require("kms_key_arn"))
    )
    return f"s3://{runtime.bucket}/sources/{tenant}/"


class BusObserver:
    """An SQS queue subscribed to every convclass event on the deployment's bus."""

    def __init__(self, runtime: LocalRuntime, name: str) -> None:
        self._sqs = runtime.aws.client("sqs")
        events = runtime.aws.client("events")
        self.url = self._sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        bus = runtime.outputs.require("event_bus_name")
        events.put_rule(
            Name=name,
            EventBusName=bus,
            EventPattern=json.dumps({"source": [PIPELINE_SOURCE, INFERENCE_SOURCE]}),
        )
        events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "observer", "Arn": arn}])
        self.seen: list[dict[str, Any]] = []

    def drain(self) -> list[dict[str, Any]]:
        """Every event received so far (kept in ``seen``)."""
        while True:
            messages = self._sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                return self.seen
            for message in messages:
                self.seen.append(json.loads(message["Body"]))
                self._sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])

    def wait_for(
        self, done: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 120.0
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while not done(self.drain()) and time.monotonic() < deadline:
            time.sleep(0.2)
        return self.seen

    def of_type(self, *detail_types: str) -> list[dict[str, Any]]:
        return [event for event in self.seen if event.get("detail-type") in detail_types]


def tenant_records(tenant: str, prefix: str, n: int, seed: int) -> list[dict[str, Any]]:
    """Generated labelled conversations whose labels carry ``prefix``: a label shows whose model answered."""
    from convclass_local.generator import generate_emails

    records = generate_emails(n, seed=seed, tenant_id=tenant, label_field=LABEL_FIELD)
    for record in records:
        record["labels"][LABEL_FIELD] = prefix + record["labels"][LABEL_FIELD]
    return records


def local_request(
    tenant: str,
    classifier: str,
    uri: str,
    *,
    business_key: str,
    hyperparameters: dict[str, str] = FAST_TRAINING,
    label_field: str = LABEL_FIELD,
    **options: Any,
) -> TrainingRunRequest:
    """A run of the files the scenario dropped, sized for the local machine (extra ``options`` on top)."""
    return TrainingRunRequest(
        tenant=tenant,
        classifier=classifier,
        label_field=label_field,
        data_source=DataSource(kind="files", uri=uri),
        options=RunOptions(
            full_export=True,
            managed_spot=False,
            training_instance_type="ml.m5.xlarge",
            hyperparameters=hyperparameters,
            **options,
        ),
        business_key=business_key,
    )


def send_inbound(runtime: LocalRuntime, messages: Iterable[dict[str, Any]]) -> int:
    sqs, queue = runtime.aws.client("sqs"), runtime.outputs.require("inbound_queue_url")
    batch: list[dict[str, Any]] = []
    sent = 0
    for message in messages:
        batch.append(message)
        if len(batch) == 10:
            sqs.send_message_batch(QueueUrl=queue, Entries=batch)
            sent, batch = sent + len(batch), []
    if batch:
        sqs.send_message_batch(QueueUrl=queue, Entries=batch)
        sent += len(batch)
    return sent


def wait_execution(runtime: LocalRuntime, arn: str, timeout_s: float = 300.0) -> dict[str, Any]:
    sfn = runtime.aws.client("stepfunctions")
    deadline = time.monotonic() + timeout_s
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.25)
