"""The local stack refuses every object write the deployed bucket policy would refuse."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from convclass.deployment import bucket_policy, put_denied_by, sse_kms
from convclass.stack import StackOutputs
from convclass_local.embedded import EmbeddedAws
from convclass_local.stack import deploy


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[EmbeddedAws, StackOutputs]]:
    with EmbeddedAws() as aws:
        yield aws, deploy(aws)


def _put(aws: EmbeddedAws, outputs: StackOutputs, **extra: Any) -> None:
    aws.client("s3").put_object(
        Bucket=outputs.require("data_bucket"), Key="tenants/a/x.json", Body=b"{}", **extra
    )


def test_writes_without_the_stack_key_are_denied(stack: tuple[EmbeddedAws, StackOutputs]) -> None:
    aws, outputs = stack
    key = outputs.require("kms_key_arn")
    for extra in ({}, {"ServerSideEncryption": "AES256"}, sse_kms(key.replace(key[-4:], "0000"))):
        with pytest.raises(ClientError) as denied:
            _put(aws, outputs, **extra)
        assert denied.value.response["Error"]["Code"] == "AccessDenied"
    _put(aws, outputs, **sse_kms(key))
    copy = {"Bucket": outputs.require("data_bucket"), "Key": "tenants/a/y.json"}
    source = {"Bucket": copy["Bucket"], "Key": "tenants/a/x.json"}
    with pytest.raises(ClientError):
        aws.client("s3").copy_object(CopySource=source, **copy)
    aws.client("s3").copy_object(CopySource=source, **copy, **sse_kms(key))


def test_the_evaluator_reads_the_policy_as_s3_does() -> None:
    policy = bucket_policy("arn:aws:s3:::data", "arn:aws:kms:eu-west-1:1:key/k")
    json.dumps(policy)  # the document Pulumi attaches
    good = {
        "s3:x-amz-server-side-encryption": "aws:kms",
        "s3:x-amz-server-side-encryption-aws-kms-key-id": "arn:aws:kms:eu-west-1:1:key/k",
    }
    assert put_denied_by(policy, good) is None
    assert put_denied_by(policy, {}) == "DenyOtherEncryption"
    assert put_denied_by(policy, {**good, "s3:x-amz-server-side-encryption-aws-kms-key-id": None}) == (
        "DenyOtherKmsKeys"
    )
