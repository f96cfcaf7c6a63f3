"""Consent: an export runs only for a tenant/classifier with a recorded approval at ``layout.consent_key``.

The check fails closed: a missing, unreadable, revoked or out-of-scope record all refuse with
:class:`~convclass.errors.ExportNotApproved`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

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


def record_consent(
    s3: Any, bucket: str, where: ClassifierLayout, record: ConsentRecord, *, kms_key_arn: str | None
) -> str:
    """Store an approval (the approval gate and the operator CLI call this); returns the key.

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
    return where.consent_key


def require_consent(s3: Any, bucket: str, where: ClassifierLayout, label_field: str) -> ConsentRecord:
    """Return the tenant's approval for ``label_field`` or raise ``ExportNotApproved``."""
    try:
        body = s3.get_object(Bucket=bucket, Key=where.consent_key)["Body"].read()
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        # Without s3:ListBucket a missing key reads as AccessDenied: both mean "no approval we can see".
        if code in {"NoSuchKey", "404", "NotFound", "AccessDenied", "403"}:
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
