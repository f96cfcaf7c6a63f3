"""CrossGuard policies every convclass stack must satisfy (whole-stack rules over resource properties).

Run them against a real preview with ``pulumi preview --policy-pack infra/policypack``; the tests call each
policy's ``validate(args, report)`` directly on the resources the program declares under mocks. Properties use
Pulumi's wire names (camelCase), as CrossGuard sees them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

REQUIRED_TAGS = ("project", "stack")

# Actions AWS authorises only on Resource "*" (no resource-level permissions), each with its reason.
STAR_RESOURCE_ALLOWED: dict[str, str] = {
    "xray:PutTraceSegments": "X-Ray tracing of functions and workflows; no resource-level permissions",
    "xray:PutTelemetryRecords": "X-Ray tracing; no resource-level permissions",
    "xray:GetSamplingRules": "X-Ray sampling; no resource-level permissions",
    "xray:GetSamplingTargets": "X-Ray sampling; no resource-level permissions",
    "ecr:GetAuthorizationToken": "registry login before SageMaker pulls images; the token is account-wide",
    "cloudwatch:PutMetricData": "SageMaker metrics; no resource-level permissions (namespace condition)",
    "logs:CreateLogDelivery": "Step Functions log delivery (vended logs) requires Resource *",
    "logs:GetLogDelivery": "Step Functions log delivery (vended logs) requires Resource *",
    "logs:UpdateLogDelivery": "Step Functions log delivery (vended logs) requires Resource *",
    "logs:DeleteLogDelivery": "Step Functions log delivery (vended logs) requires Resource *",
    "logs:ListLogDeliveries": "Step Functions log delivery (vended logs) requires Resource *",
    "logs:PutResourcePolicy": "Step Functions log delivery (vended logs) requires Resource *",
    "logs:DescribeResourcePolicies": "Step Functions log delivery (vended logs) requires Resource *",
    "logs:DescribeLogGroups": "Step Functions log delivery (vended logs) requires Resource *",
}

# Properties holding IAM policy documents, per resource type. A key policy's Resource "*" means "this key"
# (the only form KMS accepts), so key policies are exempt from the Resource rule but not from the Action rule.
POLICY_DOCUMENTS: dict[str, tuple[str, ...]] = {
    "aws:iam/rolePolicy:RolePolicy": ("policy",),
    "aws:iam/policy:Policy": ("policy",),
    "aws:iam/role:Role": ("assumeRolePolicy",),
    "aws:s3/bucketPolicy:BucketPolicy": ("policy",),
    "aws:sqs/queuePolicy:QueuePolicy": ("policy",),
    "aws:sns/topicPolicy:TopicPolicy": ("policy",),
    "aws:ecr/repositoryPolicy:RepositoryPolicy": ("policy",),
    "aws:kms/key:Key": ("policy",),
}
IDENTITY_POLICY_TYPES = {"aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy"}

# Types whose AWS resource cannot carry tags (the tests check each lacks a `tags` input in pulumi_aws).
UNTAGGABLE_TYPES = frozenset(
    {
        "aws:kms/alias:Alias",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketVersioning:BucketVersioning",
        "aws:s3/bucketPolicy:BucketPolicy",
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        "aws:ecr/lifecyclePolicy:LifecyclePolicy",
        "aws:ecr/repositoryPolicy:RepositoryPolicy",
        "aws:sqs/queuePolicy:QueuePolicy",
        "aws:sqs/redriveAllowPolicy:RedriveAllowPolicy",
        "aws:sns/topicPolicy:TopicPolicy",
        "aws:sns/topicSubscription:TopicSubscription",
        "aws:cloudwatch/eventTarget:EventTarget",
        "aws:cloudwatch/eventArchive:EventArchive",
        "aws:cloudwatch/dashboard:Dashboard",
        "aws:scheduler/schedule:Schedule",
        "aws:appautoscaling/policy:Policy",
        "aws:apigatewayv2/route:Route",
        "aws:apigatewayv2/integration:Integration",
        "aws:apigatewayv2/authorizer:Authorizer",
        "aws:lambda/permission:Permission",
    }
)

# Where each encrypted resource type names its KMS key.
KEY_PROPERTIES: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "aws:sqs/queue:Queue": lambda p: p.get("kmsMasterKeyId"),
    "aws:sns/topic:Topic": lambda p: p.get("kmsMasterKeyId"),
    "aws:cloudwatch/logGroup:LogGroup": lambda p: p.get("kmsKeyId"),
    "aws:ecr/repository:Repository": lambda p: next(
        (
            c.get("kmsKey")
            for c in p.get("encryptionConfigurations") or []
            if c.get("encryptionType") == "KMS"
        ),
        None,
    ),
    "aws:cloudwatch/eventBus:EventBus": lambda p: p.get("kmsKeyIdentifier"),
    "aws:sfn/stateMachine:StateMachine": lambda p: (
        (p.get("encryptionConfiguration") or {}).get("kmsKeyId")
        if (p.get("encryptionConfiguration") or {}).get("type") == "CUSTOMER_MANAGED_KMS_KEY"
        else None
    ),
    "aws:scheduler/schedule:Schedule": lambda p: p.get("kmsKeyArn"),
    "aws:pipes/pipe:Pipe": lambda p: p.get("kmsKeyIdentifier"),
    "aws:lambda/function:Function": lambda p: p.get("kmsKeyArn"),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": lambda p: p.get("kmsKeyArn"),
}


def _of_type(resources: Sequence[PolicyResource], type_token: str) -> list[PolicyResource]:
    return [r for r in resources if r.resource_type == type_token]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    # CrossGuard hands lists over as read-only Sequence proxies, not lists.
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]


def _documents(resource: PolicyResource) -> Iterator[dict[str, Any]]:
    for prop in POLICY_DOCUMENTS.get(resource.resource_type, ()):
        raw = resource.props.get(prop)
        if raw:
            yield json.loads(raw) if isinstance(raw, str) else dict(raw)


def _statements(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [dict(s) for s in _as_list(document.get("Statement"))]


def _stack_keys(resources: Sequence[PolicyResource]) -> set[str]:
    """ARNs and ids of the stack's KMS keys: what an encrypted resource may reference."""
    refs: set[str] = set()
    for key in _of_type(resources, "aws:kms/key:Key"):
        refs.update(str(v) for v in (key.props.get("arn"), key.props.get("keyId"), key.props.get("id")) if v)
    return refs


# --- the rules ---------------------------------------------------------------------------------------


def validate_kms_encryption(args: StackValidationArgs, report: ReportViolation) -> None:
    resources = args.resources
    keys = _stack_keys(resources)
    if not keys:
        report("the stack has no KMS key", None)
    for key in _of_type(resources, "aws:kms/key:Key"):
        if key.props.get("enableKeyRotation") is not True:
            report(f"KMS key {key.name} must rotate (enableKeyRotation)", key.urn)
    for resource in resources:
        read = KEY_PROPERTIES.get(resource.resource_type)
        if read is not None and read(resource.props) not in keys:
            report(
                f"{resource.resource_type} {resource.name} is not encrypted with the stack's KMS key",
                resource.urn,
            )
    encrypted_buckets = set()
    for config in _of_type(
        resources, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ):
        for rule in _as_list(config.props.get("rules")):
            default = rule.get("applyServerSideEncryptionByDefault") or {}
            if default.get("sseAlgorithm") == "aws:kms" and default.get("kmsMasterKeyId") in keys:
                encrypted_buckets.add(config.props.get("bucket"))
    for bucket in _of_type(resources, "aws:s3/bucket:Bucket"):
        if not {bucket.props.get("id"), bucket.props.get("bucket")} & encrypted_buckets:
            report(f"bucket {bucket.name} has no SSE-KMS default encryption with the stack's key", bucket.urn)


def validate_iam_least_privilege(args: StackValidationArgs, report: ReportViolation) -> None:
    for resource in args.resources:
        for document in _documents(resource):
            for stmt in _statements(document):
                if stmt.get("Effect") != "Allow":
                    continue  # Denies may be broad: they only ever take permissions away.
                sid = stmt.get("Sid", "(no Sid)")
                if "NotAction" in stmt or "NotResource" in stmt:
                    report(f"{resource.name} {sid}: Allow with NotAction/NotResource", resource.urn)
                actions = [str(a) for a in _as_list(stmt.get("Action"))]
                wild = [a for a in actions if "*" in a]
                if wild:
                    report(f"{resource.name} {sid}: wildcard action(s) {wild}", resource.urn)
                if resource.resource_type not in IDENTITY_POLICY_TYPES:
                    continue
                if "*" in _as_list(stmt.get("Resource")):
                    unlisted = [a for a in actions if a not in STAR_RESOURCE_ALLOWED]
                    if unlisted:
                        report(
                            f'{resource.name} {sid}: Resource "*" for {unlisted}, which are not in the '
                            "allow-list of actions without resource-level permissions",
                            resource.urn,
                        )


def _trusted_services(role: PolicyResource) -> set[str]:
    services: set[str] = set()
    for document in _documents(role):
        for stmt in _statements(document):
            principal = stmt.get("Principal") or {}
            if isinstance(principal, Mapping):
                services.update(str(s) for s in _as_list(principal.get("Service")))
    return services


def validate_pass_role(args: StackValidationArgs, report: ReportViolation) -> None:
    sagemaker_roles = {
        str(r.props.get("arn"))
        for r in _of_type(args.resources, "aws:iam/role:Role")
        if "sagemaker.amazonaws.com" in _trusted_services(r)
    }
    for resource in args.resources:
        if resource.resource_type not in IDENTITY_POLICY_TYPES:
            continue
        for document in _documents(resource):
            for stmt in _statements(document):
                if stmt.get("Effect") != "Allow" or "iam:PassRole" not in _as_list(stmt.get("Action")):
                    continue
                targets = [str(r) for r in _as_list(stmt.get("Resource"))]
                if not targets or any(t not in sagemaker_roles for t in targets):
                    report(
                        f"{resource.name}: iam:PassRole may only name the SageMaker execution role, "
                        f"got {targets}",
                        resource.urn,
                    )
                passed = (stmt.get("Condition") or {}).get("StringEquals", {}).get("iam:PassedToService")
                if passed != "sagemaker.amazonaws.com":
                    report(
                        f"{resource.name}: iam:PassRole needs Condition StringEquals "
                        "iam:PassedToService = sagemaker.amazonaws.com",
                        resource.urn,
                    )


def validate_queues_have_dlq(args: StackValidationArgs, report: ReportViolation) -> None:
    queues = _of_type(args.resources, "aws:sqs/queue:Queue")
    arns = {str(q.props.get("arn")) for q in queues}
    dead_letter_targets: set[str] = set()
    for queue in queues:
        redrive = queue.props.get("redrivePolicy")
        if redrive:
            target = json.loads(redrive) if isinstance(redrive, str) else dict(redrive)
            dead_letter_targets.add(str(target.get("deadLetterTargetArn")))
    for resource in args.resources:  # rule targets and schedules park undeliverable events in a DLQ too
        holders = [resource.props, resource.props.get("target") or {}]
        for holder in holders:
            config = holder.get("deadLetterConfig") if isinstance(holder, Mapping) else None
            if isinstance(config, Mapping) and config.get("arn"):
                dead_letter_targets.add(str(config["arn"]))
    for queue in queues:
        arn = str(queue.props.get("arn"))
        if arn in dead_letter_targets:
            continue
        redrive = queue.props.get("redrivePolicy")
        target = (json.loads(redrive) if isinstance(redrive, str) else dict(redrive or {})).get(
            "deadLetterTargetArn"
        )
        if target not in arns:
            report(
                f"queue {queue.name} has no dead-letter queue in this stack (and is no DLQ itself)", queue.urn
            )


def validate_log_retention(args: StackValidationArgs, report: ReportViolation) -> None:
    for group in _of_type(args.resources, "aws:cloudwatch/logGroup:LogGroup"):
        retention = group.props.get("retentionInDays")
        # Numbers cross the engine as floats.
        if isinstance(retention, bool) or not isinstance(retention, int | float) or retention <= 0:
            report(f"log group {group.name} keeps logs forever: set retentionInDays", group.urn)


def validate_tags(args: StackValidationArgs, report: ReportViolation) -> None:
    stacks = set()
    for resource in args.resources:
        if not resource.resource_type.startswith("aws:") or resource.resource_type in UNTAGGABLE_TYPES:
            continue
        if resource.resource_type == "aws:index/provider:Provider" or resource.resource_type.startswith(
            "pulumi:"
        ):
            continue
        tags = resource.props.get("tags") or {}
        missing = [t for t in REQUIRED_TAGS if not tags.get(t)]
        if missing:
            report(f"{resource.resource_type} {resource.name} lacks tag(s) {missing}", resource.urn)
        else:
            stacks.add((tags["project"], tags["stack"]))
    if len(stacks) > 1:
        report(f"resources are tagged with more than one project/stack: {sorted(stacks)}", None)


# Properties that are an AWS resource's physical name, per type (where the program sets one).
_PHYSICAL_NAME_PROPS = ("name", "bucket", "dashboardName")


def validate_unique_names(args: StackValidationArgs, report: ReportViolation) -> None:
    logical = Counter((r.resource_type, r.name) for r in args.resources)
    for (type_token, name), count in logical.items():
        if count > 1:
            report(f"{count} resources of type {type_token} share the logical name {name}", None)
    physical: Counter[tuple[str, str, str]] = Counter()
    for resource in args.resources:
        if not resource.resource_type.startswith("aws:"):
            continue
        for prop in _PHYSICAL_NAME_PROPS:
            value = resource.props.get(prop)
            if isinstance(value, str):
                group = str(resource.props.get("groupName") or resource.props.get("eventBusName") or "")
                physical[(resource.resource_type, group, value)] += 1
                break
    for (type_token, _, name), count in physical.items():
        if count > 1:
            report(f"{count} resources of type {type_token} share the physical name {name}", None)


def validate_no_customer_data_in_logs(args: StackValidationArgs, report: ReportViolation) -> None:
    """Execution data holds email text and task tokens: state machines and pipes must never log it."""
    for machine in _of_type(args.resources, "aws:sfn/stateMachine:StateMachine"):
        logging = machine.props.get("loggingConfiguration") or {}
        if not logging.get("logDestination") or logging.get("includeExecutionData") is not False:
            report(
                f"state machine {machine.name} must log to a log group without execution data", machine.urn
            )
        if (machine.props.get("tracingConfiguration") or {}).get("enabled") is not True:
            report(f"state machine {machine.name} must have X-Ray tracing on", machine.urn)
    for pipe in _of_type(args.resources, "aws:pipes/pipe:Pipe"):
        if (pipe.props.get("logConfiguration") or {}).get("includeExecutionDatas"):
            report(f"pipe {pipe.name} must not log execution data", pipe.urn)
    for function in _of_type(args.resources, "aws:lambda/function:Function"):
        if (function.props.get("tracingConfig") or {}).get("mode") != "Active":
            report(f"function {function.name} must have X-Ray tracing on", function.urn)


def validate_bucket_hardening(args: StackValidationArgs, report: ReportViolation) -> None:
    blocks = {
        b.props.get("bucket")
        for b in _of_type(args.resources, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
        if all(
            b.props.get(k) is True
            for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        )
    }
    tls_only = set()
    for policy in _of_type(args.resources, "aws:s3/bucketPolicy:BucketPolicy"):
        for document in _documents(policy):
            for stmt in _statements(document):
                condition = (stmt.get("Condition") or {}).get("Bool", {})
                if stmt.get("Effect") == "Deny" and condition.get("aws:SecureTransport") in ("false", False):
                    tls_only.add(policy.props.get("bucket"))
    versioned = {
        v.props.get("bucket")
        for v in _of_type(args.resources, "aws:s3/bucketVersioning:BucketVersioning")
        if (v.props.get("versioningConfiguration") or {}).get("status") == "Enabled"
    }
    for bucket in _of_type(args.resources, "aws:s3/bucket:Bucket"):
        ids = {bucket.props.get("id"), bucket.props.get("bucket")}
        for what, group in (
            ("a full public access block", blocks),
            ("a TLS-only bucket policy", tls_only),
            ("versioning", versioned),
        ):
            if not ids & group:
                report(f"bucket {bucket.name} lacks {what}", bucket.urn)


POLICIES: list[StackValidationPolicy] = [
    StackValidationPolicy(
        name="kms-encryption",
        description="Buckets, queues, topics, log groups, repositories, "
        "buses, state machines, schedules, pipes and functions use the stack's rotating KMS key.",
        validate=validate_kms_encryption,
    ),
    StackValidationPolicy(
        name="iam-least-privilege",
        description='No wildcard actions; Resource "*" only for '
        "actions without resource-level permissions (written allow-list).",
        validate=validate_iam_least_privilege,
    ),
    StackValidationPolicy(
        name="pass-role-scoped",
        description="iam:PassRole only for the SageMaker execution role, only to sagemaker.amazonaws.com.",
        validate=validate_pass_role,
    ),
    StackValidationPolicy(
        name="queues-have-dlq",
        description="Every queue has a dead-letter queue (or is one).",
        validate=validate_queues_have_dlq,
    ),
    StackValidationPolicy(
        name="log-retention",
        description="Every log group has a retention period.",
        validate=validate_log_retention,
    ),
    StackValidationPolicy(
        name="tagged",
        description="Every taggable resource carries project and stack tags.",
        validate=validate_tags,
    ),
    StackValidationPolicy(
        name="unique-names",
        description="No two resources share a logical or physical name.",
        validate=validate_unique_names,
    ),
    StackValidationPolicy(
        name="no-customer-data-in-logs",
        description="Workflows and pipes never log execution data; functions and workflows are traced.",
        validate=validate_no_customer_data_in_logs,
    ),
    StackValidationPolicy(
        name="bucket-hardening",
        description="Buckets block public access, require TLS and keep versions.",
        validate=validate_bucket_hardening,
    ),
]

ENFORCEMENT = EnforcementLevel.MANDATORY


def violations(resources: Sequence[PolicyResource]) -> dict[str, list[str]]:
    """Run every policy over ``resources``: {policy name: [messages]} for each policy that found any."""
    found: dict[str, list[str]] = {}
    for policy in POLICIES:
        messages: list[str] = []

        def report(message: str, urn: str | None = None, _messages: list[str] = messages) -> None:
            _messages.append(message)

        policy.validate(StackValidationArgs(resources=list(resources)), report)
        if messages:
            found[policy.name] = messages
    return found


def policy_resource(
    resource_type: str, name: str, props: Mapping[str, Any], *, project: str = "convclass", stack: str = "dev"
) -> PolicyResource:
    """A resource as CrossGuard hands it to a stack policy (used to check resources recorded offline)."""
    urn = f"urn:pulumi:{stack}::{project}::{resource_type}::{name}"
    options = PolicyResourceOptions(
        protect=False,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
    )
    return PolicyResource(resource_type, dict(props), urn, name, options, None, None, [], {})
