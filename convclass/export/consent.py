"""Consent: an export runs only for a tenant/classifier with a recorded approval at ``layout.consent_key``.

The check fails closed: a missing, unreadable, revoked or out-of-scope record all refuse with
:class:`~convclass.errors.ExportNotApproved`. Records are written here only: by ``convclass consent`` and by
the training run itself when its export gate is answered (approval → consent, rejection → refusal). A
refusal or revocation also drops the classifier's committed training history, so nothing exported before
the withdrawal is trained on again: the next approved run exports the whole history afresh.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from convclass.deployment import sse_kms
from convclass.errors import ExportNotApproved
from convclass.layout import ClassifierLayout


class ConsentRecord(BaseModel):
    """``consent.json``: who approved using the tenant's conversations for training, and for which labels."""

    model_config = ConfigDict(extra="ignore")

    approved: bool
    approved_by: str = Field(min_length=1, max_length=256)
    approved_at: datetime
    #: Label fields the approval covers; ``None`` covers every label field of the classifier.
    label_fields: list[str] | None = None
    revoked_at: datetime | None = None
    #: The reviewer's note on an export gate's answer.
    reason: str | None = Field(default=None, max_length=1024)


def record_consent(
    s3: Any, bucket: str, where: ClassifierLayout, record: ConsentRecord, *, kms_key_arn: str | None
) -> str:
    """Store an approval or a refusal (the export gate and the operator CLI call this); returns the key.

    ``kms_key_arn`` is the deployment's data key (the bucket policy denies writes without it); None only
    for a bucket without that policy.
    """
    s3.put_object(
        Bucket=bucket,
        Key=where.consent_key,
        Body=record.model_dump_json().encode(),
        ContentType="application/json",
        **(sse_kms(kms_key_arn) if kms_key_arn else {}),
    )
    if not record.approved or record.revoked_at is not None:
        # The watermark names the committed history: without it the next run starts from nothing.
        s3.delete_object(Bucket=bucket, Key=where.watermark_key)
    return where.consent_key


class GateAnswer(BaseModel):
    """What a reviewer's tool sends with the export gate's answer (``convclass approve`` / ``reject``)."""

    model_config = ConfigDict(extra="ignore")

    approver: str = Field(
        default="unknown",
        min_length=1,
        max_length=256,
        validation_alias=AliasChoices("approver", "approved_by"),
    )
    reason: str = Field(default="", max_length=1024)


def parse_gate_answer(value: object) -> GateAnswer:
    """The answer as sent (an object, or JSON text in a rejection's cause); anything else is anonymous."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return GateAnswer()
    if not isinstance(value, dict):
        return GateAnswer()
    try:
        return GateAnswer.model_validate(value)
    except ValidationError:
        return GateAnswer()


def gate_answer_record(*, approved: bool, answer: object, label_field: str, now: datetime) -> ConsentRecord:
    """The consent record an export gate's answer makes: approval or refusal of ``label_field``."""
    reviewer = parse_gate_answer(answer)
    return ConsentRecord(
        approved=approved,
        approved_by=reviewer.approver,
        approved_at=now,
        label_fields=[label_field],
        reason=reviewer.reason or None,
    )


def require_consent(s3: Any, bucket: str, where: ClassifierLayout, label_field: str) -> ConsentRecord:
    """Return the tenant's approval for ``label_field`` or raise ``ExportNotApproved``."""
    try:
        body = s3.get_object(Bucket=bucket, Key=where.consent_key)["Body"].read()
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        # The export function may list the bucket, so a missing record reads as 404; AccessDenied is a
        # misconfigured role, which must surface rather than read as "the tenant never approved".
        if code in {"NoSuchKey", "404", "NotFound"}:
            raise ExportNotApproved(
                f"no recorded approval for tenant {where.tenant!r} classifier {where.classifier!r}"
            ) from None
        raise
    try:
        record = ConsentRecord.model_validate(json.loads(body))
    except (ValueError, ValidationError):
        raise ExportNotApproved("the recorded approval is unreadable; record it again") from None
    if not record.approved or record.revoked_at is not None:
        raise ExportNotApproved(f"approval for tenant {where.tenant!r} is not granted or was revoked")
    if record.label_fields is not None and label_field not in record.label_fields:
        raise ExportNotApproved(f"the recorded approval does not cover label field {label_field!r}")
    return record
