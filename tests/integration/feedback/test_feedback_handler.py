"""The feedback Lambda's real handler against moto: capture, reviews, isolation and automatic runs."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest
from feedback_support import (
    EMAIL_TEXT,
    classified_event,
    confirmed_event,
    deploy,
    deployed_request,
    sqs_event,
)
from moto import mock_aws

from convclass import layout
from convclass.deployment import (
    DATA_BUCKET_ENV,
    EVENT_BUS_ENV,
    FEEDBACK_POLICIES_ENV,
    KMS_KEY_ENV,
    TRAINING_QUEUE_URL_ENV,
    TRAINING_STATE_MACHINE_ENV,
)
from convclass.events import TrainingRunRequest
from convclass.feedback.events import FEEDBACK_SOURCE, NEEDS_REVIEW
from convclass.feedback.store import STORED_COLUMNS, FeedbackStore
from functions.feedback import handler as feedback
from functions.starter import handler as starter

BUCKET = "convclass-test-data"
DAY = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
TRAIN_COUNTS = {"billing": 60, "delivery": 30, "refund": 10}
#: Small thresholds so a test batch can cross them; the unknown-label rule needs 10 conversations.
POLICY = {
    "min_new_confirmations": 1000,
    "min_matched_for_agreement": 1000,
    "min_predictions_for_drift": 1000,
    "min_unknown_label_conversations": 10,
    "review_threshold": 0.5,
}


@dataclass
class _Context:
    function_name: str = "convclass-test-feedback"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:convclass-test-feedback"
    aws_request_id: str = "req-1"


@dataclass
class Stack:
    s3: Any
    sqs: Any
    sfn: Any
    kms_key_arn: str
    training_queue_url: str
    reviews_url: str
    state_machine_arn: str

    def handle(self, *bodies: str) -> dict[str, Any]:
        return feedback.handler(sqs_event(*bodies), _Context())  # type: ignore[no-any-return]

    def queued_requests(self) -> list[TrainingRunRequest]:
        messages = self.sqs.receive_message(QueueUrl=self.training_queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        return [TrainingRunRequest.model_validate_json(m["Body"]) for m in messages]

    def start_queued(self) -> dict[str, Any]:
        """Hand the queued requests to the real starter Lambda, as the queue's event source does."""
        messages = self.sqs.receive_message(QueueUrl=self.training_queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        return starter.handler(sqs_event(*(m["Body"] for m in messages)), _Context())  # type: ignore[no-any-return]

    def executions(self) -> list[dict[str, Any]]:
        found = self.sfn.list_executions(stateMachineArn=self.state_machine_arn)["executions"]
        return [e for e in found if "feedback" in e["name"]]

    def reviews(self) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(QueueUrl=self.reviews_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        return [json.loads(m["Body"]) for m in messages]

    def objects(self, prefix: str = layout.TENANTS_ROOT) -> list[str]:
        return [o["Key"] for o in self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]

    def rows(self, tenant: str, classifier: str = "intent") -> list[str]:
        where = layout.ClassifierLayout(tenant, classifier)
        return [
            key for kind in layout.FEEDBACK_KINDS for key in self.objects(where.feedback_kind_prefix(kind))
        ]


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch, fake_aws_credentials: None) -> Iterator[Stack]:
    with mock_aws():
        s3, sqs, sfn = boto3.client("s3"), boto3.client("sqs"), boto3.client("stepfunctions")
        events = boto3.client("events")
        key = boto3.client("kms").create_key()["KeyMetadata"]["Arn"]
        s3.create_bucket(Bucket=BUCKET)
        training_url = sqs.create_queue(QueueName="training-requests")["QueueUrl"]
        reviews_url = sqs.create_queue(QueueName="reviews")["QueueUrl"]
        reviews_arn = sqs.get_queue_attributes(QueueUrl=reviews_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        events.create_event_bus(Name="convclass-test")
        events.put_rule(
            Name="reviews",
            EventBusName="convclass-test",
            EventPattern=json.dumps({"source": [FEEDBACK_SOURCE], "detail-type": [NEEDS_REVIEW]}),
        )
        events.put_targets(
            Rule="reviews", EventBusName="convclass-test", Targets=[{"Id": "q", "Arn": reviews_arn}]
        )
        role = boto3.client("iam").create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        wait = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}}
        machine = sfn.create_state_machine(name="training", definition=json.dumps(wait), roleArn=role)
        arn = machine["stateMachineArn"]
        for tenant in ("acme", "globex"):
            deployed = sfn.start_execution(
                stateMachineArn=arn,
                name=f"{tenant}--intent--first",
                input=deployed_request(tenant).model_dump_json(),
            )
            deploy(
                s3,
                BUCKET,
                key,
                tenant=tenant,
                execution_arn=deployed["executionArn"],
                accuracy=0.9,
                train_counts=TRAIN_COUNTS,
            )
        for name, value in {
            DATA_BUCKET_ENV: BUCKET,
            KMS_KEY_ENV: key,
            TRAINING_QUEUE_URL_ENV: training_url,
            EVENT_BUS_ENV: "convclass-test",
            TRAINING_STATE_MACHINE_ENV: arn,
            FEEDBACK_POLICIES_ENV: json.dumps({"acme/intent": POLICY, "globex/intent": POLICY}),
        }.items():
            monkeypatch.setenv(name, value)
        feedback._loop.cache_clear()
        starter._stepfunctions.cache_clear()
        yield Stack(s3, sqs, sfn, key, training_url, reviews_url, arn)
        feedback._loop.cache_clear()
        starter._stepfunctions.cache_clear()


def test_capture_is_idempotent_under_redelivery(stack: Stack) -> None:
    prediction = classified_event("acme", "c1", [("refund", 0.4), ("billing", 0.35)], DAY)
    confirmation = confirmed_event("acme", "c1", "refund", DAY + timedelta(hours=1))
    assert stack.handle(prediction, confirmation, prediction) == {"batchItemFailures": []}
    assert stack.handle(confirmation, prediction) == {"batchItemFailures": []}
    assert len(stack.rows("acme")) == 2  # one object per event
    prefix = layout.ClassifierLayout("acme", "intent").feedback_kind_prefix("predictions")
    versions = stack.s3.list_object_versions(Bucket=BUCKET, Prefix=prefix).get("Versions", [])
    assert len(versions) == 1  # a redelivery writes nothing, not even a new version
    store = FeedbackStore(stack.s3, BUCKET, stack.kms_key_arn)
    assert len(store.predictions("acme", "intent", [DAY.date()])) == 1
    assert len(store.confirmations("acme", "intent", [DAY.date()])) == 1
    # The low-confidence prediction asked for review on every delivery, always under its own event id, so
    # the host product keeps one.
    reviews = stack.reviews()
    assert len(reviews) == 3
    assert {r["detail-type"] for r in reviews} == {NEEDS_REVIEW}
    assert {r["detail"]["event_id"] for r in reviews} == {"ev-acme-c1"}
    assert {r["detail"]["threshold"] for r in reviews} == {0.5}


def test_stored_rows_hold_ids_and_labels_only(stack: Stack) -> None:
    stack.handle(
        classified_event("acme", "c1", [("refund", 0.9)], DAY),
        confirmed_event("acme", "c1", "refund", DAY + timedelta(hours=1)),
    )
    keys = stack.rows("acme")
    assert len(keys) == 2
    for key in keys:
        body = stack.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        kind = key.split("/feedback/")[1].split("/")[0]
        assert tuple(pq.read_table(io.BytesIO(body)).column_names) == STORED_COLUMNS[kind]
        assert not {"body", "subject", "text"} & set(STORED_COLUMNS[kind])
        assert b"IBAN" not in body
        assert EMAIL_TEXT.encode() not in body
        tags = stack.s3.get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"]
        assert tags == [{"Key": "convclass-area", "Value": "feedback"}]


def test_invalid_events_fail_alone(stack: Stack) -> None:
    good = confirmed_event("acme", "c1", "refund", DAY)
    bad = confirmed_event("acme", "c2", "refund", DAY).replace("agent-42", "jane@example.com")
    assert stack.handle(bad, good) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert len(stack.rows("acme")) == 1


def test_a_second_tenant_neither_reads_nor_changes_the_first_ones_feedback(stack: Stack) -> None:
    stack.handle(
        classified_event("acme", "c1", [("refund", 0.9)], DAY),
        confirmed_event("acme", "c1", "refund", DAY + timedelta(hours=1)),
        # globex uses the same conversation id and disagrees
        classified_event("globex", "c1", [("billing", 0.9)], DAY),
        confirmed_event("globex", "c1", "delivery", DAY + timedelta(hours=2)),
    )
    store = FeedbackStore(stack.s3, BUCKET, stack.kms_key_arn)
    assert [c.label for c in store.confirmations("globex", "intent", [DAY.date()])] == ["delivery"]
    assert [c.label for c in store.confirmations("acme", "intent", [DAY.date()])] == ["refund"]
    for key in stack.rows("globex"):
        assert key.startswith("tenants/globex/")
    # A row planted under acme's prefix that names globex is not read as acme's.
    planted = stack.objects(
        layout.ClassifierLayout("globex", "intent").feedback_kind_prefix("confirmations")
    )[0]
    target = planted.replace("tenants/globex/", "tenants/acme/")
    stack.s3.copy_object(Bucket=BUCKET, Key=target, CopySource={"Bucket": BUCKET, "Key": planted})
    assert [c.label for c in store.confirmations("acme", "intent", [DAY.date()])] == ["refund"]
    acme = feedback._loop().status("acme", "intent", DAY + timedelta(hours=3))
    assert acme is not None
    assert (acme.agreement.matched, acme.agreement.top1) == (1, 1.0)


def test_unknown_labels_start_exactly_one_run_with_the_reason(stack: Stack) -> None:
    nine = [confirmed_event("acme", f"n{i}", "crypto", DAY + timedelta(minutes=i)) for i in range(9)]
    stack.handle(*nine)
    assert stack.queued_requests() == []  # below the threshold: nothing
    stack.handle(confirmed_event("acme", "n9", "crypto", DAY + timedelta(minutes=9)))
    assert stack.start_queued() == {"batchItemFailures": []}
    (run,) = stack.executions()
    assert run["name"] == layout.training_execution_name("acme", "intent", "feedback-2026-12-01")
    request = TrainingRunRequest.model_validate_json(
        stack.sfn.describe_execution(executionArn=run["executionArn"])["input"]
    )
    assert request.reason == "unknown-labels: crypto (10)"
    assert request.data_source == deployed_request("acme").data_source
    # More evidence the same day finds today's run and queues nothing.
    stack.handle(confirmed_event("acme", "n10", "crypto", DAY + timedelta(minutes=10)))
    assert stack.queued_requests() == []
    assert len(stack.executions()) == 1
    # globex saw nothing of it.
    assert feedback._loop().evaluate("globex", "intent", DAY + timedelta(hours=1)).request is None


def test_major_drift_starts_a_run(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    policy = {**POLICY, "min_predictions_for_drift": 20}
    monkeypatch.setenv(FEEDBACK_POLICIES_ENV, json.dumps({"acme/intent": policy}))
    feedback._loop.cache_clear()
    # Trained on 10 % refund; now every prediction is refund. 3 known labels x 20 = 60 predictions needed.
    stack.handle(*(classified_event("acme", f"d{i}", [("refund", 0.9)], DAY) for i in range(59)))
    assert stack.queued_requests() == []
    stack.handle(classified_event("acme", "d59", [("refund", 0.9)], DAY))
    (request,) = stack.queued_requests()
    assert request.reason is not None
    assert request.reason.startswith("major-drift: PSI ")


def test_a_thin_new_label_holds_the_run_until_its_wait_ends(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = {**POLICY, "min_predictions_for_drift": 20, "new_label_wait_days": 1}
    monkeypatch.setenv(FEEDBACK_POLICIES_ENV, json.dumps({"acme/intent": policy}))
    feedback._loop.cache_clear()
    # Major drift over 60 predictions, but "crypto" (3 of 10 confirmations) is awaited: no run.
    stack.handle(*(confirmed_event("acme", f"d{i}", "crypto", DAY) for i in range(3)))
    stack.handle(*(classified_event("acme", f"d{i}", [("refund", 0.9)], DAY) for i in range(60)))
    assert stack.queued_requests() == []
    waiting = feedback._loop().status("acme", "intent", DAY + timedelta(hours=1))
    assert waiting is not None
    assert [w.split(" (")[0] for w in waiting.waiting] == ["new-label: crypto"]
    # A day after crypto's first confirmation the wait is over: the drift rule starts the run.
    stack.handle(classified_event("acme", "d60", [("refund", 0.9)], DAY + timedelta(days=1, minutes=1)))
    (request,) = stack.queued_requests()
    assert request.business_key == "feedback-2026-12-02"
    assert request.reason is not None
    assert request.reason.startswith("major-drift: PSI ")


def test_a_classifier_without_a_deployed_model_is_captured_and_never_retrained(stack: Stack) -> None:
    events = [confirmed_event("acme", f"x{i}", "crypto", DAY, classifier="routing") for i in range(12)]
    assert stack.handle(*events) == {"batchItemFailures": []}
    assert len(stack.rows("acme", "routing")) == 12
    assert feedback._loop().evaluate("acme", "routing", DAY).status is None
    assert stack.queued_requests() == []


def test_evaluation_keeps_what_it_needs_of_the_deployed_run(stack: Stack) -> None:
    """The dataset manifest expires and execution history ends: the loop keeps request and label counts."""
    stack.handle(confirmed_event("acme", "c1", "refund", DAY))
    where = layout.ClassifierLayout("acme", "intent")
    kept = json.loads(
        stack.s3.get_object(Bucket=BUCKET, Key=where.feedback_deployed_key("run-1"))["Body"].read()
    )
    assert kept["training_counts"] == TRAIN_COUNTS
    assert TrainingRunRequest.model_validate(kept["request"]) == deployed_request("acme")
    stack.s3.delete_object(Bucket=BUCKET, Key=where.dataset_manifest_key("run-1"))
    status = feedback._loop().status("acme", "intent", DAY + timedelta(hours=1))
    assert status is not None
    assert status.deployed.training_counts == TRAIN_COUNTS
