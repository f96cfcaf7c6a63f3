"""Two tenants on one shared multi-model endpoint, then a rollback that only re-points a route.

Both tenants train through the real pipeline with ``hosting="shared"``: each approved model is published
under its own immutable key, warmed on the shared endpoint (the real serving app in multi-model mode) and
recorded as the classifier's route. Inbound emails of both tenants go through the real inference workflow,
which reads each route and passes ``TargetModel``; every tenant's labels carry its own prefix, so a leak shows
in the predicted label. Then tenant ``alpha`` deploys a second model (new label prefix) and rolls back to the
first by writing the first run's champion record again: the next emails are answered by the first model, and
nothing is copied.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scenario_support import (
    LABEL_FIELD,
    BusObserver,
    ScenarioCounts,
    drop_records,
    local_request,
    send_inbound,
    tenant_records,
    wait_execution,
)

from convclass import layout
from convclass.deployment import INBOUND_BATCH_SIZE
from convclass.events import (
    EMAIL_CLASSIFICATION_FAILED,
    EMAIL_CLASSIFIED,
    ChampionRecord,
    inbound_max_message_bytes,
)
from convclass.hosting import keys
from convclass.inbound import inbound_message
from convclass.operator import Operator
from convclass.serving.schemas import EmailIn, InvocationResponse
from convclass_local.runtime import LocalRuntime

pytestmark = pytest.mark.slow

CLASSIFIER = "support"
PREFIXES = {"alpha": "a_", "bravo": "b_"}


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    with LocalRuntime(workdir=tmp_path_factory.mktemp("shared"), persist=False) as local:
        yield local


def _train(runtime: LocalRuntime, tenant: str, prefix: str, key: str, seed: int, tmp: Path) -> str:
    uri = drop_records(runtime, tenant, tenant_records(tenant, prefix, 300, seed), tmp)
    request = local_request(
        tenant, CLASSIFIER, uri, business_key=key, min_accuracy=0.0, tolerance=1.0, hosting="shared"
    )
    return Operator(runtime.outputs).start_training(request)


def _champion(runtime: LocalRuntime, tenant: str) -> tuple[ChampionRecord, bytes]:
    key = layout.ClassifierLayout(tenant, CLASSIFIER).champion_key
    body: bytes = runtime.aws.client("s3").get_object(Bucket=runtime.bucket, Key=key)["Body"].read()
    return ChampionRecord.model_validate_json(body), body


def _classify(
    runtime: LocalRuntime, observer: BusObserver, tenants: dict[str, str], seed: int
) -> dict[str, list[str]]:
    """Send six emails per tenant through the inbound queue: each conversation's predicted labels."""
    messages, owner = [], {}
    for tenant in tenants:
        for index, email in enumerate(tenant_records(tenant, "", 6, seed=seed)):
            conversation = f"{tenant}-{seed}-{index}"
            request = EmailIn(id=conversation, body=email["body"], body_content_type="text/plain")
            messages.append(
                inbound_message(
                    entry_id=conversation,
                    tenant=tenant,
                    classifier=CLASSIFIER,
                    conversation_id=conversation,
                    email=request,
                    max_bytes=inbound_max_message_bytes(INBOUND_BATCH_SIZE),
                )
            )
            owner[conversation] = tenant
    sent = send_inbound(runtime, messages)

    def answered(events: list[dict[str, Any]]) -> bool:
        done = {
            e["detail"].get("conversation_id")
            for e in events
            if e.get("detail-type") in (EMAIL_CLASSIFIED, EMAIL_CLASSIFICATION_FAILED)
        }
        return owner.keys() <= done

    observer.wait_for(answered, timeout_s=180)
    labels: dict[str, list[str]] = {}
    for event in observer.of_type(EMAIL_CLASSIFIED):
        detail = event["detail"]
        if detail["conversation_id"] in owner:
            answer = InvocationResponse.model_validate(detail["prediction"])
            labels[detail["conversation_id"]] = [
                score.label for prediction in answer.predictions for score in prediction.labels
            ]
    assert len(messages) == sent
    failed = [
        e
        for e in observer.of_type(EMAIL_CLASSIFICATION_FAILED)
        if e["detail"].get("conversation_id") in owner
    ]
    assert failed == []
    return labels


def _leaks(labels: dict[str, list[str]], expected: dict[str, str]) -> int:
    return sum(
        1
        for conversation, found in labels.items()
        if not all(label.startswith(expected[conversation.split("-")[0]]) for label in found)
    )


def test_two_tenants_share_one_endpoint_in_isolation_and_roll_back_by_repointing(
    runtime: LocalRuntime, tmp_path: Path, totals: ScenarioCounts
) -> None:
    shared = runtime.outputs.require("shared_endpoint_name")
    for tenant in PREFIXES:
        Operator(runtime.outputs).record_consent(tenant, CLASSIFIER, LABEL_FIELD, approver="privacy-office")
    executions = {
        tenant: _train(runtime, tenant, prefix, "first", seed, tmp_path)
        for seed, (tenant, prefix) in enumerate(PREFIXES.items(), start=1)
    }
    routes = {}
    for tenant, arn in executions.items():
        described = wait_execution(runtime, arn)
        assert described["status"] == "SUCCEEDED", described.get("cause")
        record, _ = _champion(runtime, tenant)
        assert (record.hosting, record.endpoint_name) == ("shared", shared)
        assert record.target_model is not None
        assert record.target_model.startswith(
            keys.shared_classifier_prefix(tenant, CLASSIFIER).removeprefix(keys.SHARED_MODELS_PREFIX)
        )
        routes[tenant] = record.target_model
    assert len(set(routes.values())) == 2
    # Nobody got a dedicated endpoint.
    names = {e["EndpointName"] for e in runtime.aws.client("sagemaker").list_endpoints()["Endpoints"]}
    assert names.isdisjoint({layout.endpoint_name(tenant, CLASSIFIER) for tenant in PREFIXES})

    observer = BusObserver(runtime, "scenario-shared")
    labels = _classify(runtime, observer, PREFIXES, seed=100)
    first_leaks = _leaks(labels, PREFIXES)
    assert len(labels) == 12
    assert first_leaks == 0
    # The operator's path (`convclass classify`) follows the same route to the shared endpoint.
    for tenant, prefix in PREFIXES.items():
        email = tenant_records(tenant, "", 1, seed=300)[0]
        (prediction,) = Operator(runtime.outputs).classify(
            tenant, CLASSIFIER, [{"body": email["body"], "body_content_type": "text/plain"}]
        )
        assert all(score["label"].startswith(prefix) for score in prediction["labels"])

    # alpha deploys a second model (its labels now carry "a2_"), then rolls back by re-pointing its route.
    first_record, first_body = _champion(runtime, "alpha")
    described = wait_execution(runtime, _train(runtime, "alpha", "a2_", "second", 3, tmp_path))
    assert described["status"] == "SUCCEEDED", described.get("cause")
    second_record, _ = _champion(runtime, "alpha")
    assert second_record.target_model != first_record.target_model
    labels = _classify(runtime, observer, {"alpha": "a2_"}, seed=200)
    assert len(labels) == 6
    assert _leaks(labels, {"alpha": "a2_"}) == 0

    runtime.aws.client("s3").put_object(
        Bucket=runtime.bucket,
        Key=layout.ClassifierLayout("alpha", CLASSIFIER).champion_key,
        Body=first_body,
        ContentType="application/json",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=runtime.outputs.require("kms_key_arn"),
    )
    labels = _classify(runtime, observer, {"alpha": "a_", "bravo": "b_"}, seed=300)
    rollback_leaks = _leaks(labels, PREFIXES)
    assert len(labels) == 12
    assert all(not label.startswith("a2_") for found in labels.values() for label in found)
    totals.add(emails_sent=30, emails_classified=30, cross_tenant_leaks=first_leaks + rollback_leaks)
    assert rollback_leaks == 0
