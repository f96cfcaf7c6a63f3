"""Labelled conversations for the training-pipeline scenarios, dropped where ``workflow_lab.request``'s files
source reads them, and the tenant's consent."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import boto3

from convclass import layout
from convclass.export.consent import ConsentRecord, record_consent
from convclass_local.workflow_lab import BUCKET, REGION

CLASSIFIER = "support"  # what workflow_lab.request asks for
LABELS = ("card_lost", "refund", "delivery")
_FIRST = ("amber", "birch", "cedar", "delta", "ember", "fjord", "grove", "heath", "inlet", "juniper", "kelp")
_SECOND = ("lamp", "mesa", "north", "oak", "pine", "quartz", "reef", "sage", "tide", "umber", "vale", "wren")
PAST = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def conversation(tenant: str, index: int, when: datetime, label: str | None = None) -> dict[str, Any]:
    """One labelled conversation in export-record shape, with a text no other index shares."""
    chosen = label or LABELS[index % len(LABELS)]
    words = f"{_FIRST[index % len(_FIRST)]} {_SECOND[(index // len(_FIRST)) % len(_SECOND)]}"
    topic = {
        "card_lost": "my card is lost",
        "refund": "I want my money back",
        "delivery": "where is my parcel",
    }
    return {
        "conversation_id": f"c{index:03d}",
        "tenant_id": tenant,
        "created_at": PAST.isoformat(),
        "updated_at": when.isoformat(),
        "subject": f"Help {words}",
        "body": f"Hello, {topic[chosen]}. Reference words: {words} number {index}.",
        "body_content_type": "text/plain",
        "labels": {"intent": chosen},
    }


def deletion(tenant: str, index: int, when: datetime) -> dict[str, Any]:
    """A tombstone row: the conversation was deleted at the source."""
    return {
        "conversation_id": f"c{index:03d}",
        "tenant_id": tenant,
        "created_at": PAST.isoformat(),
        "updated_at": when.isoformat(),
        "deleted": True,
    }


def s3() -> Any:
    return boto3.client("s3", region_name=REGION)


def drop(tenant: str, name: str, rows: Iterable[dict[str, Any]]) -> None:
    body = "".join(json.dumps(row) + "\n" for row in rows).encode()
    s3().put_object(Bucket=BUCKET, Key=f"drop/{tenant}/{name}.jsonl", Body=body)


def grant(tenant: str) -> None:
    record = ConsentRecord(approved=True, approved_by="privacy-office", approved_at=PAST)
    record_consent(s3(), BUCKET, layout.ClassifierLayout(tenant, CLASSIFIER), record, kms_key_arn=None)
