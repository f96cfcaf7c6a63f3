"""The feedback loop against AWS: capture events, evaluate a classifier, start its retraining.

Used by the feedback Lambda (``functions/feedback``), the ``convclass feedback`` command and the benchmark.
The deployed model is the one ``champion.json`` names: its test accuracy is the agreement baseline, its
dataset manifest gives the training label distribution, and its execution's input is the request an
automatic run repeats (with a feedback business key and a reason).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from convclass import layout
from convclass.dataset.manifest import DatasetManifest
from convclass.deployment import sse_kms
from convclass.events import ChampionRecord, TrainingRunRequest, execution_name
from convclass.feedback.events import (
    FEEDBACK_SOURCE,
    NEEDS_REVIEW,
    EmailNeedsReview,
    FeedbackRecord,
    PredictionRecord,
    needs_review,
    parse_event,
)
from convclass.feedback.metrics import Agreement, Drift, agreement, drift, final_labels
from convclass.feedback.policy import (
    Evidence,
    RetrainingPolicy,
    reasons,
    retraining_request,
    waiting_for,
)
from convclass.feedback.store import FeedbackStore


class PublishFailed(RuntimeError):
    """EventBridge did not accept an event (the record goes back to the queue and is retried)."""


@dataclass(frozen=True)
class Captured:
    record: FeedbackRecord
    #: False when the event had been stored before (a redelivery): nothing was written.
    stored: bool
    review: EmailNeedsReview | None


class DeployedRun(BaseModel):
    """What evaluation needs of the deployed run; kept under ``feedback/deployed/`` so it outlives the run's
    dataset (which expires) and its execution history (kept 90 days)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str
    request: TrainingRunRequest
    #: Training split of the run's dataset: label → examples (its keys are the labels the model knows).
    training_counts: dict[str, int]


@dataclass(frozen=True)
class Deployed:
    champion: ChampionRecord
    run: DeployedRun

    @property
    def training_counts(self) -> dict[str, int]:
        return self.run.training_counts

    @property
    def request(self) -> TrainingRunRequest:
        return self.run.request


@dataclass(frozen=True)
class Status:
    tenant: str
    classifier: str
    window_start: datetime
    window_end: datetime
    deployed: Deployed
    evidence: Evidence
    #: The rules that fire now.
    reasons: list[str]
    #: Unknown labels the rules wait for (no automatic run starts while this is not empty).
    waiting: list[str] = field(default_factory=list)

    @property
    def agreement(self) -> Agreement:
        return self.evidence.agreement

    @property
    def drift(self) -> Drift:
        return self.evidence.drift


@dataclass(frozen=True)
class Decision:
    status: Status | None
    #: The automatic run's request when a rule fired (None otherwise).
    request: TrainingRunRequest | None = None
    execution_name: str | None = None
    #: True when the request was sent to the training queue now; False when nothing fired or the run for
    #: today already exists.
    sent: bool = False


def policy_key(tenant: str, classifier: str) -> str:
    return f"{tenant}/{classifier}"


@dataclass
class FeedbackLoop:
    s3: Any
    bucket: str
    kms_key_arn: str
    sfn: Any = None
    sqs: Any = None
    events: Any = None
    training_state_machine_arn: str = ""
    training_queue_url: str = ""
    event_bus_name: str = ""
    #: ``tenant/classifier`` → its policy; every other classifier gets ``default_policy``.
    policies: Mapping[str, RetrainingPolicy] = field(default_factory=dict)
    default_policy: RetrainingPolicy = field(default_factory=RetrainingPolicy)
    #: Keep what evaluation needs of the deployed run under ``feedback/deployed/`` when it is not kept yet;
    #: False for readers that may not write (the console).
    keep_deployed: bool = True

    @property
    def store(self) -> FeedbackStore:
        return FeedbackStore(self.s3, self.bucket, self.kms_key_arn)

    def policy(self, tenant: str, classifier: str) -> RetrainingPolicy:
        return self.policies.get(policy_key(tenant, classifier), self.default_policy)

    # --- capture --------------------------------------------------------------------------------------------
    def capture(self, body: str) -> Captured:
        """Store one bus event; a low-confidence prediction is also published as Email Needs Review.

        The review request goes out before the row is stored, so a failure in between is retried as a
        whole; a redelivered prediction asks again under the same event id, which the host product uses to
        drop the repeat (EventBridge delivers at least once anyway).
        """
        record = parse_event(body)
        store = self.store
        review = None
        if isinstance(record, PredictionRecord):
            review = needs_review(record, self.policy(record.tenant, record.classifier).review_threshold)
            if review is not None:
                self.publish_review(review)
        return Captured(record, stored=store.put(record), review=review)

    def publish_review(self, review: EmailNeedsReview) -> None:
        response = self.events.put_events(
            Entries=[
                {
                    "Source": FEEDBACK_SOURCE,
                    "DetailType": NEEDS_REVIEW,
                    "Detail": review.model_dump_json(),
                    "EventBusName": self.event_bus_name,
                }
            ]
        )
        if response.get("FailedEntryCount", 0):
            raise PublishFailed(
                f"EventBridge rejected {NEEDS_REVIEW}: {response['Entries'][0].get('ErrorCode')}"
            )

    # --- evaluation -----------------------------------------------------------------------------------------
    def deployed(self, tenant: str, classifier: str) -> Deployed | None:
        """The model behind the endpoint, or None when none was deployed yet."""
        where = layout.ClassifierLayout(tenant, classifier)
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=where.champion_key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None
        champion = ChampionRecord.model_validate_json(body)
        key = where.feedback_deployed_key(champion.run_id)
        try:
            kept = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            return Deployed(champion, DeployedRun.model_validate_json(kept))
        except self.s3.exceptions.NoSuchKey:
            pass
        manifest = DatasetManifest.model_validate_json(
            self.s3.get_object(Bucket=self.bucket, Key=where.dataset_manifest_key(champion.run_id))[
                "Body"
            ].read()
        )
        described = self.sfn.describe_execution(executionArn=champion.execution)
        run = DeployedRun(
            run_id=champion.run_id,
            request=TrainingRunRequest.model_validate_json(described["input"]),
            training_counts=dict(manifest.split_counts["train"]),
        )
        if self.keep_deployed:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=run.model_dump_json(),
                ContentType="application/json",
                **sse_kms(self.kms_key_arn),
            )
        return Deployed(champion, run)

    def status(self, tenant: str, classifier: str, now: datetime) -> Status | None:
        deployed = self.deployed(tenant, classifier)
        if deployed is None:
            return None
        policy = self.policy(tenant, classifier)
        live_since = datetime.fromisoformat(deployed.champion.deployed_at)
        if live_since.tzinfo is None:
            live_since = live_since.replace(tzinfo=UTC)
        start = max(live_since, now - timedelta(days=policy.window_days))
        predictions, confirmations = self.store.since(tenant, classifier, start, now)
        evidence = Evidence(
            new_confirmations=len(final_labels(confirmations)),
            agreement=agreement(predictions, confirmations),
            drift=drift(deployed.training_counts, predictions, confirmations),
            deployed_accuracy=deployed.champion.metrics.accuracy,
        )
        return Status(
            tenant,
            classifier,
            start,
            now,
            deployed,
            evidence,
            reasons(policy, evidence),
            waiting_for(policy, evidence, now),
        )

    def evaluate(self, tenant: str, classifier: str, now: datetime) -> Decision:
        """Apply the policy; when a rule fires and no new label is awaited, queue one training request
        (unless today's run exists)."""
        status = self.status(tenant, classifier, now)
        if status is None or status.waiting:
            return Decision(status=status)
        request = retraining_request(status.deployed.request, status.reasons, now.date())
        if request is None:
            return Decision(status=status)
        name = execution_name(request)
        if self._execution_exists(name):
            return Decision(status, request, name, sent=False)
        self.sqs.send_message(QueueUrl=self.training_queue_url, MessageBody=request.model_dump_json())
        return Decision(status, request, name, sent=True)

    def _execution_exists(self, name: str) -> bool:
        arn = self.training_state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"
        try:
            self.sfn.describe_execution(executionArn=arn)
        except self.sfn.exceptions.ExecutionDoesNotExist:
            return False
        return True


def policies_from_json(text: str | None) -> dict[str, RetrainingPolicy]:
    """``{"tenant/classifier": {...policy fields...}}`` (the Lambda's policy variable) → policies."""
    if not text:
        return {}
    return {key: RetrainingPolicy.model_validate(value) for key, value in json.loads(text).items()}


def status_report(status: Status) -> dict[str, Any]:
    """A JSON-ready summary of ``status`` (what ``convclass feedback --json`` prints)."""
    found, shift = status.agreement, status.drift
    return {
        "tenant": status.tenant,
        "classifier": status.classifier,
        "window": [status.window_start.isoformat(), status.window_end.isoformat()],
        "deployed": {
            "run_id": status.deployed.champion.run_id,
            "test_accuracy": status.deployed.champion.metrics.accuracy,
            "deployed_at": status.deployed.champion.deployed_at,
        },
        "confirmations": found.confirmations,
        "matched": found.matched,
        "top1": found.top1,
        "top3": found.top3,
        "per_label": {
            label: {
                "precision": q.precision,
                "recall": q.recall,
                "predicted": q.predicted,
                "confirmed": q.confirmed,
            }
            for label, q in found.per_label.items()
        },
        "coverage": [
            {"threshold": c.threshold, "share": c.share, "accuracy": c.accuracy, "count": c.count}
            for c in found.coverage
        ],
        "drift": {
            "predictions": shift.predictions,
            "psi": shift.psi,
            "band": shift.band,
            "unknown_labels": shift.unknown_labels,
            "daily_top1": [[day.isoformat(), value] for day, value in shift.daily_top1],
            "top1_trend_points_per_day": shift.top1_trend_points_per_day,
        },
        "reasons": status.reasons,
        "waiting": status.waiting,
    }
