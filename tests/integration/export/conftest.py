"""Fixtures of the export tests: a moto S3 data bucket, with or without a recorded approval."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from convclass.export.consent import ConsentRecord, record_consent

# The helper modules next to this file (export_support, fake_opensearch) are imported by name from the test
# modules; under --import-mode=importlib pytest does not put test folders on sys.path itself.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_support import BUCKET, WHERE

for _name in ("botocore", "boto3", "urllib3", "moto", "opensearch"):
    logging.getLogger(_name).setLevel(logging.WARNING)


@pytest.fixture
def aws(fake_aws_credentials: None) -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def s3(aws: None) -> Any:
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def approved(s3: Any) -> Any:
    record_consent(
        s3,
        BUCKET,
        WHERE,
        ConsentRecord(
            approved=True, approved_by="privacy-office", approved_at=datetime(2026, 1, 1, tzinfo=UTC)
        ),
        kms_key_arn=None,
    )
    return s3
