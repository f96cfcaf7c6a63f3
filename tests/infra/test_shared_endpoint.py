"""The shared multi-model endpoint as the example stack declares it (Pulumi mocks), and its settings."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from convclass.hosting.keys import SHARED_MODELS_PREFIX, shared_model_key
from infra.config import SharedEndpointConfig
from infra.mocks import Recording
from tests.infra.conftest import only


def _statements(recording: Recording) -> dict[str, dict[str, Any]]:
    policy = only(recording, "aws:iam/rolePolicy:RolePolicy", "shared-endpoint-policy")
    return {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}


def test_model_is_multi_model_over_the_shared_prefix_with_its_own_role(recording: Recording) -> None:
    model = only(recording, "aws:sagemaker/model:Model", "shared-endpoint-model")
    container = model.inputs["primaryContainer"]
    bucket = recording.stack_outputs["data_bucket"]
    assert container["mode"] == "MultiModel"
    assert container["modelDataUrl"] == f"s3://{bucket}/{SHARED_MODELS_PREFIX}"
    assert container["image"] == recording.stack_outputs["image_uris"]["serving"]
    role = only(recording, "aws:iam/role:Role", "shared-endpoint-role")
    assert model.inputs["executionRoleArn"] == role.outputs["arn"]
    assert recording.stack_outputs["shared_models_url"] == container["modelDataUrl"]
    # A TargetModel is a key relative to that prefix.
    assert shared_model_key("acme", "intent", "r1").startswith(SHARED_MODELS_PREFIX)


def test_endpoint_config_is_encrypted_and_sized_from_settings(
    recording: Recording, settings: dict[str, Any]
) -> None:
    config = only(
        recording, "aws:sagemaker/endpointConfiguration:EndpointConfiguration", "shared-endpoint-config"
    )
    assert config.inputs["kmsKeyArn"] == recording.stack_outputs["kms_key_arn"]
    (variant,) = config.inputs["productionVariants"]
    assert variant["instanceType"] == settings["sharedEndpoint"]["instanceType"]
    assert variant["initialInstanceCount"] == settings["sharedEndpoint"]["minInstances"]
    endpoint = only(recording, "aws:sagemaker/endpoint:Endpoint", "shared-endpoint-endpoint")
    assert endpoint.inputs["endpointConfigName"] == config.outputs["name"]
    assert (
        recording.stack_outputs["shared_endpoint_name"] == endpoint.inputs["name"] == "convclass-dev-shared"
    )


def test_fleet_scales_on_invocations_per_instance(recording: Recording, settings: dict[str, Any]) -> None:
    target = only(recording, "aws:appautoscaling/target:Target", "shared-endpoint-scaling-target")
    assert target.inputs["serviceNamespace"] == "sagemaker"
    assert target.inputs["resourceId"] == "endpoint/convclass-dev-shared/variant/shared"
    assert target.inputs["scalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert target.inputs["minCapacity"] == settings["sharedEndpoint"]["minInstances"]
    assert target.inputs["maxCapacity"] == settings["sharedEndpoint"]["maxInstances"]
    policy = only(recording, "aws:appautoscaling/policy:Policy", "shared-endpoint-scaling-policy")
    tracking = policy.inputs["targetTrackingScalingPolicyConfiguration"]
    assert tracking["predefinedMetricSpecification"]["predefinedMetricType"] == (
        "SageMakerVariantInvocationsPerInstance"
    )
    assert tracking["targetValue"] == settings["sharedEndpoint"]["invocationsPerInstanceTarget"]
    assert policy.inputs["resourceId"] == target.inputs["resourceId"]


def test_alarms_watch_model_loading_waits_and_server_errors(
    recording: Recording, settings: dict[str, Any]
) -> None:
    alarms = {a.inputs["name"]: a.inputs for a in recording.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    wait = alarms["convclass-dev-shared-model-loading-wait"]
    errors = alarms["convclass-dev-shared-5xx"]
    assert wait["metricName"] == "ModelLoadingWaitTime"
    assert wait["threshold"] == settings["sharedEndpoint"]["modelLoadingWaitAlarmMs"] * 1000
    assert errors["metricName"] == "Invocation5XXErrors"
    for alarm in (wait, errors):
        assert alarm["namespace"] == "AWS/SageMaker"
        assert alarm["dimensions"] == {"EndpointName": "convclass-dev-shared", "VariantName": "shared"}
        assert alarm["alarmActions"] == [recording.stack_outputs["notifications_topic_arn"]]


def test_role_reads_only_the_shared_prefix_and_writes_nothing_there(recording: Recording) -> None:
    statements = _statements(recording)
    bucket = recording.stack_outputs["data_bucket"]
    assert statements["SharedModelsRead"]["Action"] == ["s3:GetObject"]
    assert statements["SharedModelsRead"]["Resource"] == [f"arn:aws:s3:::{bucket}/{SHARED_MODELS_PREFIX}*"]
    assert statements["SharedModelsList"]["Condition"] == {
        "StringLike": {"s3:prefix": [f"{SHARED_MODELS_PREFIX}*"]}
    }
    actions = {a for s in statements.values() for a in s["Action"]}
    assert not {a for a in actions if a.startswith("s3:") and a not in ("s3:GetObject", "s3:ListBucket")}
    assert "iam:PassRole" not in actions
    resources = json.dumps([s["Resource"] for s in statements.values()])
    assert "tenants/" not in resources  # no training data, exports or per-tenant model areas
    serving_repository = recording.stack_outputs["repository_urls"]["serving"].split("/", 1)[1]
    assert statements["PullServingImage"]["Resource"][0].endswith(f":repository/{serving_repository}")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"minInstances": 3, "maxInstances": 2}, "maxInstances"),
        ({"instanceType": "c5.large"}, "instance"),
        ({"minInstances": 0}, "greater than or equal"),
    ],
)
def test_shared_endpoint_settings_are_checked(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SharedEndpointConfig.model_validate(overrides)
