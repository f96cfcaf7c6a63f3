"""Whole-stack policy checks: the declared stack passes every rule, and every rule catches what it forbids."""

from __future__ import annotations

import copy
import inspect
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pulumi_aws
import pytest

from infra.mocks import REPO_ROOT, RecordedResource, Recording
from infra.policies import POLICIES, STAR_RESOURCE_ALLOWED, UNTAGGABLE_TYPES, violations
from tests.infra.conftest import as_policy_resources


def test_the_example_stack_passes_every_policy(recording: Recording) -> None:
    assert violations(as_policy_resources(recording.resources)) == {}


def test_policies_read_props_as_crossguard_hands_them_over(recording: Recording) -> None:
    assert violations(as_policy_resources(recording.resources, proxied=True)) == {}
    resources = copy.deepcopy(recording.resources)
    _public_bucket(resources)
    _log_group_forever(resources)
    found = violations(as_policy_resources(resources, proxied=True))
    assert set(found) == {"bucket-hardening", "log-retention"}


def test_every_policy_is_exercised_below() -> None:
    assert {p.name for p in POLICIES} == set(MUTATIONS)


def _first(resources: list[RecordedResource], type_token: str, name: str | None = None) -> RecordedResource:
    return next(r for r in resources if r.type == type_token and (name is None or r.name == name))


def _edit_policy(resource: RecordedResource, change: Callable[[list[dict[str, Any]]], None]) -> None:
    document = json.loads(resource.outputs["policy"])
    change(document["Statement"])
    resource.outputs["policy"] = json.dumps(document)


def _unencrypted_queue(resources: list[RecordedResource]) -> None:
    _first(resources, "aws:sqs/queue:Queue").outputs["kmsMasterKeyId"] = "alias/aws/sqs"


def _wildcard_action(resources: list[RecordedResource]) -> None:
    role_policy = _first(resources, "aws:iam/rolePolicy:RolePolicy", "functions-export-policy")
    _edit_policy(
        role_policy, lambda s: s.append({"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::x"})
    )


def _star_resource(resources: list[RecordedResource]) -> None:
    role_policy = _first(resources, "aws:iam/rolePolicy:RolePolicy", "functions-export-policy")
    _edit_policy(
        role_policy, lambda s: s.append({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"})
    )


def _unconditional_pass_role(resources: list[RecordedResource]) -> None:
    role_policy = _first(resources, "aws:iam/rolePolicy:RolePolicy", "orchestration-training-policy")

    def change(statements: list[dict[str, Any]]) -> None:
        for statement in statements:
            if "iam:PassRole" in statement["Action"]:
                statement.pop("Condition")

    _edit_policy(role_policy, change)


def _queue_without_dlq(resources: list[RecordedResource]) -> None:
    queue = _first(resources, "aws:sqs/queue:Queue", "triggers-training-queue")
    queue.outputs.pop("redrivePolicy")


def _log_group_forever(resources: list[RecordedResource]) -> None:
    _first(resources, "aws:cloudwatch/logGroup:LogGroup").outputs.pop("retentionInDays")


def _untagged(resources: list[RecordedResource]) -> None:
    _first(resources, "aws:sns/topic:Topic").outputs["tags"] = {"project": "convclass"}


def _duplicate_name(resources: list[RecordedResource]) -> None:
    queue = _first(resources, "aws:sqs/queue:Queue", "triggers-inbound-queue")
    resources.append(copy.deepcopy(queue))


def _logs_execution_data(resources: list[RecordedResource]) -> None:
    machine = _first(resources, "aws:sfn/stateMachine:StateMachine")
    machine.outputs["loggingConfiguration"]["includeExecutionData"] = True


def _public_bucket(resources: list[RecordedResource]) -> None:
    block = _first(resources, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    block.outputs["restrictPublicBuckets"] = False


MUTATIONS: dict[str, Callable[[list[RecordedResource]], None]] = {
    "kms-encryption": _unencrypted_queue,
    "iam-least-privilege": _wildcard_action,
    "pass-role-scoped": _unconditional_pass_role,
    "queues-have-dlq": _queue_without_dlq,
    "log-retention": _log_group_forever,
    "tagged": _untagged,
    "unique-names": _duplicate_name,
    "no-customer-data-in-logs": _logs_execution_data,
    "bucket-hardening": _public_bucket,
}


@pytest.mark.parametrize("policy", sorted(MUTATIONS))
def test_each_policy_catches_its_violation(recording: Recording, policy: str) -> None:
    resources = copy.deepcopy(recording.resources)
    MUTATIONS[policy](resources)
    found = violations(as_policy_resources(resources))
    assert set(found) == {policy}, found


def test_star_resource_is_refused_for_actions_outside_the_allow_list(recording: Recording) -> None:
    resources = copy.deepcopy(recording.resources)
    _star_resource(resources)
    (message,) = violations(as_policy_resources(resources))["iam-least-privilege"]
    assert "s3:GetObject" in message


def test_pass_role_to_another_role_is_refused(recording: Recording) -> None:
    resources = copy.deepcopy(recording.resources)
    role_policy = _first(resources, "aws:iam/rolePolicy:RolePolicy", "orchestration-training-policy")

    def change(statements: list[dict[str, Any]]) -> None:
        for statement in statements:
            if "iam:PassRole" in statement["Action"]:
                statement["Resource"] = ["arn:aws:iam::123456789012:role/convclass-dev-export-fn"]

    _edit_policy(role_policy, change)
    assert set(violations(as_policy_resources(resources))) == {"pass-role-scoped"}


def test_every_star_resource_in_the_stack_is_allow_listed_with_a_reason(recording: Recording) -> None:
    starred = set()
    for policy in recording.of_type("aws:iam/rolePolicy:RolePolicy"):
        for statement in json.loads(policy.inputs["policy"])["Statement"]:
            if statement["Resource"] == ["*"]:
                starred.update(statement["Action"])
    assert starred, "the stack traces and logs, so some actions need Resource *"
    assert starred <= set(STAR_RESOURCE_ALLOWED)
    assert all(len(reason) > 20 for reason in STAR_RESOURCE_ALLOWED.values())


def _args_class(type_token: str) -> type:
    """pulumi_aws's Args class for a type token like aws:s3/bucketPolicy:BucketPolicy."""
    module, name = type_token.split(":")[1].split("/")[0], type_token.split(":")[2]
    package = getattr(pulumi_aws, module if module != "lambda" else "lambda_")
    return getattr(package, f"{name}Args")  # type: ignore[no-any-return]


def test_untaggable_list_matches_pulumi_aws(recording: Recording) -> None:
    """Exempt types really take no tags, and every other AWS type the stack declares does."""
    for type_token in UNTAGGABLE_TYPES:
        assert "tags" not in inspect.signature(_args_class(type_token).__init__).parameters, type_token
    declared = {r.type for r in recording.resources if r.type.startswith("aws:")}
    for type_token in declared - UNTAGGABLE_TYPES:
        assert "tags" in inspect.signature(_args_class(type_token).__init__).parameters, type_token


def test_policy_pack_starts_for_the_pulumi_cli() -> None:
    """`pulumi preview --policy-pack infra/policypack` runs this entry point: it must load and serve."""
    entry = REPO_ROOT / "infra" / "policypack" / "__main__.py"
    process = subprocess.Popen(
        [sys.executable, str(entry)],
        cwd=entry.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = process.stdout.readline().strip() if process.stdout else ""
        assert port.isdigit(), process.stderr.read() if process.stderr else port
    finally:
        process.kill()
        process.wait(timeout=10)
