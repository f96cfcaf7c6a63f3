"""Act three: the tenant's customers start writing about other things (a label that was rare gets common,
one the model never saw appears); the emails are classified, the host product's next export carries them
with the labels it auto-applied, and agents confirm the right label on each. The confirmations go onto the
bus as the host product sends them, through the feedback rules, queue and function; drift is measured, the
retraining policy starts a run by itself through the training queue, and the run learns the new label."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from convclass import layout
from convclass.dataset.manifest import DatasetManifest
from convclass.deployment import sse_kms
from convclass.feedback.events import HOST_SOURCE, LABEL_CONFIRMED, LabelConfirmed
from convclass.feedback.policy import BUSINESS_KEY_PREFIX
from convclass.feedback.report import feedback_report
from convclass_local.demo.inbound import classify, top_label
from convclass_local.demo.options import DEMO_CLASSIFIER, DEMO_LABEL_FIELD, DEMO_TENANT, FeedbackResult
from convclass_local.demo.session import DemoSession
from convclass_local.demo.training import source_prefix

#: The shifted stream: a label that was rare (5 %) becomes common and the new one takes a third.
RARE_LABEL = "technical_problem"
SHIFT = {RARE_LABEL: 0.25}
NEW_LABEL_SHARE = 0.35
#: How long the demo waits for the feedback function to capture every confirmation, and for the run.
CAPTURE_TIMEOUT_S = 120.0


def shifted_weights() -> dict[str, float]:
    from convclass_local.generator import EMERGING_LABEL, template_weights

    usual = {label: w for label, w in template_weights().items() if w > 0 and label not in SHIFT}
    rest = 1 - sum(SHIFT.values()) - NEW_LABEL_SHARE
    scaled = {label: rest * w / sum(usual.values()) for label, w in usual.items()}
    return {**scaled, **SHIFT, EMERGING_LABEL: NEW_LABEL_SHARE}


def agents_confirm(session: DemoSession, observer: str) -> None:
    """Run act three; its figures go into ``session.result.feedback``."""
    from convclass_local.generator import EMERGING_LABEL, generate_emails, write_parquet

    found = session.result.feedback = FeedbackResult(new_label=EMERGING_LABEL)
    today = datetime.now(UTC).date().isoformat()
    name = layout.training_execution_name(DEMO_TENANT, DEMO_CLASSIFIER, f"{BUSINESS_KEY_PREFIX}{today}")
    arn = session.operator.execution_arn(name)
    ran_before = _exists(session, arn)
    emails = generate_emails(
        session.options.feedback,
        seed=2000 + session.result.run,
        tenant_id=DEMO_TENANT,
        label_field=DEMO_LABEL_FIELD,
        label_weights=shifted_weights(),
        duplicate_rate=0,
        difficulty=session.options.difficulty,
    )
    session.say(
        f"[bold]act three[/]: customers now write about {EMERGING_LABEL} (new) and {RARE_LABEL} (was rare)"
    )
    results = classify(session, observer, emails)
    closed = []
    for email in emails:
        top = top_label(results.get(email["conversation_id"]))
        if top is not None:
            closed.append((email, top[0]))
    found.emails = len(closed)

    # The host product's next export: the closed conversations with the label it auto-applied.
    local = session.runtime.workdir / "data" / f"{DEMO_TENANT}-closed-{session.result.run}.parquet"
    write_parquet([{**email, "labels": {DEMO_LABEL_FIELD: predicted}} for email, predicted in closed], local)
    key = f"{source_prefix()}closed-{session.result.run}.parquet"
    session.aws.client("s3").upload_file(
        str(local),
        session.runtime.bucket,
        key,
        ExtraArgs=sse_kms(session.runtime.outputs.require("kms_key_arn")),
    )
    corrected = sum(predicted != email["labels"][DEMO_LABEL_FIELD] for email, predicted in closed)
    session.say(
        f"the host product exports the {len(closed)} closed conversations with the labels it auto-applied "
        f"→ s3://{session.runtime.bucket}/{key}; agents correct {corrected} of them"
    )
    _send_confirmations(session, [email for email, _ in closed])
    report = _captured(session, len(closed))
    if report is not None:
        drift = report["drift"]
        found.confirmations, found.top1 = report["confirmations"], report["top1"]
        found.psi, found.drift_band = drift["psi"], drift["band"]
        found.unknown_labels = dict(drift["unknown_labels"])
        psi = "–" if drift["psi"] is None else f"{drift['psi']:.3f} ({drift['band']})"
        session.say(
            f"feedback captured (what `convclass feedback` shows): {found.confirmations} confirmations, "
            f"top-1 agreement {_pct(found.top1)}, PSI {psi}, labels the model does not know "
            f"{found.unknown_labels or 'none'}"
        )
    if ran_before:
        session.say(f"today's automatic run [bold]{name}[/] ran before: the policy starts one a day at most")
        return
    if not _exists(session, arn, wait_s=CAPTURE_TIMEOUT_S):
        session.say("[yellow]no rule fired: no automatic run[/]")
        return
    found.automatic_run = name
    found.automatic_run_reason = session.operator.describe_run(arn).input.get("reason")
    session.say(f"the feedback function started [bold]{name}[/] by itself: {found.automatic_run_reason}")
    with session.progress:
        found.automatic_run_status, _ = session.follow(arn)
    outcome = session.outcome(observer)
    if outcome is not None:
        found.automatic_outcome, found.automatic_test_accuracy = outcome.outcome, outcome.test_accuracy
    labels = _trained_labels(session, layout.run_id_for_execution(name))
    found.new_label_known = EMERGING_LABEL in labels
    session.say(
        f"the automatic run's model knows {len(labels)} labels"
        + (f", {EMERGING_LABEL} among them" if found.new_label_known else f"; not {EMERGING_LABEL}")
    )


def _send_confirmations(session: DemoSession, emails: list[dict[str, Any]]) -> None:
    """``Conversation Label Confirmed`` on the bus, as the host product sends it when an agent closes a
    case."""
    events, bus = session.aws.client("events"), session.runtime.outputs.require("event_bus_name")
    now = datetime.now(UTC)
    for start in range(0, len(emails), 10):
        entries = []
        for index, email in enumerate(emails[start : start + 10], start=start):
            confirmed = LabelConfirmed(
                event_id=f"demo-{session.result.run}-{email['conversation_id']}",
                tenant=DEMO_TENANT,
                classifier=DEMO_CLASSIFIER,
                conversation_id=email["conversation_id"],
                label=email["labels"][DEMO_LABEL_FIELD],
                confirmed_at=now,
                agent=f"agent-{index % 5}",
            )
            entries.append(
                {
                    "Source": HOST_SOURCE,
                    "DetailType": LABEL_CONFIRMED,
                    "Detail": confirmed.model_dump_json(),
                    "EventBusName": bus,
                }
            )
        events.put_events(Entries=entries)
    session.say(
        f"{len(emails)} {LABEL_CONFIRMED} events sent to the bus → feedback queue → feedback function"
    )


def _captured(session: DemoSession, expected: int) -> dict[str, Any] | None:
    """The feedback report (what ``convclass feedback`` prints) once every confirmation is captured."""
    deadline = time.monotonic() + CAPTURE_TIMEOUT_S
    report = None
    while time.monotonic() < deadline:
        report = feedback_report(session.operator, DEMO_TENANT, DEMO_CLASSIFIER, datetime.now(UTC))
        if report is not None and report["confirmations"] >= expected:
            break
        time.sleep(0.5)
    return report


def _exists(session: DemoSession, arn: str, wait_s: float = 0.0) -> bool:
    sfn = session.aws.client("stepfunctions")
    deadline = time.monotonic() + wait_s
    while True:
        try:
            sfn.describe_execution(executionArn=arn)
            return True
        except sfn.exceptions.ExecutionDoesNotExist:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.5)


def _trained_labels(session: DemoSession, run_id: str) -> list[str]:
    """The labels of a run's training set (its dataset manifest); none when the run made no dataset."""
    s3 = session.aws.client("s3")
    where = layout.ClassifierLayout(DEMO_TENANT, DEMO_CLASSIFIER)
    try:
        body = s3.get_object(Bucket=session.runtime.bucket, Key=where.dataset_manifest_key(run_id))["Body"]
    except s3.exceptions.NoSuchKey:
        return []
    return list(DatasetManifest.model_validate_json(body.read()).labels)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"
