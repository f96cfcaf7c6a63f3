"""The deployed state machines: rendered from the stack's real ARNs, statically valid, and wired to exactly
the deployed functions, role, images, bus and bucket; their roles derived from the definitions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from convclass.hosting.keys import SHARED_MODELS_PREFIX
from infra.common import AwsEnv
from infra.mocks import REPO_ROOT, Recording
from infra.permissions import (
    SAGEMAKER_SYNC_RULE,
    IntegrationContext,
    UnsupportedIntegration,
    state_machine_statements,
    task_uses,
)
from tests.infra.conftest import only

ASL_VALIDATOR = REPO_ROOT / "node_modules" / ".bin" / "asl-validator"


def _definition(recording: Recording, workflow: str) -> dict[str, Any]:
    machine = only(recording, "aws:sfn/stateMachine:StateMachine", f"orchestration-{workflow}")
    return json.loads(machine.inputs["definition"])  # type: ignore[no-any-return]


def _strings(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(_strings(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_strings(v) for v in value)) if value else set()
    return {value} if isinstance(value, str) else set()


@pytest.fixture(scope="module")
def definition_files(recording: Recording, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("asl")
    files = []
    for workflow in ("training", "inference"):
        path = folder / f"{workflow}.json"
        path.write_text(json.dumps(_definition(recording, workflow)), encoding="utf-8")
        files.append(path)
    return files


def test_definitions_pass_asl_validator(definition_files: list[Path]) -> None:
    if not ASL_VALIDATOR.exists():
        pytest.fail("asl-validator is missing: run `npm install` (make install does)")
    args = [str(ASL_VALIDATOR)]
    for path in definition_files:
        args += ["--json-path", str(path)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_definitions_pass_statelint(definition_files: list[Path]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "statelint", *map(str, definition_files)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_training_definition_references_exactly_the_deployed_resources(recording: Recording) -> None:
    strings = _strings(_definition(recording, "training"))
    outputs = recording.stack_outputs
    functions = {
        f.name.removeprefix("functions-").removesuffix("-function"): f.outputs["arn"]
        for f in recording.of_type("aws:lambda/function:Function")
        if f.name.startswith("functions-")
    }
    referenced = {s for s in strings if s.startswith("arn:aws:lambda:")}
    assert len(functions) == 4
    assert referenced == set(functions.values())
    assert {s for s in strings if s.startswith("arn:aws:iam::")} == {outputs["sagemaker_role_arn"]}
    images = {s for s in strings if ".dkr.ecr." in s}
    assert images == {outputs["image_uris"]["training"], outputs["image_uris"]["serving"]}
    assert all("@sha256:" in image for image in images)
    assert outputs["event_bus_name"] in strings
    assert outputs["data_bucket"] in strings
    assert outputs["kms_key_arn"] in strings


def test_inference_definition_publishes_to_the_stack_bus(recording: Recording) -> None:
    definition = _definition(recording, "inference")
    assert recording.stack_outputs["event_bus_name"] in _strings(definition)
    assert {(u.service, u.action) for u in task_uses(definition)} == {
        ("aws-sdk:s3", "getObject"),
        ("aws-sdk:sagemakerruntime", "invokeEndpoint"),
        ("events", "putEvents"),
    }


def test_training_role_allows_exactly_what_the_definition_calls(recording: Recording) -> None:
    policy = json.loads(
        only(recording, "aws:iam/rolePolicy:RolePolicy", "orchestration-training-policy").inputs["policy"]
    )
    statements = {s["Sid"]: s for s in policy["Statement"]}
    invoked = {r for r in statements["InvokeFunctions"]["Resource"] if not r.endswith(":*")}
    assert invoked == {
        s for s in _strings(_definition(recording, "training")) if s.startswith("arn:aws:lambda:")
    }
    # .sync training needs the managed EventBridge rule Step Functions creates.
    rule = statements["TrainingJobCompletionRule"]
    assert rule["Resource"] == [f"arn:aws:events:eu-west-1:123456789012:rule/{SAGEMAKER_SYNC_RULE}"]
    assert set(rule["Action"]) == {"events:PutTargets", "events:PutRule", "events:DescribeRule"}
    pass_role = statements["PassSageMakerRole"]
    assert pass_role["Resource"] == [recording.stack_outputs["sagemaker_role_arn"]]
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    # The pipeline calls one endpoint: the shared one, to warm a model it published there.
    invoke = statements["InvokeEndpoints"]
    assert invoke["Action"] == ["sagemaker:InvokeEndpoint"]
    assert invoke["Resource"] == [
        f"arn:aws:sagemaker:eu-west-1:123456789012:endpoint/{recording.stack_outputs['shared_endpoint_name']}"
    ]
    # Publishing writes under the shared model prefix only.
    assert statements["WriteSharedModels"]["Resource"] == [
        f"arn:aws:s3:::{recording.stack_outputs['data_bucket']}/{SHARED_MODELS_PREFIX}*"
    ]
    # A Failed endpoint is deleted to be recreated: deletion reaches endpoints only, nothing else.
    delete = statements["DeleteFailedEndpoints"]
    assert delete["Action"] == ["sagemaker:DeleteEndpoint"]
    assert delete["Resource"] == ["arn:aws:sagemaker:eu-west-1:123456789012:endpoint/cc-*"]
    assert [s["Sid"] for s in policy["Statement"] if "sagemaker:DeleteEndpoint" in s["Action"]] == [
        "DeleteFailedEndpoints"
    ]


def test_inference_role_cannot_train_or_deploy(recording: Recording) -> None:
    policy = json.loads(
        only(recording, "aws:iam/rolePolicy:RolePolicy", "orchestration-inference-policy").inputs["policy"]
    )
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert {a for a in actions if a.startswith("sagemaker:")} == {"sagemaker:InvokeEndpoint"}
    assert "iam:PassRole" not in actions
    assert "lambda:InvokeFunction" not in actions
    # Routes only: the inference workflow reads champion records and no other tenant object.
    reads = [s for s in policy["Statement"] if "s3:GetObject" in s["Action"]]
    assert [s["Resource"] for s in reads] == [
        [f"arn:aws:s3:::{recording.stack_outputs['data_bucket']}/tenants/*/classifiers/*/champion.json"]
    ]
    assert "s3:PutObject" not in actions
    # The tenants' own endpoints, and the shared one (literal in ClassifyShared).
    invoke = {s["Sid"]: s for s in policy["Statement"]}["InvokeEndpoints"]
    shared = recording.stack_outputs["shared_endpoint_name"]
    assert invoke["Resource"] == [
        "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/cc-*",
        f"arn:aws:sagemaker:eu-west-1:123456789012:endpoint/{shared}",
    ]


CONTEXT = IntegrationContext(
    env=AwsEnv("123456789012", "eu-west-1"),
    state_machine_name="convclass-dev-x",
    event_bus_name="convclass-dev",
    data_bucket="data",
    key_arn="arn:aws:kms:k",
    sagemaker_role_arn="arn:aws:iam::123456789012:role/sm",
)


def _machine(*states: dict[str, Any]) -> dict[str, Any]:
    named = {f"S{i}": {**state, "End": True} for i, state in enumerate(states)}
    return {"StartAt": "S0", "States": named}


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (
            {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem", "Parameters": {}},
            "no permission mapping",
        ),
        (
            {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName.$": "$.fn"},
            },
            "literal function ARN",
        ),
        (
            {
                "Type": "Task",
                "Resource": "arn:aws:states:::events:putEvents",
                "Parameters": {"Entries": [{"EventBusName": "someone-elses-bus"}]},
            },
            "stack's bus",
        ),
        (
            {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:s3:putObject",
                "Parameters": {"Bucket": "other", "Key": "k"},
            },
            "data bucket",
        ),
    ],
)
def test_integrations_that_cannot_be_scoped_fail_the_build(state: dict[str, Any], reason: str) -> None:
    with pytest.raises(UnsupportedIntegration, match=reason):
        state_machine_statements(_machine(state), CONTEXT)


def test_nested_and_distributed_maps_are_covered() -> None:
    inner = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "arn:aws:lambda:eu-west-1:123456789012:function:f"},
    }
    distributed = {
        "Type": "Map",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED"},
            "StartAt": "I",
            "States": {"I": {**inner, "End": True}},
        },
    }
    statements = {s["Sid"]: s for s in state_machine_statements(_machine(distributed), CONTEXT)}
    assert statements["InvokeFunctions"]["Resource"] == [
        "arn:aws:lambda:eu-west-1:123456789012:function:f",
        "arn:aws:lambda:eu-west-1:123456789012:function:f:*",
    ]
    assert statements["StartChildExecutions"]["Resource"] == [CONTEXT.state_machine_arn]
