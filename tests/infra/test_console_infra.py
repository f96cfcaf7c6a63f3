"""The console component under Pulumi's mocks: the example stack with the console enabled."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from convclass.events import EMAIL_CLASSIFICATION_FAILED, EMAIL_CLASSIFIED
from convclass.layout import ClassifierLayout
from infra.console import ARCHIVE_PREFIX
from infra.mocks import Recording, run_program
from infra.policies import violations
from tests.infra.conftest import as_policy_resources, only

CONSOLE = {
    "enabled": True,
    "jwksUrl": "https://idp.example.com/.well-known/jwks.json",
    "issuer": "https://idp.example.com/",
    "audience": "convclass-console",
    "tenantClaim": "custom:tenant",
}


@pytest.fixture(scope="module")
def with_console(dev_config: dict[str, str]) -> Recording:
    return run_program({**dev_config, "convclass:console": json.dumps(CONSOLE)})


def _statements(recording: Recording, role_policy: str) -> dict[str, dict[str, Any]]:
    document = json.loads(only(recording, "aws:iam/rolePolicy:RolePolicy", role_policy).inputs["policy"])
    return {s["Sid"]: s for s in document["Statement"]}


def test_the_console_is_off_unless_enabled(recording: Recording) -> None:
    assert not recording.of_type("aws:apigatewayv2/api:Api")
    assert "console_url" not in recording.stack_outputs


def test_console_and_authorizer_run_the_lambda_image(with_console: Recording) -> None:
    functions = {r.inputs["name"]: r for r in with_console.of_type("aws:lambda/function:Function")}
    app, gate = functions["convclass-dev-console"], functions["convclass-dev-authorizer"]
    assert app.inputs["imageConfig"]["commands"] == ["functions.console.handler.handler"]
    assert gate.inputs["imageConfig"]["commands"] == ["functions.authorizer.handler.handler"]
    assert app.inputs["imageUri"] == functions["convclass-dev-plan"].inputs["imageUri"]
    variables = app.inputs["environment"]["variables"]
    assert variables["CONVCLASS_CONSOLE_TENANT_CLAIM"] == "custom:tenant"
    assert variables["CONVCLASS_TRAINING_STATE_MACHINE_ARN"].endswith(":stateMachine:convclass-dev-training")
    assert with_console.stack_outputs["console_url"].startswith("https://")


def test_every_page_route_goes_through_the_authorizer(with_console: Recording) -> None:
    (authorizer,) = with_console.of_type("aws:apigatewayv2/authorizer:Authorizer")
    assert authorizer.inputs["authorizerType"] == "REQUEST"
    assert authorizer.inputs["enableSimpleResponses"] is True
    assert authorizer.inputs["authorizerResultTtlInSeconds"] == 0
    routes = {r.inputs["routeKey"]: r.inputs for r in with_console.of_type("aws:apigatewayv2/route:Route")}
    assert set(routes) == {"$default", "GET /healthz", "GET /login"}
    assert routes["$default"]["authorizationType"] == "CUSTOM"
    assert {routes[k]["authorizationType"] for k in ("GET /healthz", "GET /login")} == {"NONE"}
    (stage,) = with_console.of_type("aws:apigatewayv2/stage:Stage")
    assert "$context.path" not in stage.inputs["accessLogSettings"]["format"]  # the sign-in link's token


def test_the_console_role_reads_pages_and_writes_only_decisions(with_console: Recording) -> None:
    statements = _statements(with_console, "console-app-policy")
    writes = statements["ConsoleWrite"]
    assert writes["Action"] == ["s3:PutObject"]
    assert all(resource.endswith("/consent.json") for resource in writes["Resource"])
    runs = statements["TrainingRuns"]
    assert runs["Resource"] == [with_console.stack_outputs["training_state_machine_arn"]]
    assert "states:StartExecution" in runs["Action"]  # roll back starts a run of the same pipeline
    assert not any(
        "sagemaker:Create" in a or "sagemaker:Update" in a for s in statements.values() for a in s["Action"]
    )
    assert _statements(with_console, "console-authorizer-policy").keys() == {
        "OwnLogs",
        "XRayTracing",
        "DecryptEnvironment",
    }


def test_the_stack_with_the_console_passes_every_policy(with_console: Recording) -> None:
    assert violations(as_policy_resources(with_console.resources)) == {}


def test_inference_events_are_archived_where_the_console_reads_them(with_console: Recording) -> None:
    (stream,) = with_console.of_type("aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream")
    s3 = stream.inputs["extendedS3Configuration"]
    assert s3["prefix"] == ARCHIVE_PREFIX
    where = ClassifierLayout("acme", "intent")
    resolved = s3["prefix"].replace("!{partitionKeyFromQuery:tenant}", "acme")
    resolved = resolved.replace("!{partitionKeyFromQuery:classifier}", "intent")
    assert resolved.replace("!{timestamp:yyyy-MM-dd}", "2026-01-02") == where.inference_events_prefix(
        date(2026, 1, 2)
    )
    assert s3["dynamicPartitioningConfiguration"]["enabled"] is True
    assert stream.inputs["serverSideEncryption"]["keyType"] == "CUSTOMER_MANAGED_CMK"
    rule = only(with_console, "aws:cloudwatch/eventRule:EventRule", "console-archive-rule")
    pattern = json.loads(rule.inputs["eventPattern"])
    assert pattern["detail-type"] == [EMAIL_CLASSIFIED, EMAIL_CLASSIFICATION_FAILED]
    writes = _statements(with_console, "console-archive-firehose-policy")["WriteArchive"]["Resource"]
    assert all("/inference-events/" in r or "inference-archive-errors" in r for r in writes)
