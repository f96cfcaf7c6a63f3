"""Two tenants whose ids joined with '-' would have collided, trained and served side by side.

("acme", "shop-intent") and ("acme-shop", "intent") once shared every derived name: one tenant's run was
dropped as a duplicate or replaced the other's model. Here both train through the real pipeline at the same
time, each gets its own endpoint and model, and every email is classified by its own tenant's model only
(each tenant's labels carry a tenant-specific prefix, so a leak shows in the predicted label).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scenario_support import (
    FAST_TRAINING,
    BusObserver,
    ScenarioCounts,
    drop_records,
    inbound_message,
    send_inbound,
    wait_execution,
)

from convclass import layout
from convclass.events import (
    EMAIL_CLASSIFICATION_FAILED,
    EMAIL_CLASSIFIED,
    DataSource,
    RunOptions,
    TrainingRunRequest,
)
from convclass.generator import generate_emails
from convclass.local.runtime import LocalRuntime
from convclass.operator import Operator
from convclass.serving.schemas import InvocationResponse

pytestmark = pytest.mark.slow

LABEL_FIELD = "intent"
TENANTS = {("acme", "shop-intent"): "a_", ("acme-shop", "intent"): "b_"}


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    with LocalRuntime(workdir=tmp_path_factory.mktemp("tenants"), persist=False) as local:
        yield local


def _records(tenant: str, prefix: str, n: int, seed: int) -> list[dict[str, Any]]:
    records = generate_emails(n, seed=seed, tenant_id=tenant, label_field=LABEL_FIELD)
    for record in records:
        record["labels"][LABEL_FIELD] = prefix + record["labels"][LABEL_FIELD]
    return records


def _request(tenant: str, classifier: str, uri: str) -> TrainingRunRequest:
    return TrainingRunRequest(
        tenant=tenant,
        classifier=classifier,
        label_field=LABEL_FIELD,
        data_source=DataSource(kind="files", uri=uri),
        options=RunOptions(
            full_export=True,
            managed_spot=False,
            training_instance_type="ml.m5.xlarge",
            hyperparameters=FAST_TRAINING,
            min_accuracy=0.0,
        ),
        business_key="first",
    )


def test_tenants_whose_ids_once_collided_train_and_serve_in_isolation(
    runtime: LocalRuntime, tmp_path: Path, counts: ScenarioCounts
) -> None:
    operator = Operator(runtime.outputs)
    observer = BusObserver(runtime, "scenario-tenants")
    executions = {}
    for seed, ((tenant, classifier), prefix) in enumerate(TENANTS.items(), start=1):
        uri = drop_records(runtime, tenant, _records(tenant, prefix, 300, seed), tmp_path)
        operator.record_consent(tenant, classifier, LABEL_FIELD, approver="privacy-office")
        executions[(tenant, classifier)] = operator.start_training(_request(tenant, classifier, uri))
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
        for index, email in enumerate(_records(tenant, prefix, 6, seed=100)):
            messages.append(inbound_message(f"{tenant}-{index}", tenant, classifier, email))
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
    counts.add(
        emails_sent=sent,
        emails_classified=len(seen),
        emails_lost=lost,
        duplicate_events=duplicates,
        cross_tenant_leaks=leaks,
    )
    assert (lost, duplicates, leaks) == (0, 0, 0)
    assert len(seen) == sent == 12
