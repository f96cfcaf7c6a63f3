"""The data bucket's deployed policy, enforced on the embedded AWS.

moto stores bucket policies but does not evaluate the ``s3:x-amz-server-side-encryption*`` condition keys
the deployed policy uses (with them in place it refuses every PUT, encrypted or not). So the local stack
keeps the policy document here and every object write that reaches moto's S3 backend — PutObject, the last
step of a multipart upload, CopyObject, and the state machine's ``aws-sdk:s3`` tasks alike — is checked
against its PutObject statements with :func:`convclass.deployment.put_denied_by`. The TLS-only statement is
left out: the embedded endpoint is plain HTTP on the loopback interface.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from moto.s3.exceptions import S3AccessDeniedError
from moto.s3.models import S3Backend

from convclass.deployment import TLS_ONLY_SID, bucket_policy, put_denied_by

_policies: dict[str, dict[str, Any]] = {}
_lock = threading.Lock()
_patched = False


def enforce(bucket: str, kms_key_arn: str) -> None:
    """Deny object writes to ``bucket`` that the deployed policy would deny."""
    global _patched
    policy = bucket_policy(f"arn:aws:s3:::{bucket}", kms_key_arn)
    policy["Statement"] = [item for item in policy["Statement"] if item["Sid"] != TLS_ONLY_SID]
    with _lock:
        _policies[bucket] = policy
        if not _patched:
            _patch()
            _patched = True


def _patch() -> None:
    original = S3Backend.put_object

    @functools.wraps(original)
    def put_object(self: Any, bucket_name: str, key_name: str, *args: Any, **kwargs: Any) -> Any:
        policy = _policies.get(bucket_name)
        if policy is not None:
            headers = {
                "s3:x-amz-server-side-encryption": kwargs.get("encryption"),
                "s3:x-amz-server-side-encryption-aws-kms-key-id": kwargs.get("kms_key_id"),
            }
            if put_denied_by(policy, headers) is not None:
                raise S3AccessDeniedError()
        return original(self, bucket_name, key_name, *args, **kwargs)

    S3Backend.put_object = put_object  # type: ignore[method-assign]
