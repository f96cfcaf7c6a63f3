"""Stack settings are validated before any resource is declared; mistakes get a message naming the key."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from infra.config import StackArgs

DIGESTS = {
    "lambdaDigest": "sha256:" + "a" * 64,
    "trainingDigest": "sha256:" + "b" * 64,
    "servingDigest": "sha256:" + "c" * 64,
}


def _args(**overrides: Any) -> dict[str, Any]:
    return {"project": "convclass", "stack": "t", "region": "eu-west-1", "images": dict(DIGESTS), **overrides}


def test_minimal_settings_take_documented_defaults() -> None:
    args = StackArgs.model_validate(_args())
    assert args.log_retention_days == 30
    assert args.functions.preprocess.ephemeral_storage_mb == 4096
    assert args.pipeline_settings().endpoint_max_polls > 0
    assert args.classifiers() == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"images": {"build": False}}, "digests are required"),
        ({"images": {"build": True}}, "buildTag"),
        ({"images": {**DIGESTS, "lambdaDigest": "latest"}}, "sha256"),
        ({"logRetentionDays": 31}, "logRetentionDays must be one of"),
        ({"training": {"maxRuntimeSeconds": 7200, "maxWaitSeconds": 3600}}, "maxWaitSeconds"),
        ({"pipeline": {"endpointPollEvery": 5}}, "unknown pipeline setting"),
        (
            {
                "tenants": [
                    {
                        "id": "Acme!",
                        "classifiers": [{"id": "c", "labelField": "l", "dataSource": {"kind": "mongodb"}}],
                    }
                ]
            },
            "tenant id",
        ),
        (
            {
                "tenants": [
                    {
                        "id": "acme",
                        "classifiers": [
                            {
                                "id": "c",
                                "labelField": "l",
                                "dataSource": {"kind": "mongodb"},
                                "schedule": "every monday",
                            }
                        ],
                    }
                ]
            },
            "schedule must be",
        ),
        (
            {
                "tenants": [
                    {
                        "id": "acme",
                        "classifiers": [{"id": "c", "labelField": "l", "dataSource": {"kind": "files"}}],
                    }
                ]
            },
            "uri is required",
        ),
        ({"notificationEmails": ["not-an-address"]}, "e-mail"),
        ({"unknownKey": 1}, "Extra inputs"),
        ({"stack": "Prod_EU"}, "stack names must be lowercase"),
    ],
)
def test_mistakes_are_refused_with_a_clear_message(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        StackArgs.model_validate(_args(**overrides))


def test_a_classifier_listed_twice_is_refused() -> None:
    classifier = {"id": "c", "labelField": "l", "dataSource": {"kind": "mongodb"}}
    with pytest.raises(ValidationError, match="classifier twice"):
        StackArgs.model_validate(_args(tenants=[{"id": "acme", "classifiers": [classifier, classifier]}]))


@pytest.mark.parametrize(
    ("configured", "expected"), [({}, "shared"), ({"hosting": "dedicated"}, "dedicated")]
)
def test_a_classifiers_hosting_reaches_its_scheduled_runs(configured: dict[str, str], expected: str) -> None:
    from infra.config import ClassifierConfig, ServingConfig, TrainingConfig
    from infra.triggers import scheduled_request

    classifier = ClassifierConfig.model_validate(
        {"id": "intent", "labelField": "intent", "dataSource": {"kind": "mongodb"}, **configured}
    )
    request = scheduled_request("acme", classifier, TrainingConfig(), ServingConfig())
    assert request.options.hosting == expected


def test_an_unknown_hosting_mode_is_refused() -> None:
    from infra.config import ClassifierConfig

    with pytest.raises(ValidationError):
        ClassifierConfig.model_validate(
            {
                "id": "intent",
                "labelField": "intent",
                "dataSource": {"kind": "mongodb"},
                "hosting": "serverless",
            }
        )


def test_a_stack_without_a_shared_endpoint_must_host_its_classifiers_dedicated() -> None:
    defaulted = {"id": "intent", "labelField": "intent", "dataSource": {"kind": "mongodb"}}
    disabled = {"sharedEndpoint": {"enabled": False}}
    with pytest.raises(ValidationError, match=r"acme/intent use hosting shared \(the default\)"):
        StackArgs.model_validate(_args(**disabled, tenants=[{"id": "acme", "classifiers": [defaulted]}]))
    dedicated = {**defaulted, "hosting": "dedicated"}
    args = StackArgs.model_validate(_args(**disabled, tenants=[{"id": "acme", "classifiers": [dedicated]}]))
    assert [c.hosting for _, c in args.classifiers()] == ["dedicated"]
