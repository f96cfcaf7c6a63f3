"""The two state machines, rendered by ``statemachine`` from the deployed resources' real ARNs.

Each role is derived from its rendered definition (``infra.permissions``), so it allows exactly the
integrations the definition calls, plus what every state machine needs: its KMS key, log delivery and X-Ray.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from convclass.deployment import WORKFLOW_TYPES, state_machine_role
from convclass.layout import INFERENCE_WORKFLOW, TRAINING_WORKFLOW
from infra.common import (
    AwsEnv,
    Naming,
    Statement,
    assume_role_policy,
    child_opts,
    policy_document,
    statement,
    xray_statement,
)
from infra.permissions import IntegrationContext, state_machine_statements
from statemachine import (
    InferenceResources,
    PipelineSettings,
    TrainingPipelineResources,
    render_inference_workflow,
    render_training_pipeline,
)

# Vended log delivery (Step Functions → CloudWatch Logs) is configured through these account-level APIs, which
# have no resource-level permissions (allow-listed in infra/policies.py).
LOG_DELIVERY_ACTIONS = (
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
)


def state_machine_name(naming: Naming, workflow: str) -> str:
    return naming.name(workflow)


def role_statements(definition: dict[str, Any], ctx: IntegrationContext) -> list[Statement]:
    """The definition's integrations, plus the state machine's own encryption, logging and tracing."""
    return [
        *state_machine_statements(definition, ctx),
        statement("StateMachineEncryption", ["kms:Decrypt", "kms:GenerateDataKey"], [ctx.key_arn]),
        statement("LogDelivery", LOG_DELIVERY_ACTIONS, ["*"]),
        xray_statement(),
    ]


@dataclass(frozen=True)
class OrchestrationArgs:
    naming: Naming
    env: pulumi.Output[AwsEnv]
    key_arn: pulumi.Output[str]
    bucket: pulumi.Output[str]
    bus_name: pulumi.Output[str]
    sagemaker_role_arn: pulumi.Output[str]
    function_arns: dict[str, pulumi.Output[str]]
    training_image_uri: pulumi.Output[str]
    serving_image_uri: pulumi.Output[str]
    pipeline: PipelineSettings
    log_retention_days: int
    #: The shared multi-model endpoint (None: the stack has none and the pipeline has no ``shared`` branch).
    shared_endpoint_name: pulumi.Output[str] | None = None


@dataclass(frozen=True)
class Rendered:
    """A definition and the role statements derived from it (resolved together, from the same ARNs)."""

    definition: dict[str, Any]
    statements: list[Statement]


class Orchestration(pulumi.ComponentResource):
    """Training pipeline (Standard) and inference workflow (Express): encrypted, logged, traced."""

    training_arn: pulumi.Output[str]
    inference_arn: pulumi.Output[str]
    training_definition: pulumi.Output[dict[str, Any]]
    inference_definition: pulumi.Output[dict[str, Any]]

    def __init__(
        self, name: str, args: OrchestrationArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("convclass:infra:Orchestration", name, None, opts)
        naming = args.naming
        fn = args.function_arns

        def context(workflow: str, values: list[Any]) -> IntegrationContext:
            env, bus, bucket, key, role = values[:5]
            return IntegrationContext(
                env=env,
                state_machine_name=state_machine_name(naming, workflow),
                event_bus_name=bus,
                data_bucket=bucket,
                key_arn=key,
                sagemaker_role_arn=role,
            )

        shared = [args.env, args.bus_name, args.bucket, args.key_arn, args.sagemaker_role_arn]

        def training(values: list[Any]) -> Rendered:
            ctx = context(TRAINING_WORKFLOW, values)
            plan, export, preprocess, evaluate, training_image, serving_image, shared_endpoint = values[5:]
            definition = render_training_pipeline(
                TrainingPipelineResources(
                    plan_function_arn=plan,
                    export_function_arn=export,
                    preprocess_function_arn=preprocess,
                    evaluate_function_arn=evaluate,
                    data_bucket=ctx.data_bucket,
                    kms_key_arn=ctx.key_arn,
                    sagemaker_role_arn=ctx.sagemaker_role_arn,
                    training_image_uri=training_image,
                    serving_image_uri=serving_image,
                    event_bus_name=ctx.event_bus_name,
                    shared_endpoint_name=shared_endpoint,
                ),
                args.pipeline,
            )
            return Rendered(definition, role_statements(definition, ctx))

        def inference(values: list[Any]) -> Rendered:
            ctx = context(INFERENCE_WORKFLOW, values)
            definition = render_inference_workflow(
                InferenceResources(
                    event_bus_name=ctx.event_bus_name,
                    data_bucket=ctx.data_bucket,
                    shared_endpoint_name=values[5],
                )
            )
            return Rendered(definition, role_statements(definition, ctx))

        rendered_training = pulumi.Output.all(
            *shared,
            fn["plan"],
            fn["export"],
            fn["preprocess"],
            fn["evaluate"],
            args.training_image_uri,
            args.serving_image_uri,
            args.shared_endpoint_name,
        ).apply(training)
        rendered_inference = pulumi.Output.all(*shared, args.shared_endpoint_name).apply(inference)

        self.training = self._state_machine(name, TRAINING_WORKFLOW, "ALL", rendered_training, args)
        self.inference = self._state_machine(name, INFERENCE_WORKFLOW, "ERROR", rendered_inference, args)
        self.training_arn = self.training.arn
        self.inference_arn = self.inference.arn
        self.training_definition = rendered_training.apply(lambda r: r.definition)
        self.inference_definition = rendered_inference.apply(lambda r: r.definition)
        self.register_outputs({"training_arn": self.training_arn, "inference_arn": self.inference_arn})

    def _state_machine(
        self,
        name: str,
        workflow: str,
        log_level: str,
        rendered: pulumi.Output[Rendered],
        args: OrchestrationArgs,
    ) -> aws.sfn.StateMachine:
        naming = args.naming
        tags = naming.tags("orchestration")
        physical = state_machine_name(naming, workflow)
        logs = aws.cloudwatch.LogGroup(
            f"{name}-{workflow}-logs",
            name=f"/aws/vendedlogs/states/{physical}",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.key_arn,
            tags=tags,
            opts=child_opts(self),
        )
        role = aws.iam.Role(
            f"{name}-{workflow}-role",
            name=naming.name(*state_machine_role(workflow)),
            assume_role_policy=args.env.apply(
                lambda e: assume_role_policy("states.amazonaws.com", source_account=e.account_id)
            ),
            tags=tags,
            opts=child_opts(self),
        )
        policy = aws.iam.RolePolicy(
            f"{name}-{workflow}-policy",
            role=role.id,
            policy=rendered.apply(lambda r: policy_document(r.statements)),
            opts=child_opts(self),
        )
        return aws.sfn.StateMachine(
            f"{name}-{workflow}",
            name=physical,
            type=WORKFLOW_TYPES[workflow],
            role_arn=role.arn,
            definition=rendered.apply(lambda r: json.dumps(r.definition, sort_keys=True)),
            # Execution data stays out of the logs: it holds task tokens and, for inference, customer emails.
            logging_configuration=aws.sfn.StateMachineLoggingConfigurationArgs(
                log_destination=logs.arn.apply(lambda arn: f"{arn}:*"),
                include_execution_data=False,
                level=log_level,
            ),
            tracing_configuration=aws.sfn.StateMachineTracingConfigurationArgs(enabled=True),
            encryption_configuration=aws.sfn.StateMachineEncryptionConfigurationArgs(
                type="CUSTOMER_MANAGED_KMS_KEY",
                kms_key_id=args.key_arn,
                kms_data_key_reuse_period_seconds=300,
            ),
            tags=tags,
            opts=child_opts(self, depends_on=[policy]),
        )
