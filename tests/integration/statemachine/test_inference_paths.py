"""The inference workflow on moto's engine: a batch as an SQS → Pipe delivers it, one event per email."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from workflow_support import World

from convclass import events, layout
from convclass.events import EmailClassificationFailed, EmailClassified
from convclass.local import moto_shims
from statemachine import inference as i
from statemachine.history import wait_for

pytestmark = pytest.mark.xdist_group("statemachine-inference")

SECRET_TEXT = "my card 4111 was stolen yesterday"


def _record(message_id: str, body: dict[str, Any] | str, **attributes: str) -> dict[str, Any]:
    """An SQS record as EventBridge Pipes hands it to the workflow."""
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": body if isinstance(body, str) else json.dumps(body),
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {
            name: {"stringValue": value, "dataType": "String"} for name, value in attributes.items()
        },
        "eventSource": "aws:sqs",
    }


def test_batch_with_one_failing_email_reports_every_email(world: World) -> None:
    seen: list[moto_shims.EndpointRequest] = []

    def endpoint(request: moto_shims.EndpointRequest) -> moto_shims.EndpointReply:
        seen.append(request)
        if b"FAIL-ME" in request.body:
            raise moto_shims.EndpointError("ModelError", "the model could not score this email")
        reply = {"predictions": [{"labels": [{"label": "card_lost", "probability": 0.93}]}]}
        return moto_shims.EndpointReply(json.dumps(reply).encode())

    moto_shims.update(invoke_endpoint=endpoint)
    email = {"subject": "help", "body": SECRET_TEXT, "content_type": "text/plain"}
    batch = [
        _record("m1", email, tenant="acme", classifier="support", conversation_id="c1"),
        _record(
            "m2", {**email, "body": "FAIL-ME"}, tenant="acme", classifier="support", conversation_id="c2"
        ),
        _record("m3", email, tenant="acme"),  # attributes missing: cannot be routed to an endpoint
        _record("m4", email, tenant="beta", classifier="billing", conversation_id="c4"),
    ]
    execution = world.start(world.inference_arn, "batch-1", batch)
    run = wait_for(world.client("stepfunctions"), execution)

    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert run.output == {
        "results": [
            {"message_id": "m1", "status": "classified"},
            {"message_id": "m2", "status": "failed"},
            {"message_id": "m3", "status": "failed"},
            {"message_id": "m4", "status": "classified"},
        ]
    }
    assert run.entered[0] == i.CLASSIFY_EMAILS
    assert Counter(run.entered[1:]) == {
        i.CHECK_MESSAGE: 4,
        i.CLASSIFY: 3,
        i.PUBLISH_CLASSIFIED: 2,
        i.CLASSIFIED: 2,
        i.REPORT_FAILURE: 1,
        i.REPORT_MALFORMED: 1,
        i.NOT_CLASSIFIED: 2,
    }
    assert sorted(r.endpoint_name for r in seen) == sorted(
        [layout.endpoint_name("acme", "support")] * 2 + [layout.endpoint_name("beta", "billing")]
    )
    # Bodies reach the endpoint unchanged.
    assert sorted(json.loads(r.body)["body"] for r in seen) == sorted([SECRET_TEXT, "FAIL-ME", SECRET_TEXT])
    assert all(json.loads(r.body)["subject"] == "help" for r in seen)

    published = [e for e in world.events() if e["source"] == events.INFERENCE_SOURCE]
    classified = [
        EmailClassified.model_validate(e["detail"])
        for e in published
        if e["detail-type"] == events.EMAIL_CLASSIFIED
    ]
    failed = [
        EmailClassificationFailed.model_validate(e["detail"])
        for e in published
        if e["detail-type"] == events.EMAIL_CLASSIFICATION_FAILED
    ]
    assert sorted(c.message_id for c in classified) == ["m1", "m4"]
    assert classified[0].prediction["predictions"][0]["labels"][0]["label"] == "card_lost"
    assert {f.message_id: f.error for f in failed}.keys() == {"m2", "m3"}
    assert {f.message_id: f.error for f in failed}["m3"] == "InvalidInput"
    assert "ModelError" in next(f.error for f in failed if f.message_id == "m2")
    assert SECRET_TEXT not in json.dumps(published)
