"""Act two: new emails go through the inbound queue, the Pipe and the inference workflow to the tenant's
endpoint; their ``Email Classified`` events are read from the bus."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rich.table import Table

from convclass.deployment import INBOUND_BATCH_SIZE
from convclass.events import EMAIL_CLASSIFICATION_FAILED, EMAIL_CLASSIFIED, inbound_max_message_bytes
from convclass.inbound import inbound_message
from convclass.serving.schemas import EmailIn
from convclass_local.demo.options import DEMO_CLASSIFIER, DEMO_LABEL_FIELD, DEMO_TENANT
from convclass_local.demo.session import DemoSession, drain
from convclass_local.runtime import LocalRuntime

#: How long the demo waits for the inference events of what it sent.
CLASSIFY_TIMEOUT_S = 180


def classify_new_emails(session: DemoSession, endpoint: str, observer: str) -> None:
    """A few new emails of the usual mix, classified and shown with their expected label."""
    from convclass_local.generator import generate_emails

    session.say(f"starting the serving app for endpoint [bold]{endpoint}[/]")
    session.runtime.endpoints.ensure(endpoint)
    emails = generate_emails(
        session.options.inbound,
        seed=1000 + session.result.run,
        tenant_id=DEMO_TENANT,
        label_field=DEMO_LABEL_FIELD,
        difficulty=session.options.difficulty,
    )
    results = classify(session, observer, emails)
    table = Table("conversation", "expected", "predicted", "probability", title="inbound emails")
    result = session.result
    for email in emails:
        conversation, label = email["conversation_id"], email["labels"][DEMO_LABEL_FIELD]
        outcome = results.get(conversation)
        top = top_label(outcome)
        if top is None:
            result.failed += 1
            reason = "no answer" if outcome is None else str(outcome.get("error"))
            table.add_row(conversation, label, f"[red]{reason}[/]", "")
            continue
        predicted, probability = top
        result.classified += 1
        result.predictions.append(
            {"conversation_id": conversation, "expected": label, "predicted": predicted}
        )
        mark = "green" if predicted == label else "yellow"
        table.add_row(conversation, label, f"[{mark}]{predicted}[/]", f"{probability:.3f}")
    session.console.print(table)


def classify(
    session: DemoSession,
    observer: str,
    emails: Sequence[dict[str, Any]],
    *,
    tenant: str = DEMO_TENANT,
    classifier: str = DEMO_CLASSIFIER,
) -> dict[str, dict[str, Any]]:
    """Send a tenant's ``emails`` to the inbound queue; conversation id → its inference event (type and
    detail)."""
    send_inbound(session.runtime, tenant, classifier, emails)
    session.say(
        f"{len(emails)} new inbound emails of [bold]{tenant}[/] sent to the inbound queue → Pipe → "
        "inference workflow"
    )
    sqs = session.aws.client("sqs")
    deadline = time.monotonic() + CLASSIFY_TIMEOUT_S
    results: dict[str, dict[str, Any]] = {}
    while len(results) < len(emails) and time.monotonic() < deadline:
        for event in drain(
            sqs,
            observer,
            lambda e: e["detail-type"] in (EMAIL_CLASSIFIED, EMAIL_CLASSIFICATION_FAILED),
            wait_s=1,
        ):
            detail = event["detail"]
            results[str(detail.get("conversation_id") or detail.get("message_id"))] = {
                "type": event["detail-type"],
                **detail,
            }
    return results


def send_inbound(
    runtime: LocalRuntime, tenant: str, classifier: str, emails: Sequence[dict[str, Any]]
) -> None:
    """Generated emails onto the inbound queue, as the tenant's mail integration sends them."""
    sqs = runtime.aws.client("sqs")
    queue = runtime.outputs.require("inbound_queue_url")
    for start in range(0, len(emails), 10):
        sqs.send_message_batch(
            QueueUrl=queue,
            Entries=[
                inbound_message(
                    entry_id=str(index),
                    tenant=tenant,
                    classifier=classifier,
                    conversation_id=email["conversation_id"],
                    email=EmailIn(
                        id=email["conversation_id"],
                        subject=email.get("subject"),
                        body=email["body"],
                        body_content_type=email.get("body_content_type", "text/html"),
                    ),
                    max_bytes=inbound_max_message_bytes(INBOUND_BATCH_SIZE),
                )
                for index, email in enumerate(emails[start : start + 10])
            ],
        )


def top_label(outcome: dict[str, Any] | None) -> tuple[str, float] | None:
    """The predicted label and its probability of a classified email (None when it was not classified)."""
    if outcome is None or outcome["type"] != EMAIL_CLASSIFIED:
        return None
    predictions = (outcome.get("prediction") or {}).get("predictions") or [{}]
    top = (predictions[0].get("labels") or [{}])[0]
    return str(top.get("label", "?")), float(top.get("probability", 0))
