"""Each retraining rule fires on its own, exactly at its threshold, and produces one keyed request."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta

import pytest

from convclass.events import TrainingRunRequest, execution_name
from convclass.feedback.metrics import Agreement, Drift
from convclass.feedback.policy import Evidence, RetrainingPolicy, reasons, retraining_request, waiting_for

POLICY = RetrainingPolicy(
    min_new_confirmations=100,
    agreement_drop_points=5,
    min_matched_for_agreement=50,
    min_predictions_for_drift=50,
    min_unknown_label_conversations=10,
)
DEPLOYED = TrainingRunRequest.model_validate(
    {"tenant": "acme", "classifier": "intent", "label_field": "intent", "data_source": {"kind": "mongodb"}}
)


def evidence(
    *,
    confirmations: int = 10,
    top1: float = 0.9,
    matched: int = 60,
    psi: float = 0.05,
    predictions: int = 60,
    unknown: dict[str, int] | None = None,
    known_labels: int = 2,
    first_seen: dict[str, datetime] | None = None,
) -> Evidence:
    band = "major" if psi > 0.25 else "moderate" if psi >= 0.1 else "none"
    return Evidence(
        new_confirmations=confirmations,
        agreement=Agreement(confirmations=matched, matched=matched, top1=top1, top3=top1),
        drift=Drift(known_labels, predictions, psi, band, unknown or {}, [], None, first_seen or {}),
        deployed_accuracy=0.9,
    )


def test_nothing_fires_on_a_healthy_classifier() -> None:
    assert reasons(POLICY, evidence()) == []
    assert retraining_request(DEPLOYED, [], date(2026, 12, 1)) is None


@pytest.mark.parametrize(
    ("below", "at", "rule"),
    [
        (evidence(confirmations=99), evidence(confirmations=100), "new-confirmations"),
        (evidence(top1=0.851), evidence(top1=0.85), "agreement-drop"),
        (evidence(psi=0.25), evidence(psi=0.2501), "major-drift"),
        (evidence(unknown={"refund": 9}), evidence(unknown={"refund": 10}), "unknown-labels"),
    ],
)
def test_each_rule_fires_at_its_threshold_and_not_below(below: Evidence, at: Evidence, rule: str) -> None:
    assert reasons(POLICY, below) == []
    (fired,) = reasons(POLICY, at)
    assert fired.startswith(f"{rule}: ")


@pytest.mark.parametrize(
    "thin",
    [evidence(top1=0.5, matched=49), evidence(psi=0.9, predictions=49)],
    ids=["agreement-needs-enough-matches", "drift-needs-enough-predictions"],
)
def test_rules_wait_for_enough_evidence(thin: Evidence) -> None:
    assert reasons(POLICY, thin) == []


def test_drift_needs_enough_predictions_per_known_label() -> None:
    # 20 per label: with 10 labels, 200 predictions (POLICY's absolute floor is 50).
    assert reasons(POLICY, evidence(psi=0.9, predictions=199, known_labels=10)) == []
    (fired,) = reasons(POLICY, evidence(psi=0.9, predictions=200, known_labels=10))
    assert fired.startswith("major-drift: ")


def test_drift_rule_can_be_switched_off() -> None:
    assert reasons(POLICY.model_copy(update={"retrain_on_major_drift": False}), evidence(psi=0.9)) == []


def test_the_request_repeats_the_deployed_one_under_a_daily_key_with_the_reasons() -> None:
    fired = reasons(POLICY, evidence(psi=0.9, unknown={"refund": 12}))
    request = retraining_request(DEPLOYED, fired, date(2026, 12, 1))
    assert request is not None
    assert request.business_key == "feedback-2026-12-01"
    assert request.reason == "major-drift: PSI 0.900 over 60 predictions; unknown-labels: refund (12)"
    assert request.model_dump(exclude={"business_key", "reason"}) == DEPLOYED.model_dump(
        exclude={"business_key", "reason"}
    )
    # Another evaluation the same day (other figures) names the same run: the starter starts it once.
    again = retraining_request(DEPLOYED, reasons(POLICY, evidence(confirmations=500)), date(2026, 12, 1))
    assert again is not None
    assert execution_name(again) == execution_name(request)


def test_a_request_without_reason_keeps_its_execution_name() -> None:
    # Requests without a reason digest exactly as before the field existed.
    fields = DEPLOYED.model_dump(mode="json", exclude={"reason"})
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert execution_name(DEPLOYED) == f"acme--intent--req-{digest[:16]}"
    with_reason = DEPLOYED.model_copy(update={"reason": "unknown-labels: refund (12)"})
    assert execution_name(with_reason) != execution_name(DEPLOYED)


NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_a_new_label_still_gathering_confirmations_holds_every_rule_for_at_most_its_wait() -> None:
    policy = POLICY.model_copy(update={"new_label_wait_days": 2.0})
    thin = {"crypto": 9}
    since = {"crypto": NOW - timedelta(days=1)}
    # The agreement drop fires, but the new label (9 of 10) is awaited: no run yet.
    held = evidence(top1=0.5, unknown=thin, first_seen=since)
    assert [r.split(":")[0] for r in reasons(policy, held)] == ["agreement-drop"]
    (waiting,) = waiting_for(policy, held, NOW)
    assert waiting.startswith("new-label: crypto (9 of 10 confirmations; waiting until 2026-12-04T12:00")
    # Enough confirmations of it: nothing is awaited and its own rule fires too.
    ready = evidence(top1=0.5, unknown={"crypto": 10}, first_seen=since)
    assert waiting_for(policy, ready, NOW) == []
    assert [r.split(":")[0] for r in reasons(policy, ready)] == ["agreement-drop", "unknown-labels"]
    # The wait ends new_label_wait_days after its first confirmation, however thin it still is.
    assert waiting_for(policy, held, NOW + timedelta(days=1)) == []
    assert waiting_for(policy.model_copy(update={"new_label_wait_days": 0.0}), held, NOW) == []


def test_the_defaults_wait_for_a_learnable_new_label() -> None:
    defaults = RetrainingPolicy()
    assert (defaults.min_unknown_label_conversations, defaults.new_label_wait_days) == (60, 3.0)
