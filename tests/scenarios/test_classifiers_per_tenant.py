"""One tenant, two classifiers (topic and urgency) trained from the same export records, each its own model.

The request contract names one ``classifier`` and one ``label_field`` per run, and every derived name (S3
prefix, execution, endpoint, model) is keyed by tenant + classifier: two requests over the same dropped
records with different label fields give two datasets with their own label sets, two models and two
endpoints, and each endpoint answers with its own classifier's labels only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scenario_support import (
    BusObserver,
    drop_records,
    local_request,
    send_inbound,
    tenant_records,
    wait_execution,
)

from convclass import layout
from convclass.dataset.manifest import DatasetManifest
from convclass.deployment import INBOUND_BATCH_SIZE
from convclass.events import EMAIL_CLASSIFICATION_FAILED, EMAIL_CLASSIFIED, inbound_max_message_bytes
from convclass.inbound import inbound_message
from convclass.operator import Operator
from convclass.serving.schemas import EmailIn, InvocationResponse
from convclass_local.runtime import LocalRuntime

pytestmark = pytest.mark.slow

TENANT = "acme"
#: classifier id → the label field of the export records it is trained on.
CLASSIFIERS = {"topic": "intent", "urgency": "urgency"}
#: Urgency follows the topic here (so it can be learnt from the text); the labels never overlap with topics.
URGENCY = {"account_access": "urgent", "technical_problem": "urgent", "billing_issue": "urgent"}


def _records(n: int, seed: int) -> list[dict[str, Any]]:
    records = tenant_records(TENANT, "topic_", n, seed)
    for record in records:
        intent = record["labels"]["intent"].removeprefix("topic_")
        record["labels"]["urgency"] = "urgency_" + URGENCY.get(intent, "routine")
    return records


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    with LocalRuntime(workdir=tmp_path_factory.mktemp("classifiers"), persist=False) as local:
        yield local


def test_two_classifiers_of_one_tenant_train_from_one_export_into_separate_models(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    operator = Operator(runtime.outputs)
    observer = BusObserver(runtime, "scenario-classifiers")
    records = _records(300, seed=11)
    assert len({r["labels"]["urgency"] for r in records}) >= 2
    uri = drop_records(runtime, TENANT, records, tmp_path)  # one set of records for both classifiers
    executions = {}
    for classifier, field in CLASSIFIERS.items():
        operator.record_consent(TENANT, classifier, field, approver="privacy-office")
        executions[classifier] = operator.start_training(
            local_request(
                TENANT,
                classifier,
                uri,
                business_key="first",
                label_field=field,
                min_accuracy=0.0,
                hosting="dedicated",
            )
        )
    assert len(set(executions.values())) == 2

    s3 = runtime.aws.client("s3")
    sagemaker = runtime.aws.client("sagemaker")
    endpoints: dict[str, str] = {}
    for classifier, field in CLASSIFIERS.items():
        described = wait_execution(runtime, executions[classifier])
        assert described["status"] == "SUCCEEDED", described.get("cause")
        where = layout.ClassifierLayout(TENANT, classifier)
        # Its own dataset, built from the requested label field only.
        listed = s3.list_objects_v2(Bucket=runtime.bucket, Prefix=where.area_prefix(layout.DATASETS))
        manifests = [o["Key"] for o in listed.get("Contents", []) if o["Key"].endswith("/manifest.json")]
        assert len(manifests) == 1
        body = s3.get_object(Bucket=runtime.bucket, Key=manifests[0])["Body"].read()
        manifest = DatasetManifest.model_validate(json.loads(body))
        assert (manifest.classifier, manifest.label_field) == (classifier, field)
        expected = {r["labels"][field] for r in records}
        assert set(manifest.labels) <= expected
        assert len(manifest.labels) >= 2
        # Its own endpoint, serving a model trained under its own prefix.
        endpoint = sagemaker.describe_endpoint(EndpointName=layout.endpoint_name(TENANT, classifier))
        config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
        assert where.prefix in model["PrimaryContainer"]["ModelDataUrl"]
        endpoints[classifier] = endpoint["EndpointName"]
    assert len(set(endpoints.values())) == 2

    messages, expected_prefix = [], {}
    for classifier in CLASSIFIERS:
        runtime.endpoints.ensure(endpoints[classifier])
        for index, email in enumerate(_records(4, seed=100)):
            conversation = f"{classifier}-{email['conversation_id']}"
            request = EmailIn(
                id=conversation,
                subject=email.get("subject"),
                body=email["body"],
                body_content_type=email.get("body_content_type", "text/html"),
            )
            messages.append(
                inbound_message(
                    entry_id=f"{classifier}-{index}",
                    tenant=TENANT,
                    classifier=classifier,
                    conversation_id=conversation,
                    email=request,
                    max_bytes=inbound_max_message_bytes(INBOUND_BATCH_SIZE),
                )
            )
            expected_prefix[conversation] = (classifier, f"{classifier}_")
    sent = send_inbound(runtime, messages)

    def answered(events: list[dict[str, Any]]) -> bool:
        kinds = (EMAIL_CLASSIFIED, EMAIL_CLASSIFICATION_FAILED)
        return (
            len({e["detail"].get("conversation_id") for e in events if e.get("detail-type") in kinds}) >= sent
        )

    observer.wait_for(answered, timeout_s=180)
    answers: dict[str, list[str]] = {}
    for event in observer.of_type(EMAIL_CLASSIFIED):
        detail = event["detail"]
        classifier, prefix = expected_prefix[detail["conversation_id"]]
        assert detail["classifier"] == classifier
        response = InvocationResponse.model_validate(detail["prediction"])
        labels = [score.label for prediction in response.predictions for score in prediction.labels]
        assert labels
        assert all(label.startswith(prefix) for label in labels), (classifier, labels)
        answers[detail["conversation_id"]] = labels
    assert set(answers) == set(expected_prefix)
