"""The inference workflow on moto's engine with the real serving app behind each endpoint: a batch as an
SQS → Pipe delivers it, and what comes out (one final event per email, or the message back to its queue)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from workflow_support import SHARED_ENDPOINT, World

from convclass import events, layout
from convclass.events import EmailClassificationFailed, EmailClassified
from convclass.serving.schemas import EmailIn
from convclass_local import moto_shims
from statemachine import inference as i
from statemachine import render_inference_workflow
from statemachine.history import ExecutionRecord, wait_for
from statemachine.resources import InferenceResources

sys.path.insert(0, str(Path(__file__).parents[2] / "unit" / "serving"))
from serving_fakes import CONTAINER_FAILURE, ServingEndpoints, shared_name

pytestmark = pytest.mark.xdist_group("statemachine-inference")

SECRET_TEXT = "my card 4111 was stolen yesterday"
EMAIL = EmailIn(subject="help", body=SECRET_TEXT, body_content_type="text/plain")
ACME = layout.endpoint_name("acme", "support")
BETA = layout.endpoint_name("beta", "billing")


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


def _email(message_id: str, tenant: str = "acme", classifier: str = "support", **body: Any) -> dict[str, Any]:
    request = {**EMAIL.model_dump(mode="json", exclude_none=True), **body}
    return _record(
        message_id, request, tenant=tenant, classifier=classifier, conversation_id=f"c-{message_id}"
    )


@pytest.fixture
def endpoints() -> Iterator[ServingEndpoints]:
    served = ServingEndpoints()
    served.add(ACME)
    served.add(BETA)
    moto_shims.update(invoke_endpoint=served.invoke)
    yield served
    served.close()


def _run(world: World, name: str, batch: list[dict[str, Any]], arn: str | None = None) -> ExecutionRecord:
    execution = world.start(arn or world.inference_arn, name, batch)
    return wait_for(world.client("stepfunctions"), execution)


def _email_events(world: World) -> tuple[list[EmailClassified], list[EmailClassificationFailed]]:
    published = [e for e in world.events() if e["source"] == events.INFERENCE_SOURCE]
    world.captured.clear()
    assert SECRET_TEXT not in json.dumps(published)
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
    return classified, failed


def test_every_email_of_a_batch_ends_in_one_final_event(world: World, endpoints: ServingEndpoints) -> None:
    world.events()
    world.captured.clear()
    batch = [
        _email("m1"),
        # The serving schema forbids unknown fields: the app answers 400, a final answer for this email.
        _email("m2", content_type="text/plain"),
        _record("m3", EMAIL.model_dump(mode="json"), tenant="acme"),  # cannot be routed to an endpoint
        _email("m4", tenant="beta", classifier="billing"),
        _email("m5", tenant="gamma"),  # no such endpoint
    ]
    run = _run(world, "batch-1", batch)

    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert run.output == {
        "results": [
            {"message_id": "m1", "status": i.STATUS_CLASSIFIED},
            {"message_id": "m2", "status": i.STATUS_FAILED},
            {"message_id": "m3", "status": i.STATUS_FAILED},
            {"message_id": "m4", "status": i.STATUS_CLASSIFIED},
            {"message_id": "m5", "status": i.STATUS_FAILED},
        ],
        "batchItemFailures": [],
    }
    assert Counter(run.entered[1:]) == {
        i.CHECK_MESSAGE: 5,
        i.FIND_ROUTE: 4,  # no champion.json: each goes to its own endpoint
        i.CLASSIFY: 4,
        i.CHECK_MODEL_ERROR: 1,
        i.PUBLISH_CLASSIFIED: 2,
        i.CLASSIFIED: 2,
        i.REPORT_FAILURE: 2,
        i.REPORT_MALFORMED: 1,
        i.NOT_CLASSIFIED: 3,
    }
    classified, failed = _email_events(world)
    assert {c.message_id: c.event_id for c in classified} == {
        "m1": events.email_event_id("m1", "classified"),
        "m4": events.email_event_id("m4", "classified"),
    }
    assert {c.message_id: c.tenant for c in classified} == {"m1": "acme", "m4": "beta"}
    labels = classified[0].prediction["predictions"][0]["labels"]
    assert labels[0]["label"] in {"card_declined", "refund_request", "lost_card", "change_address"}
    errors = {f.message_id: f for f in failed}
    assert set(errors) == {"m2", "m3", "m5"}
    assert all(f.event_id == events.email_event_id(f.message_id, "failed") for f in failed)
    assert errors["m2"].error == i.MODEL_ERROR
    assert "Received client error (400)" in (errors["m2"].cause or "")
    assert "InvalidInput" in (errors["m2"].cause or "")
    assert errors["m3"].error == "InvalidInput"
    assert errors["m5"].error == i.VALIDATION_ERROR


@pytest.mark.parametrize(
    "faults",
    [
        ("ModelNotReadyException", "ThrottlingException", "ServiceUnavailable"),
        ("InternalFailure", "InternalDependencyException"),
        (CONTAINER_FAILURE, CONTAINER_FAILURE, CONTAINER_FAILURE),
    ],
    ids=["runtime-throttled", "runtime-internal", "container-5xx"],
)
def test_transient_endpoint_errors_are_retried_until_the_email_is_classified(
    world: World, endpoints: ServingEndpoints, faults: tuple[str, ...]
) -> None:
    world.events()
    world.captured.clear()
    endpoints.fail_next(*faults)
    run = _run(world, f"transient-{len(faults)}-{faults[0]}", [_email("t1")])

    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert run.output["results"] == [{"message_id": "t1", "status": i.STATUS_CLASSIFIED}]
    assert run.output["batchItemFailures"] == []
    assert endpoints.invocations == len(faults) + 1
    classified, failed = _email_events(world)
    assert [c.message_id for c in classified] == ["t1"]
    assert failed == []


def test_an_endpoint_that_keeps_failing_returns_the_message_to_its_queue(
    world: World, endpoints: ServingEndpoints
) -> None:
    world.events()
    world.captured.clear()
    endpoints.broken = {ACME: CONTAINER_FAILURE, BETA: "ServiceUnavailable"}
    batch = [_email("k1"), _email("k2", tenant="beta", classifier="billing")]
    run = _run(world, "keeps-failing", [*batch, _email("k3", tenant="delta")])

    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert run.output == {
        "results": [
            {
                "message_id": "k1",
                "status": i.STATUS_RETURNED,
                "error": i.MODEL_ERROR,
                "failure": {"itemIdentifier": "k1"},
            },
            {
                "message_id": "k2",
                "status": i.STATUS_RETURNED,
                "error": "SageMakerRuntime.ServiceUnavailableException",
                "failure": {"itemIdentifier": "k2"},
            },
            {"message_id": "k3", "status": i.STATUS_FAILED},
        ],
        "batchItemFailures": [{"itemIdentifier": "k1"}, {"itemIdentifier": "k2"}],
    }
    # The container's 5xx: the first attempt and one per backoff step; the runtime error: 1 + 3 retries.
    assert Counter(run.entered)[i.WAIT_TO_RETRY] == len(i.MODEL_ERROR_BACKOFF_SECONDS)
    assert endpoints.invocations == (len(i.MODEL_ERROR_BACKOFF_SECONDS) + 1) + 4 + 1
    classified, failed = _email_events(world)
    # A returned email has no event: neither classified nor finally failed (k3's endpoint does not exist).
    assert classified == []
    assert [f.message_id for f in failed] == ["k3"]


def test_a_publish_failure_returns_only_that_message(world: World, endpoints: ServingEndpoints) -> None:
    sfn = world.client("stepfunctions")
    role = world.resources.sagemaker_role_arn
    definition = render_inference_workflow(
        InferenceResources(event_bus_name="no-such-bus", data_bucket=world.resources.data_bucket)
    )
    arn = sfn.create_state_machine(
        name="convclass-inference-lost-bus", definition=json.dumps(definition), roleArn=role, type="EXPRESS"
    )["stateMachineArn"]

    run = _run(world, "lost-bus", [_email("p1"), _record("p2", "{}")], arn=arn)

    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert run.output["batchItemFailures"] == [{"itemIdentifier": "p1"}, {"itemIdentifier": "p2"}]
    assert {r["status"] for r in run.output["results"]} == {i.STATUS_RETURNED}


SHARED = SHARED_ENDPOINT


def _route(world: World, tenant: str, classifier: str, target_model: str) -> None:
    """champion.json of a shared classifier, as WriteSharedChampion writes it (the route part)."""
    record = {
        "run_id": "r",
        "hosting": "shared",
        "endpoint_name": SHARED,
        "target_model": target_model,
        "model_artifacts": "s3://b/k",
        "training_job_name": "j",
        "metrics": {"accuracy": 0.9, "macro_f1": 0.9},
        "execution": "arn",
        "deployed_at": "2026-12-06T00:00:00Z",
    }
    key = layout.ClassifierLayout(tenant, classifier).champion_key
    world.client("s3").put_object(Bucket=world.resources.data_bucket, Key=key, Body=json.dumps(record))


def test_shared_classifiers_are_classified_through_their_route_and_a_repointed_route_is_followed(
    world: World, endpoints: ServingEndpoints
) -> None:
    world.events()
    first, second = "acme/support/r1/model.tar.gz", "acme/support/r2/model.tar.gz"
    endpoints.add(shared_name(SHARED, first), model_version="r1")
    endpoints.add(shared_name(SHARED, second), model_version="r2")
    _route(world, "acme", "support", first)
    try:
        run = _run(world, "shared-1", [_email("s1"), _email("s2", tenant="beta", classifier="billing")])
        assert run.status == "SUCCEEDED"
        assert run.output["batchItemFailures"] == []
        assert Counter(run.entered[1:])[i.CLASSIFY_SHARED] == 1  # beta has no route: its own endpoint
        classified, failed = _email_events(world)
        versions = {c.message_id: c.prediction["predictions"][0]["model_version"] for c in classified}
        assert (versions, failed) == ({"s1": "r1", "s2": "7"}, [])

        # A rollback (or a new deployment) is the route re-pointed: the next email follows it.
        _route(world, "acme", "support", second)
        assert _run(world, "shared-2", [_email("s3")]).status == "SUCCEEDED"
        classified, _ = _email_events(world)
        assert [c.prediction["predictions"][0]["model_version"] for c in classified] == ["r2"]

        # A route to a model the endpoint cannot load is a final failure, not a retry loop.
        _route(world, "acme", "support", "acme/support/gone/model.tar.gz")
        run = _run(world, "shared-3", [_email("s4")])
        classified, failed = _email_events(world)
        assert (run.output["batchItemFailures"], classified) == ([], [])
        assert [(f.message_id, f.error) for f in failed] == [("s4", i.VALIDATION_ERROR)]
    finally:
        world.client("s3").delete_object(
            Bucket=world.resources.data_bucket, Key=layout.ClassifierLayout("acme", "support").champion_key
        )
