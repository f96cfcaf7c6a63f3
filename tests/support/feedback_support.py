"""A deployed classifier as the feedback loop finds it (champion, dataset manifest, the run's request), and
bus events shaped the way the inference workflow and the host product send them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from convclass import layout
from convclass.dataset.manifest import DatasetManifest
from convclass.deployment import sse_kms
from convclass.events import EMAIL_CLASSIFIED, INFERENCE_SOURCE, TrainingRunRequest
from convclass.feedback.events import HOST_SOURCE, LABEL_CONFIRMED

#: Marker put into events beside the fields the feedback loop keeps: it must never reach S3.
EMAIL_TEXT = "Dear support, my IBAN is DE89370400440532013000 and I want a refund"


def deployed_request(tenant: str, classifier: str = "intent") -> TrainingRunRequest:
    return TrainingRunRequest.model_validate(
        {
            "tenant": tenant,
            "classifier": classifier,
            "label_field": "intent",
            "data_source": {"kind": "files", "uri": "s3://drop-bucket/acme/"},
        }
    )


def manifest(tenant: str, classifier: str, run_id: str, train_counts: dict[str, int]) -> DatasetManifest:
    kept = sum(train_counts.values())
    return DatasetManifest.model_validate(
        {
            "status": "ok",
            "tenant": tenant,
            "classifier": classifier,
            "run_id": run_id,
            "label_field": "intent",
            "cleaning_version": "3",
            "max_chars": 4000,
            "created_at": "2026-11-01T00:00:00Z",
            "labels": sorted(train_counts),
            "dropped_labels": {},
            "counts": {"read": kept, "kept": kept},
            "split_counts": {"train": train_counts, "validation": {}, "test": {}},
            "cleaning": {},
            "options": {
                "seed": 1,
                "ratios": {"train": 1.0},
                "min_examples_per_label": 10,
                "min_total_examples": 1,
            },
            "inputs": [],
        }
    )


def deploy(
    s3: Any,
    bucket: str,
    kms_key_arn: str,
    *,
    tenant: str,
    execution_arn: str,
    accuracy: float,
    train_counts: dict[str, int],
    classifier: str = "intent",
    deployed_at: str = "2026-11-30T00:00:00Z",
) -> None:
    """Write champion.json and its dataset manifest, as a finished run leaves them."""
    where, run_id = layout.ClassifierLayout(tenant, classifier), "run-1"
    champion = {
        "run_id": run_id,
        "model_name": "m",
        "endpoint_config_name": "c",
        "model_artifacts": f"s3://{bucket}/model.tar.gz",
        "training_job_name": "j",
        "metrics": {"accuracy": accuracy, "macro_f1": accuracy},
        "execution": execution_arn,
        "deployed_at": deployed_at,
    }
    s3.put_object(Bucket=bucket, Key=where.champion_key, Body=json.dumps(champion), **sse_kms(kms_key_arn))
    s3.put_object(
        Bucket=bucket,
        Key=where.dataset_manifest_key(run_id),
        Body=manifest(tenant, classifier, run_id, train_counts).model_dump_json(),
        **sse_kms(kms_key_arn),
    )


def _envelope(event_id: str, detail_type: str, source: str, when: datetime, detail: dict[str, Any]) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": event_id,
            "detail-type": detail_type,
            "source": source,
            "account": "123456789012",
            "time": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": "us-east-1",
            "resources": [],
            "detail": detail,
        }
    )


def classified_event(
    tenant: str,
    conversation: str,
    labels: list[tuple[str, float]],
    when: datetime,
    classifier: str = "intent",
) -> str:
    detail = {
        "tenant": tenant,
        "classifier": classifier,
        "conversation_id": conversation,
        "message_id": f"msg-{conversation}",
        "prediction": {
            "predictions": [
                {
                    "id": None,
                    "labels": [{"label": label, "probability": p} for label, p in labels],
                    "model_version": "1",
                    "cleaning_version": "3",
                    "warnings": [],
                }
            ]
        },
        # Anything else a publisher adds is not kept.
        "subject": EMAIL_TEXT,
    }
    return _envelope(f"ev-{tenant}-{conversation}", EMAIL_CLASSIFIED, INFERENCE_SOURCE, when, detail)


def confirmed_event(
    tenant: str, conversation: str, label: str, when: datetime, classifier: str = "intent"
) -> str:
    detail = {
        "event_id": f"conf-{tenant}-{conversation}-{label}",
        "tenant": tenant,
        "classifier": classifier,
        "conversation_id": conversation,
        "label": label,
        "confirmed_at": when.astimezone(UTC).isoformat(),
        "agent": "agent-42",
    }
    return _envelope(f"bus-{tenant}-{conversation}-{label}", LABEL_CONFIRMED, HOST_SOURCE, when, detail)


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"r{i}",
                "body": body,
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:feedback",
                "awsRegion": "us-east-1",
            }
            for i, body in enumerate(bodies)
        ]
    }
