"""Scenarios on the embedded AWS with the real plan, export, preprocess and evaluate handlers: retraining on
the whole history, the watermark committed only by a successful run, an export retried after a lost response,
and the export gate's answer recorded as consent or refusal.

Each scenario is a function returning countable facts (the scenario suite and its benchmark read them); the
tests assert on those facts. Conversations are dropped as JSON Lines files (the ``files`` source).
"""

from __future__ import annotations

import io
import json
import time
from datetime import UTC, datetime
from typing import Any

import pyarrow.parquet as pq
import pytest
from pipeline_data import CLASSIFIER, PAST, conversation, deletion, drop, grant, s3
from workflow_support import RecordingRunner

from convclass import events, layout
from convclass.dataset.history import HistoryManifest
from convclass.events import ApprovalRequest
from convclass.export.manifest import ExportManifest, Watermark
from convclass.operator import Operator
from convclass.stack import StackOutputs
from convclass_local import moto_shims
from convclass_local.workflow_lab import BUCKET, REGION, World, request, run_handler
from statemachine.history import ExecutionRecord, history, wait_for
from statemachine.training import names as t

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("scenarios-history"),
    pytest.mark.usefixtures("real_engine_hooks"),
]


def now() -> datetime:
    """A change time after every window already exported (millisecond-precision Parquet included)."""
    time.sleep(0.01)
    return datetime.now(UTC)


def run_id(name: str) -> str:
    return layout.run_id_for_execution(name)


def read_json(key: str) -> dict[str, Any]:
    return dict(json.loads(s3().get_object(Bucket=BUCKET, Key=key)["Body"].read()))


def watermark(tenant: str) -> Watermark | None:
    key = layout.ClassifierLayout(tenant, CLASSIFIER).watermark_key
    try:
        return Watermark.model_validate(read_json(key))
    except s3().exceptions.NoSuchKey:
        return None


def training_set(tenant: str, name: str) -> dict[str, str]:
    """conversation id → label over the run's train, validation and test splits."""
    where = layout.ClassifierLayout(tenant, CLASSIFIER)
    found: dict[str, str] = {}
    for split in layout.SPLITS:
        data = s3().get_object(Bucket=BUCKET, Key=where.split_key(run_id(name), split))["Body"].read()
        for row in pq.read_table(io.BytesIO(data), columns=["conversation_id", "label"]).to_pylist():
            assert row["conversation_id"] not in found, "a conversation appears once in a training set"
            found[row["conversation_id"]] = row["label"]
    return found


def export_manifest(tenant: str, name: str) -> ExportManifest:
    key = layout.ClassifierLayout(tenant, CLASSIFIER).export_manifest_key(run_id(name))
    return ExportManifest.model_validate(read_json(key))


def history_manifest(tenant: str, name: str) -> HistoryManifest:
    key = layout.ClassifierLayout(tenant, CLASSIFIER).history_manifest_key(run_id(name))
    return HistoryManifest.model_validate(read_json(key))


def train(world: World, tenant: str, name: str, **options: Any) -> ExecutionRecord:
    _, record = world.run_training(request(tenant, min_examples_per_label=3, **options), name)
    return record


def expected(rows: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {cid: row["labels"]["intent"] for cid, row in rows.items() if not row.get("deleted")}


# --- scenarios -------------------------------------------------------------------------------------------
def scenario_second_run_trains_on_the_union(world: World, tenant: str) -> dict[str, Any]:
    """Two runs: the second exports only what changed, yet trains on every labelled conversation's latest
    state (relabelled ones with their new label, deleted ones gone, new ones in)."""
    grant(tenant)
    state = {f"c{i:03d}": conversation(tenant, i, PAST) for i in range(45)}
    drop(tenant, "day-1", state.values())
    first = train(world, tenant, f"{tenant}-support-1")
    after_first = watermark(tenant)

    changed_at = now()
    delta = [conversation(tenant, i, changed_at, label="refund") for i in range(6)]  # relabelled
    delta += [deletion(tenant, i, changed_at) for i in range(6, 9)]  # deleted at the source
    delta += [conversation(tenant, i, changed_at) for i in range(45, 57)]  # new
    state.update({row["conversation_id"]: row for row in delta})
    drop(tenant, "day-2", delta)
    second = train(world, tenant, f"{tenant}-support-2")

    manifest = export_manifest(tenant, f"{tenant}-support-2")
    merged = history_manifest(tenant, f"{tenant}-support-2")
    return {
        "statuses": (first.status, second.status),
        "errors": (first.error, first.cause, second.error, second.cause),
        "first_training_set": training_set(tenant, f"{tenant}-support-1"),
        "second_training_set": training_set(tenant, f"{tenant}-support-2"),
        "expected_second": expected(state),
        "second_export_records": manifest.counts.exported,
        "second_export_deleted": manifest.counts.deleted,
        "second_history_base": manifest.history_base,
        "first_history": layout.ClassifierLayout(tenant, CLASSIFIER).history_manifest_key(
            run_id(f"{tenant}-support-1")
        ),
        "history_counts": merged.counts.model_dump(),
        "watermark_after_first": after_first,
        "watermark_after_second": watermark(tenant),
        "delta": len(delta),
    }


def scenario_failed_run_leaves_the_watermark(world: World, tenant: str) -> dict[str, Any]:
    """A run that fails after its export commits nothing; the next successful run still gets its data."""
    grant(tenant)
    state = {f"c{i:03d}": conversation(tenant, i, PAST) for i in range(36)}
    drop(tenant, "day-1", state.values())
    first = train(world, tenant, f"{tenant}-support-1")
    committed = watermark(tenant)

    changed_at = now()
    delta = [conversation(tenant, i, changed_at, label="delivery") for i in range(3)]
    delta += [conversation(tenant, i, changed_at) for i in range(36, 42)]
    state.update({row["conversation_id"]: row for row in delta})
    drop(tenant, "day-2", delta)
    moto_shims.update(training_runner=RecordingRunner(status="Failed", failure_reason="AlgorithmError: boom"))
    failed = train(world, tenant, f"{tenant}-support-2")
    after_failure = watermark(tenant)
    failed_export = export_manifest(tenant, f"{tenant}-support-2")

    moto_shims.update(training_runner=RecordingRunner())
    third = train(world, tenant, f"{tenant}-support-3")
    return {
        "statuses": (first.status, failed.status, third.status),
        "failed_error": failed.error,
        "failed_entered_commit": t.COMMIT_HISTORY in failed.entered,
        "failed_exported": failed_export.counts.exported,
        "watermark_before": committed,
        "watermark_after_failure": after_failure,
        "third_window_start": export_manifest(tenant, f"{tenant}-support-3").window.start,
        "third_training_set": training_set(tenant, f"{tenant}-support-3"),
        "expected_third": expected(state),
        "watermark_after_third": watermark(tenant),
    }


class LoseFirstExportResponse:
    """Runs the real export, then loses its first answer for ``tenant`` (Lambda.ServiceException), so the
    state machine retries a call that already wrote the export."""

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.answers: list[dict[str, Any]] = []

    def __call__(self, invocation: moto_shims.LambdaInvocation) -> tuple[str, bool]:
        payload, errored = run_handler(invocation)
        event = invocation.event if isinstance(invocation.event, dict) else {}
        is_export = invocation.function_name.endswith("-export") and event.get("action", "export") == "export"
        if is_export and event.get("tenant") == self.tenant and not errored:
            self.answers.append(json.loads(payload))
            if len(self.answers) == 1:
                lost = {"errorType": "Lambda.ServiceException", "errorMessage": "the response was lost"}
                return json.dumps(lost), True
        return payload, errored


def scenario_retried_export_loses_nothing(world: World, tenant: str) -> dict[str, Any]:
    """An incremental run whose export answer is lost: the retry returns the same summary, nothing is lost."""
    grant(tenant)
    state = {f"c{i:03d}": conversation(tenant, i, PAST) for i in range(36)}
    drop(tenant, "day-1", state.values())
    first = train(world, tenant, f"{tenant}-support-1")

    changed_at = now()
    delta = [conversation(tenant, i, changed_at) for i in range(36, 48)]
    state.update({row["conversation_id"]: row for row in delta})
    drop(tenant, "day-2", delta)
    lossy = LoseFirstExportResponse(tenant)
    moto_shims.update(lambda_dispatch=lossy)
    name = f"{tenant}-support-2"
    second = train(world, tenant, name)
    arn = f"{world.training_arn.replace(':stateMachine:', ':execution:')}:{name}"
    export_failures = [e for e in history(world.client("stepfunctions"), arn) if e["type"] == "TaskFailed"]
    return {
        "statuses": (first.status, second.status),
        "export_answers": lossy.answers,
        "retries": len(export_failures),
        "second_export_records": export_manifest(tenant, name).counts.exported,
        "second_training_set": training_set(tenant, name),
        "expected_second": expected(state),
        "delta": len(delta),
    }


def _operator() -> Operator:
    return Operator(StackOutputs(region=REGION, data_bucket=BUCKET))


def _approval_request(world: World, execution: str) -> ApprovalRequest:
    found = world.wait_for_event(events.APPROVAL_REQUESTED, execution=execution)
    return ApprovalRequest.model_validate(found["detail"])


def scenario_approval_by_token(world: World, tenant: str, *, approve: bool) -> dict[str, Any]:
    """No consent on record; the export gate is answered by its task token, as ``convclass approve --token``
    (or ``reject``) does. The run records the answer as the tenant's consent or refusal."""
    name = f"{tenant}-support-1"
    drop(tenant, "day-1", [conversation(tenant, i, PAST) for i in range(36)])
    req = request(tenant, min_examples_per_label=3, export_approval=True)
    execution = world.start(world.training_arn, name, req.model_dump(mode="json"))
    asked = _approval_request(world, execution)
    verdict = "contract signed" if approve else "tenant objected"
    _operator().answer(asked.task_token, approve=approve, approver="dana", reason=verdict)
    record = wait_for(world.client("stepfunctions"), execution, timeout_s=60)
    consent = read_json(layout.ClassifierLayout(tenant, CLASSIFIER).consent_key)
    return {
        "status": record.status,
        "error": record.error,
        "entered": record.entered,
        "consent": consent,
        "timeout_seconds": asked.timeout_seconds,
    }


# --- tests -----------------------------------------------------------------------------------------------
def test_second_incremental_run_trains_on_the_union(world: World) -> None:
    facts = scenario_second_run_trains_on_the_union(world, "union")

    assert facts["statuses"] == ("SUCCEEDED", "SUCCEEDED"), facts["errors"]
    assert len(facts["first_training_set"]) == 45
    # The export read only the delta, the training set is the whole history's latest state.
    assert facts["second_export_records"] == facts["delta"] == 21
    assert facts["second_export_deleted"] == 3
    assert facts["second_history_base"] == facts["first_history"]
    assert facts["second_training_set"] == facts["expected_second"]
    assert len(facts["second_training_set"]) == 45 - 3 + 12
    assert {facts["second_training_set"][f"c{i:03d}"] for i in range(6)} == {"refund"}
    assert not {"c006", "c007", "c008"} & facts["second_training_set"].keys()
    counts = facts["history_counts"]
    assert (counts["base"], counts["exported"], counts["kept"], counts["deleted"]) == (45, 21, 54, 3)
    first, second = facts["watermark_after_first"], facts["watermark_after_second"]
    assert first is not None
    assert second is not None
    assert second.value > first.value
    assert second.history_key == layout.ClassifierLayout("union", CLASSIFIER).history_manifest_key(
        run_id("union-support-2")
    )


def test_a_run_that_fails_after_its_export_does_not_move_the_watermark(world: World) -> None:
    facts = scenario_failed_run_leaves_the_watermark(world, "fails")

    assert facts["statuses"] == ("SUCCEEDED", "FAILED", "SUCCEEDED")
    assert facts["failed_error"] == t.ERROR_TRAINING_FAILED
    assert facts["failed_exported"] == 9  # the failed run did export ...
    assert not facts["failed_entered_commit"]
    assert facts["watermark_after_failure"] == facts["watermark_before"]  # ... but committed nothing
    before = facts["watermark_before"]
    assert before is not None
    assert facts["third_window_start"] == before.value  # the next run re-reads what the failed one read
    assert facts["third_training_set"] == facts["expected_third"]
    assert len(facts["third_training_set"]) == 42


def test_an_export_retried_after_a_lost_response_loses_nothing(world: World) -> None:
    facts = scenario_retried_export_loses_nothing(world, "retry")

    assert facts["statuses"] == ("SUCCEEDED", "SUCCEEDED")
    assert facts["retries"] == 1
    first_answer, retried_answer = facts["export_answers"]
    assert retried_answer == first_answer  # the summary it already wrote
    assert first_answer["records"] == facts["second_export_records"] == facts["delta"]
    assert facts["second_training_set"] == facts["expected_second"]
    assert len(facts["second_training_set"]) == 48


def test_approving_the_export_gate_by_token_records_consent_and_the_run_proceeds(world: World) -> None:
    facts = scenario_approval_by_token(world, "approve", approve=True)

    assert facts["status"] == "SUCCEEDED", facts["error"]
    entered = list(facts["entered"])
    assert entered.index(t.RECORD_EXPORT_CONSENT) == entered.index(t.REQUEST_EXPORT_APPROVAL) + 1
    assert entered.index(t.PLAN_EXPORT) == entered.index(t.RECORD_EXPORT_CONSENT) + 1
    consent = facts["consent"]
    assert (consent["approved"], consent["approved_by"], consent["reason"]) == (
        True,
        "dana",
        "contract signed",
    )
    assert consent["label_fields"] == ["intent"]
    assert facts["timeout_seconds"] == 7 * 24 * 3600


def test_rejecting_the_export_gate_records_a_refusal(world: World) -> None:
    facts = scenario_approval_by_token(world, "reject", approve=False)

    assert facts["status"] == "FAILED"
    assert facts["error"] == t.ERROR_APPROVAL_REJECTED
    assert t.RECORD_EXPORT_REFUSAL in facts["entered"]
    assert t.EXPORT not in facts["entered"]
    consent = facts["consent"]
    assert (consent["approved"], consent["approved_by"], consent["reason"]) == (
        False,
        "dana",
        "tenant objected",
    )
    export_prefix = layout.ClassifierLayout("reject", CLASSIFIER).area_prefix(layout.EXPORTS)
    assert s3().list_objects_v2(Bucket=BUCKET, Prefix=export_prefix).get("KeyCount", 0) == 0
