"""Two tenants whose ids joined with '-' would have collided, trained and served side by side.

("acme", "shop-intent") and ("acme-shop", "intent") once shared every derived name: one tenant's run was
dropped as a duplicate or replaced the other's model. Here both train through the real pipeline at the same
time, each gets its own endpoint and model (both ask for ``dedicated`` hosting; test_shared_hosting.py
puts two tenants on the default shared endpoint), and every email is classified by its own tenant's model
only (each tenant's labels carry a tenant-specific prefix, so a leak shows in the predicted label).
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
    inbound_max_message_bytes,
)
from convclass.inbound import inbound_message
from convclass.operator import Operator
from convclass.serving.schemas import EmailIn, InvocationResponse
from convclass_local.runtime import LocalRuntime

pytestmark = pytest.mark.slow

TENANTS = {("acme", "shop-intent"): "a_", ("acme-shop", "intent"): "b_"}


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    with LocalRuntime(workdir=tmp_path_factory.mktemp("tenants"), persist=False) as local:
        yield local


def test_tenants_whose_ids_once_collided_train_and_serve_in_isolation(
    runtime: LocalRuntime, tmp_path: Path, totals: ScenarioCounts
) -> None:
    operator = Operator(runtime.outputs)
    observer = BusObserver(runtime, "scenario-tenants")
    executions = {}
    for seed, ((tenant, classifier), prefix) in enumerate(TENANTS.items(), start=1):
        uri = drop_records(runtime, tenant, tenant_records(tenant, prefix, 300, seed), tmp_path)
        operator.record_consent(tenant, classifier, LABEL_FIELD, approver="privacy-office")
        executions[(tenant, classifier)] = operator.start_training(
            local_request(
                tenant, classifier, uri, business_key="first", min_accuracy=0.0, hosting="dedicated"
            )
        )
    assert len(set(executions.values())) == 2, "both runs started: neither was taken for the other"

    sagemaker = runtime.aws.client("sagemaker")
    deployed: dict[tuple[str, str], str] = {}
    for pair, arn in executions.items():
        described = wait_execution(runtime, arn)
        assert described["status"] == "SUCCEEDED", described.get("cause")
        endpoint = sagemaker.describe_endpoint(EndpointName=layout.endpoint_name(*pair))
        config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
        # The model each endpoint serves was trained under that tenant's own prefix.
        assert layout.ClassifierLayout(*pair).prefix in model["PrimaryContainer"]["ModelDataUrl"]
        deployed[pair] = endpoint["EndpointName"]
    assert len(set(deployed.values())) == 2

    messages, expected_prefix = [], {}
    for (tenant, classifier), prefix in TENANTS.items():
        runtime.endpoints.ensure(deployed[(tenant, classifier)])
        for index, email in enumerate(tenant_records(tenant, prefix, 6, seed=100)):
            request = EmailIn(
                id=email["conversation_id"],
                subject=email.get("subject"),
                body=email["body"],
                body_content_type=email.get("body_content_type", "text/html"),
            )
            messages.append(
                inbound_message(
                    entry_id=f"{tenant}-{index}",
                    tenant=tenant,
                    classifier=classifier,
                    conversation_id=email["conversation_id"],
                    email=request,
                    max_bytes=inbound_max_message_bytes(INBOUND_BATCH_SIZE),
                )
            )
            expected_prefix[email["conversation_id"]] = (tenant, classifier, prefix)
    sent = send_inbound(runtime, messages)

    def answered(events: list[dict[str, Any]]) -> bool:
        done = {
            e["detail"].get("conversation_id")
            for e in events
            if e.get("detail-type") in (EMAIL_CLASSIFIED, EMAIL_CLASSIFICATION_FAILED)
        }
        return len(done) >= sent

    observer.wait_for(answered, timeout_s=180)
    classified = observer.of_type(EMAIL_CLASSIFIED)
    leaks = 0
    seen: dict[str, int] = {}
    for event in classified:
        detail = event["detail"]
        conversation = detail["conversation_id"]
        seen[conversation] = seen.get(conversation, 0) + 1
        tenant, classifier, prefix = expected_prefix[conversation]
        answer = InvocationResponse.model_validate(detail["prediction"])  # the serving app's own schema
        labels = [score.label for prediction in answer.predictions for score in prediction.labels]
        if (detail["tenant"], detail["classifier"]) != (tenant, classifier) or not all(
            label.startswith(prefix) for label in labels
        ):
            leaks += 1
    lost = sum(1 for conversation in expected_prefix if conversation not in seen)
    duplicates = sum(n - 1 for n in seen.values())
    totals.add(
        emails_sent=sent,
        emails_classified=len(seen),
        emails_lost=lost,
        duplicate_events=duplicates,
        cross_tenant_leaks=leaks,
    )
    assert (lost, duplicates, leaks) == (0, 0, 0)
    assert len(seen) == sent == 12
