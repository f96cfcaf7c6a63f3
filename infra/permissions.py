"""Derive a state machine role's IAM statements from its rendered definition.

The role then allows exactly the service integrations the definition uses: adding a state that calls something
new without teaching this module about it fails the build (``UnsupportedIntegration``) instead of failing in
production with AccessDenied, and removing a state removes its permission.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from convclass.hosting.keys import SHARED_MODELS_PREFIX
from convclass.layout import CHAMPION_KEY_FORMAT, PROJECT_PREFIX, TENANTS_ROOT
from infra.common import AwsEnv, Statement, statement

_INTEGRATION_RE = re.compile(
    r"^arn:(?P<partition>[a-z-]+):states:::(?P<service>aws-sdk:[a-z0-9]+|[a-z0-9]+)"
    r":(?P<action>[A-Za-z0-9]+)(?P<pattern>\.sync(?::2)?|\.waitForTaskToken)?$"
)
_LAMBDA_ARN_RE = re.compile(
    r"^arn:[a-z-]+:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]+(:[A-Za-z0-9_$-]+)?$"
)
# Step Functions creates/reads this managed rule to learn when a .sync training job ends.
SAGEMAKER_SYNC_RULE = "StepFunctionsGetEventsForSageMakerTrainingJobsRule"
SFN_SYNC_RULE = "StepFunctionsGetEventsForStepFunctionsExecutionRule"


class UnsupportedIntegration(ValueError):
    """The definition calls a service integration this module cannot scope: extend ``_grants``
    deliberately."""


@dataclass(frozen=True)
class IntegrationContext:
    """What the stack knows about the resources a definition may call."""

    env: AwsEnv
    state_machine_name: str
    event_bus_name: str
    data_bucket: str
    key_arn: str
    sagemaker_role_arn: str

    def sagemaker(self, kind: str, name: str = f"{PROJECT_PREFIX}-*") -> str:
        return self.env.arn("sagemaker", f"{kind}/{name}")

    @property
    def state_machine_arn(self) -> str:
        return self.env.arn("states", f"stateMachine:{self.state_machine_name}")

    @property
    def event_bus_arn(self) -> str:
        return self.env.arn("events", f"event-bus/{self.event_bus_name}")

    def object_arn(self, pattern: str = f"{TENANTS_ROOT}*") -> str:
        return f"arn:{self.env.partition}:s3:::{self.data_bucket}/{pattern}"


@dataclass(frozen=True)
class TaskUse:
    """One Task state's integration: ``service`` is e.g. ``lambda``, ``sagemaker`` or ``aws-sdk:s3``."""

    state: str
    service: str
    action: str
    pattern: str
    arguments: Mapping[str, Any]


def _arguments(state: Mapping[str, Any]) -> Mapping[str, Any]:
    args = state.get("Arguments", state.get("Parameters", {}))
    return args if isinstance(args, Mapping) else {}


def _walk_states(states: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for name, state in states.items():
        yield name, state
        if state.get("Type") == "Parallel":
            for branch in state.get("Branches", []):
                yield from _walk_states(branch.get("States", {}))
        if state.get("Type") == "Map":
            processor = state.get("ItemProcessor") or state.get("Iterator") or {}
            yield from _walk_states(processor.get("States", {}))


def task_uses(definition: Mapping[str, Any]) -> list[TaskUse]:
    """Every service integration a definition calls, nested Map/Parallel states included."""
    uses = []
    for name, state in _walk_states(definition.get("States", {})):
        if state.get("Type") == "Map":
            processor = state.get("ItemProcessor") or {}
            if processor.get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED":
                uses.append(TaskUse(name, "states", "distributedMap", "", {}))
            for part in ("ItemReader", "ResultWriter"):
                if part in state:
                    uses.append(_parse(name, state[part]))
        if state.get("Type") == "Task":
            uses.append(_parse(name, state))
    return uses


def _parse(name: str, state: Mapping[str, Any]) -> TaskUse:
    resource = state.get("Resource", "")
    if not isinstance(resource, str):
        raise UnsupportedIntegration(f"state {name!r}: Resource must be a literal ARN")
    if _LAMBDA_ARN_RE.fullmatch(resource):
        return TaskUse(name, "lambda", "invoke", "", {"FunctionName": resource})
    match = _INTEGRATION_RE.fullmatch(resource)
    if not match:
        raise UnsupportedIntegration(f"state {name!r}: unrecognised Resource {resource!r}")
    return TaskUse(name, match["service"], match["action"], match["pattern"] or "", _arguments(state))


def _literal_strings(value: Any, key: str) -> Iterator[Any]:
    """Values of ``key`` anywhere inside ``value`` (e.g. every EventBusName of a PutEvents batch)."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            if k == key:
                yield v
            yield from _literal_strings(v, key)
    elif isinstance(value, list):
        for item in value:
            yield from _literal_strings(item, key)


def _is_expression(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("{%")


def _pass_role(ctx: IntegrationContext) -> Statement:
    return statement(
        "PassSageMakerRole",
        ["iam:PassRole"],
        [ctx.sagemaker_role_arn],
        conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
    )


def _tags(use: TaskUse) -> list[str]:
    return ["sagemaker:AddTags"] if any(k in use.arguments for k in ("Tags", "Tags.$")) else []


# aws-sdk SageMaker reads the definitions may make, and the resource kind each one addresses.
_SAGEMAKER_SDK_READS = {
    "describeEndpoint": "endpoint",
    "describeEndpointConfig": "endpoint-config",
    "describeModel": "model",
    "describeTrainingJob": "training-job",
}


def _grants(use: TaskUse, ctx: IntegrationContext) -> list[Statement]:
    """Statements for one integration; Sids name the grant (not the state) so equal grants merge."""
    key = (use.service, use.action)
    if key == ("lambda", "invoke"):
        function = use.arguments.get("FunctionName")
        if not isinstance(function, str) or not _LAMBDA_ARN_RE.fullmatch(function):
            raise UnsupportedIntegration(f"state {use.state!r}: FunctionName must be a literal function ARN")
        prefix, rest = function.split(":function:")
        base = f"{prefix}:function:{rest.split(':')[0]}"
        return [statement("InvokeFunctions", ["lambda:InvokeFunction"], [base, f"{base}:*"])]
    if key == ("sagemaker", "createTrainingJob"):
        actions = ["sagemaker:CreateTrainingJob", *_tags(use)]
        grants = [_pass_role(ctx)]
        if use.pattern.startswith(".sync"):
            actions += ["sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob"]
            grants.append(
                statement(
                    "TrainingJobCompletionRule",
                    ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                    [ctx.env.arn("events", f"rule/{SAGEMAKER_SYNC_RULE}")],
                )
            )
        return [statement("TrainingJobs", actions, [ctx.sagemaker("training-job")]), *grants]
    if key == ("sagemaker", "createModel"):
        return [
            statement("CreateModels", ["sagemaker:CreateModel", *_tags(use)], [ctx.sagemaker("model")]),
            _pass_role(ctx),
        ]
    if key == ("sagemaker", "createEndpointConfig"):
        grants = [
            statement(
                "CreateEndpointConfigs",
                ["sagemaker:CreateEndpointConfig", *_tags(use)],
                [ctx.sagemaker("endpoint-config")],
            )
        ]
        if "KmsKeyId" in use.arguments or "KmsKeyId.$" in use.arguments:
            # Endpoints encrypt their volumes with the key: the caller must be able to grant it to SageMaker.
            grants.append(
                statement(
                    "GrantKeyToEndpoints",
                    ["kms:CreateGrant", "kms:DescribeKey"],
                    [ctx.key_arn],
                    conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
                )
            )
        return grants
    if key == ("sagemaker", "createEndpoint"):
        return [
            statement(
                "CreateEndpoints",
                ["sagemaker:CreateEndpoint", *_tags(use)],
                [ctx.sagemaker("endpoint"), ctx.sagemaker("endpoint-config")],
            )
        ]
    if key == ("sagemaker", "updateEndpoint"):
        return [
            statement(
                "UpdateEndpoints",
                ["sagemaker:UpdateEndpoint"],
                [ctx.sagemaker("endpoint"), ctx.sagemaker("endpoint-config")],
            )
        ]
    if use.service == "aws-sdk:sagemaker" and use.action in _SAGEMAKER_SDK_READS:
        kind = _SAGEMAKER_SDK_READS[use.action]
        action = f"sagemaker:{use.action[0].upper()}{use.action[1:]}"
        return [statement("DescribeSageMakerResources", [action], [ctx.sagemaker(kind)])]
    if key == ("aws-sdk:sagemaker", "deleteEndpoint"):
        # Only a Failed endpoint is deleted (it accepts nothing else), to be recreated at once.
        return [statement("DeleteFailedEndpoints", ["sagemaker:DeleteEndpoint"], [ctx.sagemaker("endpoint")])]
    if key == ("aws-sdk:sagemakerruntime", "invokeEndpoint"):
        # A literal endpoint (the shared one the pipeline warms) is all the state may call; a name built per
        # message (the inference workflow) reaches the stack's endpoints.
        name = use.arguments.get("EndpointName")
        endpoint = ctx.sagemaker("endpoint", name) if isinstance(name, str) else ctx.sagemaker("endpoint")
        return [statement("InvokeEndpoints", ["sagemaker:InvokeEndpoint"], [endpoint])]
    if key == ("events", "putEvents"):
        buses = set(_literal_strings(use.arguments, "EventBusName"))
        if any(not isinstance(b, str) or _is_expression(b) for b in buses):
            raise UnsupportedIntegration(f"state {use.state!r}: EventBusName must be literal")
        if not buses or buses - {ctx.event_bus_name, ctx.event_bus_arn}:
            raise UnsupportedIntegration(f"state {use.state!r}: may only publish to the stack's bus")
        return [statement("PublishEvents", ["events:PutEvents"], [ctx.event_bus_arn])]
    if use.service == "aws-sdk:s3" and use.action in {"getObject", "putObject", "headObject"}:
        bucket = use.arguments.get("Bucket")
        if bucket != ctx.data_bucket:
            raise UnsupportedIntegration(f"state {use.state!r}: may only use the data bucket, got {bucket!r}")
        key = use.arguments.get("Key.$")
        if use.action == "putObject":
            grant = statement("WriteObjects", ["s3:PutObject"], [ctx.object_arn()])
        elif use.action == "getObject" and isinstance(key, str) and f"'{CHAMPION_KEY_FORMAT}'" in key:
            # The inference workflow reads routes: champion records only, never a tenant's data.
            champions = ctx.object_arn(CHAMPION_KEY_FORMAT.format("*", "*"))
            grant = statement("ReadChampionRecords", ["s3:GetObject"], [champions])
        else:
            grant = statement("ReadObjects", ["s3:GetObject"], [ctx.object_arn()])
        return [grant, statement("ObjectEncryption", ["kms:Decrypt", "kms:GenerateDataKey"], [ctx.key_arn])]
    if key == ("aws-sdk:s3", "copyObject"):
        # Publishing to the shared endpoint: read a tenant's model archive, write it under the shared prefix.
        if use.arguments.get("Bucket") != ctx.data_bucket:
            raise UnsupportedIntegration(f"state {use.state!r}: may only use the data bucket")
        return [
            statement("ReadObjects", ["s3:GetObject"], [ctx.object_arn()]),
            statement("WriteSharedModels", ["s3:PutObject"], [ctx.object_arn(f"{SHARED_MODELS_PREFIX}*")]),
            statement("ObjectEncryption", ["kms:Decrypt", "kms:GenerateDataKey"], [ctx.key_arn]),
        ]
    if key == ("states", "distributedMap"):
        # A Distributed Map starts child executions of its own state machine.
        execution = ctx.env.arn("states", f"execution:{ctx.state_machine_name}:*")
        return [
            statement("StartChildExecutions", ["states:StartExecution"], [ctx.state_machine_arn]),
            statement(
                "ManageChildExecutions", ["states:DescribeExecution", "states:StopExecution"], [execution]
            ),
        ]
    raise UnsupportedIntegration(
        f"state {use.state!r}: no permission mapping for {use.service}:{use.action}{use.pattern}"
    )


def state_machine_statements(definition: Mapping[str, Any], ctx: IntegrationContext) -> list[Statement]:
    """The statements a state machine's role needs for ``definition``; merged per Sid, deterministic order."""
    merged: dict[str, Statement] = {}
    for use in task_uses(definition):
        for grant in _grants(use, ctx):
            sid = grant["Sid"]
            existing = merged.get(sid)
            if existing is not None and existing.get("Condition") == grant.get("Condition"):
                merged[sid] = statement(
                    sid,
                    [*existing["Action"], *grant["Action"]],
                    [*existing["Resource"], *grant["Resource"]],
                    conditions=grant.get("Condition"),
                )
            elif existing is not None:
                raise UnsupportedIntegration(f"conflicting conditions for statement {sid}")
            else:
                merged[sid] = grant
    return [merged[sid] for sid in sorted(merged)]
