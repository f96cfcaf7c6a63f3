"""Property-based fuzzing of the app against its own OpenAPI document (schemathesis), over a real SavedModel.

Positive and negative bodies for each operation and media type, bounded in examples: never a 5xx, always a
documented status code and a response that matches its documented schema.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.openapi import from_asgi

from convclass.serving import ServingLimits, create_app, load_classifier, open_artifact


@pytest.fixture(scope="module")
def api_schema(artifact_dir: Path) -> schemathesis.BaseSchema:
    classifier = load_classifier(open_artifact(artifact_dir))
    limits = ServingLimits(max_batch_emails=8, max_request_bytes=64_000, max_email_bytes=8_000)
    # A batch over the documented maxItems is schema-violating and rejected with 413 (by design), which
    # schemathesis' negative-data check only counts as a rejection when told.
    config = SchemathesisConfig.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": [400, 413, 415]}}}
    )
    return from_asgi("/openapi.json", create_app(classifier, limits=limits), config=config)


def operations(schema: schemathesis.BaseSchema) -> list[schemathesis.APIOperation]:
    return [result.ok() for result in schema.get_all_operations()]


def test_the_openapi_document_covers_both_operations(api_schema: schemathesis.BaseSchema) -> None:
    labels = sorted(operation.label for operation in operations(api_schema))
    assert labels == ["GET /ping", "POST /invocations"]


POSITIVE, NEGATIVE = schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE


@pytest.mark.parametrize(
    ("label", "media_type", "mode"),
    [
        ("GET /ping", None, POSITIVE),  # no inputs to break: negative mode has nothing to generate
        ("POST /invocations", "application/json", POSITIVE),
        ("POST /invocations", "application/json", NEGATIVE),
        ("POST /invocations", "text/plain", POSITIVE),
        ("POST /invocations", "text/plain", NEGATIVE),
    ],
)
def test_api_honours_its_openapi(
    api_schema: schemathesis.BaseSchema, label: str, media_type: str | None, mode: schemathesis.GenerationMode
) -> None:
    (operation,) = [op for op in operations(api_schema) if op.label == label]
    statuses: list[int] = []

    @given(case=operation.as_strategy(generation_mode=mode, media_type=media_type))
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: schemathesis.Case) -> None:
        response = case.call_and_validate()
        statuses.append(response.status_code)
        assert response.status_code < 500

    run()
    assert statuses
