"""When feedback starts a training run by itself, and the request it sends.

Every rule looks only at feedback captured since the deployed model went live, so a fresh model starts
with a clean slate. When any rule fires, one ``TrainingRunRequest`` goes through the training-request queue
like every other trigger; its business key is ``feedback-<day>`` (one automatic run per classifier and day
at most, however often the policy is evaluated) and its ``reason`` names the rules that fired.

A label the model does not know is worth waiting for: a run started while it has a handful of
confirmations drops it (under preprocessing's ``min_examples_per_label``) or learns it from too few examples,
and the next automatic run then needs fresh evidence against the new model. So while such a label is still
under ``min_unknown_label_conversations``, the rules that fired wait (:func:`waiting_for`), at most
``new_label_wait_days`` after its first confirmation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from convclass.events import TrainingRunRequest
from convclass.feedback.metrics import Agreement, Drift

BUSINESS_KEY_PREFIX = "feedback-"


class RetrainingPolicy(BaseModel):
    """Per-classifier thresholds; every default is what a classifier gets without asking.

    The stack config sets them per classifier (``feedback:`` with camelCase keys, like the rest of it).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)

    #: Retrain once this many conversations were confirmed since the deployed model went live.
    min_new_confirmations: int = Field(default=1000, ge=1)
    #: Retrain when top-1 agreement is this many points under the deployed model's test accuracy …
    agreement_drop_points: float = Field(default=5.0, gt=0, le=100)
    #: … measured over at least this many confirmed conversations that have a prediction.
    min_matched_for_agreement: int = Field(default=200, ge=1)
    #: Retrain when the PSI of predicted labels is major (> 0.25) over at least this many predictions, and at
    #: least ``min_predictions_per_label_for_drift`` per label the model knows: sampling noise alone gives a
    #: PSI of about (labels - 1) / predictions, more when labels are never predicted (each then counts with
    #: PSI's epsilon), so 300 in-distribution predictions over 76 labels measured 0.38, "major".
    retrain_on_major_drift: bool = True
    min_predictions_for_drift: int = Field(default=200, ge=1)
    min_predictions_per_label_for_drift: int = Field(default=20, ge=0)
    #: Retrain when a label the model does not know was confirmed on at least this many conversations: what
    #: a run needs to learn it (preprocessing keeps a label only from ``min_examples_per_label``, 10 by
    #: default; the benchmark's ``cnn`` recalled a new Banking77 label 58 % of the time from 26 examples and
    #: 80 % from 82).
    min_unknown_label_conversations: int = Field(default=60, ge=1)
    #: While an unknown label has fewer confirmations than that, the other rules wait for it, at most this
    #: many days after its first confirmation (0: never wait).
    new_label_wait_days: float = Field(default=3.0, ge=0, le=90)
    #: Days of feedback the rules look at (never before the deployed model went live).
    window_days: int = Field(default=7, ge=1, le=90)
    #: Active learning: predictions whose top probability is under this are published as Email Needs Review.
    review_threshold: float = Field(default=0.5, ge=0, le=1)


@dataclass(frozen=True)
class Evidence:
    """What the rules are evaluated on."""

    new_confirmations: int
    agreement: Agreement
    drift: Drift
    #: Test accuracy of the deployed model (its champion record).
    deployed_accuracy: float


def reasons(policy: RetrainingPolicy, evidence: Evidence) -> list[str]:
    """The rules that fire, each as one short sentence (ids, labels and figures only)."""
    fired = []
    if evidence.new_confirmations >= policy.min_new_confirmations:
        fired.append(f"new-confirmations: {evidence.new_confirmations} >= {policy.min_new_confirmations}")
    found = evidence.agreement
    if found.top1 is not None and found.matched >= policy.min_matched_for_agreement:
        drop = 100 * (evidence.deployed_accuracy - found.top1)
        if drop >= policy.agreement_drop_points:
            fired.append(
                f"agreement-drop: top-1 {100 * found.top1:.1f} % is {drop:.1f} points under the test "
                f"accuracy {100 * evidence.deployed_accuracy:.1f} %"
            )
    shift = evidence.drift
    enough = max(
        policy.min_predictions_for_drift, policy.min_predictions_per_label_for_drift * shift.known_labels
    )
    if (
        policy.retrain_on_major_drift
        and shift.band == "major"
        and shift.psi is not None
        and shift.predictions >= enough
    ):
        fired.append(f"major-drift: PSI {shift.psi:.3f} over {shift.predictions} predictions")
    unknown = {
        label: n for label, n in shift.unknown_labels.items() if n >= policy.min_unknown_label_conversations
    }
    if unknown:
        listed = ", ".join(f"{label} ({n})" for label, n in unknown.items())
        fired.append(f"unknown-labels: {listed}")
    return fired


def waiting_for(policy: RetrainingPolicy, evidence: Evidence, now: datetime) -> list[str]:
    """Unknown labels still gathering confirmations, within their wait: each as one short sentence.

    While this is not empty no automatic run starts, whatever :func:`reasons` says.
    """
    if policy.new_label_wait_days <= 0:
        return []
    shift, wait = evidence.drift, timedelta(days=policy.new_label_wait_days)
    waiting = []
    for label, count in shift.unknown_labels.items():
        first = shift.unknown_first_seen.get(label)
        if count < policy.min_unknown_label_conversations and first is not None and now < first + wait:
            waiting.append(
                f"new-label: {label} ({count} of {policy.min_unknown_label_conversations} confirmations; "
                f"waiting until {(first + wait).isoformat(timespec='minutes')} at most)"
            )
    return waiting


def retraining_request(
    deployed: TrainingRunRequest, fired: list[str], day: date
) -> TrainingRunRequest | None:
    """The deployed run's request again, keyed to ``day`` and carrying the reasons; None if nothing fired."""
    if not fired:
        return None
    reason = "; ".join(fired)
    if len(reason) > 512:
        reason = reason[:509] + "..."
    return deployed.model_copy(
        update={"business_key": f"{BUSINESS_KEY_PREFIX}{day.isoformat()}", "reason": reason}
    )
