"""Names, tags and IAM document helpers every component shares."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from convclass.deployment import SHARED_ENDPOINT
from convclass.layout import stack_resource_name

Statement = dict[str, Any]


@dataclass(frozen=True)
class Naming:
    """Physical names and tags of one stack: ``convclass-<stack>-<what>`` everywhere, so an operator finds a
    stack's resources by prefix and two stacks in one account never collide."""

    project: str
    stack: str

    @property
    def prefix(self) -> str:
        return f"{self.project}-{self.stack}"

    def name(self, *parts: str) -> str:
        return stack_resource_name(self.stack, *parts, project=self.project)

    def tags(self, component: str) -> dict[str, str]:
        """The tags every taggable resource carries (checked by the policy pack)."""
        return {"project": self.project, "stack": self.stack, "component": component}


@dataclass(frozen=True)
class AwsEnv:
    """Account facts that ARNs need; resolved once from the provider and passed around as plain values."""

    account_id: str
    region: str
    partition: str = "aws"

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:"
            f"{self.account_id if account else ''}:{resource}"
        )

    def service_principal(self, service: str) -> str:
        return f"{service}.amazonaws.com"


def statement(
    sid: str,
    actions: Sequence[str],
    resources: Sequence[str],
    *,
    conditions: Mapping[str, Mapping[str, Any]] | None = None,
) -> Statement:
    """One Allow statement; actions and resources are sorted and de-duplicated so documents diff cleanly."""
    result: Statement = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": sorted(set(actions)),
        "Resource": sorted(set(resources)),
    }
    if conditions:
        result["Condition"] = {k: dict(v) for k, v in conditions.items()}
    return result


def policy_document(statements: Sequence[Statement]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, sort_keys=True)


def assume_role_policy(service: str, *, source_account: str | None = None) -> str:
    """Trust policy for one AWS service; ``source_account`` guards against the confused-deputy problem."""
    trust: Statement = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if source_account is not None:
        trust["Condition"] = {"StringEquals": {"aws:SourceAccount": source_account}}
    return json.dumps({"Version": "2012-10-17", "Statement": [trust]}, sort_keys=True)


def log_group_arns(env: AwsEnv, name: str) -> list[str]:
    """The log group ARN and the form its streams need (``...:log-group:NAME:*``)."""
    base = env.arn("logs", f"log-group:{name}")
    return [base, f"{base}:*"]


# X-Ray's write and sampling APIs have no resource-level permissions (allow-listed in infra/policies.py).
XRAY_ACTIONS = (
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
)


def xray_statement() -> Statement:
    return statement("XRayTracing", XRAY_ACTIONS, ["*"])


def kms_use_statement(key_arn: str, *, sid: str = "UseDataKey") -> Statement:
    return statement(sid, ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"], [key_arn])


def child_opts(parent: pulumi.Resource, **kwargs: Any) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(parent=parent, **kwargs)


def shared_endpoint_name(naming: Naming) -> str:
    """The shared multi-model endpoint's name (known before it exists, so roles can be scoped to it)."""
    return naming.name(SHARED_ENDPOINT)
