"""The shared multi-model endpoint: one fleet that hosts every ``shared`` classifier's model.

A SageMaker model in ``MultiModel`` mode points at the shared-model prefix of the data bucket
(``convclass.hosting.keys``); callers choose a tenant's model with ``TargetModel``, and SageMaker downloads,
loads and evicts models on the fleet's instances as traffic asks for them. The fleet scales on invocations per
instance; alarms watch model-loading waits (cold loads and evictions) and server errors. Its execution role
may read the shared-model prefix, decrypt with the stack's key, pull the serving image and write its logs and
metrics: nothing else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from convclass.deployment import SHARED_ENDPOINT_VARIANT, SHARED_MODEL_CACHE_SETTING
from convclass.hosting.keys import SHARED_MODELS_PREFIX
from infra.common import (
    AwsEnv,
    Naming,
    Statement,
    assume_role_policy,
    child_opts,
    kms_use_statement,
    policy_document,
    shared_endpoint_name,
    statement,
)
from infra.config import SharedEndpointConfig
from infra.functions import s3_statements
from infra.sagemaker import METRICS_NAMESPACE

SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
ALARM_PERIOD_SECONDS = 300


def shared_endpoint_statements(
    env: AwsEnv, bucket: str, key_arn: str, repository_arn: str
) -> list[Statement]:
    """Read the shared models (never write them), decrypt them, pull the image, write logs and metrics."""
    return [
        *s3_statements(env, bucket, read=[f"{SHARED_MODELS_PREFIX}*"], sid="SharedModels"),
        kms_use_statement(key_arn),
        statement(
            "GrantKeyToSageMakerVolumes",
            ["kms:CreateGrant"],
            [key_arn],
            conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
        ),
        statement(
            "PullServingImage",
            ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            [repository_arn],
        ),
        statement("RegistryLogin", ["ecr:GetAuthorizationToken"], ["*"]),
        statement(
            "WriteLogs",
            ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            [
                env.arn("logs", "log-group:/aws/sagemaker/Endpoints/*"),
                env.arn("logs", "log-group:/aws/sagemaker/Endpoints/*:log-stream:*"),
            ],
        ),
        statement(
            "PublishMetrics",
            ["cloudwatch:PutMetricData"],
            ["*"],
            conditions={"StringLike": {"cloudwatch:namespace": f"{METRICS_NAMESPACE}*"}},
        ),
    ]


@dataclass(frozen=True)
class SharedEndpointArgs:
    naming: Naming
    env: pulumi.Output[AwsEnv]
    config: SharedEndpointConfig
    bucket: pulumi.Output[str]
    key_arn: pulumi.Output[str]
    serving_image_uri: pulumi.Output[str]
    serving_repository_arn: pulumi.Output[str]
    topic_arn: pulumi.Output[str]
    log_retention_days: int
    create_log_group: bool


class SharedEndpoint(pulumi.ComponentResource):
    """Model (MultiModel mode), endpoint config (KMS), endpoint, autoscaling, alarms and its own role."""

    endpoint_name: pulumi.Output[str]
    model_data_url: pulumi.Output[str]

    def __init__(
        self, name: str, args: SharedEndpointArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("convclass:infra:SharedEndpoint", name, None, opts)
        naming, config = args.naming, args.config
        tags = naming.tags("shared-endpoint")
        physical = shared_endpoint_name(naming)
        role = aws.iam.Role(
            f"{name}-role",
            name=naming.name("shared-endpoint"),
            assume_role_policy=args.env.apply(
                lambda e: assume_role_policy("sagemaker.amazonaws.com", source_account=e.account_id)
            ),
            tags=tags,
            opts=child_opts(self),
        )
        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=pulumi.Output.all(args.env, args.bucket, args.key_arn, args.serving_repository_arn).apply(
                lambda v: policy_document(shared_endpoint_statements(v[0], v[1], v[2], v[3]))
            ),
            opts=child_opts(self),
        )
        self.model_data_url = args.bucket.apply(lambda b: f"s3://{b}/{SHARED_MODELS_PREFIX}")
        model = aws.sagemaker.Model(
            f"{name}-model",
            name=physical,
            execution_role_arn=role.arn,
            primary_container={
                "image": args.serving_image_uri,
                "mode": "MultiModel",
                "model_data_url": self.model_data_url,
                "multi_model_config": {"model_cache_setting": SHARED_MODEL_CACHE_SETTING},
            },
            tags=tags,
            # SageMaker checks the role when the model is created: the policy must be attached first.
            opts=child_opts(self, depends_on=[policy]),
        )
        # Endpoint configs are immutable: changed settings make a new one (new name) and the endpoint moves.
        settings = f"{config.instance_type}/{config.min_instances}"
        endpoint_config = aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            name=f"{physical}-{hashlib.sha256(settings.encode()).hexdigest()[:8]}",
            kms_key_arn=args.key_arn,
            production_variants=[
                {
                    "variant_name": SHARED_ENDPOINT_VARIANT,
                    "model_name": model.name,
                    "instance_type": config.instance_type,
                    "initial_instance_count": config.min_instances,
                }
            ],
            tags=tags,
            opts=child_opts(self),
        )
        if args.create_log_group:
            aws.cloudwatch.LogGroup(
                f"{name}-logs",
                name=f"/aws/sagemaker/Endpoints/{physical}",
                retention_in_days=args.log_retention_days,
                kms_key_id=args.key_arn,
                tags=tags,
                opts=child_opts(self),
            )
        endpoint = aws.sagemaker.Endpoint(
            f"{name}-endpoint",
            name=physical,
            endpoint_config_name=endpoint_config.name,
            tags=tags,
            opts=child_opts(self),
        )
        self.endpoint_name = endpoint.name
        resource_id = endpoint.name.apply(lambda n: f"endpoint/{n}/variant/{SHARED_ENDPOINT_VARIANT}")
        target = aws.appautoscaling.Target(
            f"{name}-scaling-target",
            service_namespace="sagemaker",
            resource_id=resource_id,
            scalable_dimension=SCALABLE_DIMENSION,
            min_capacity=config.min_instances,
            max_capacity=config.max_instances,
            tags=tags,
            opts=child_opts(self),
        )
        aws.appautoscaling.Policy(
            f"{name}-scaling-policy",
            name=naming.name("shared", "invocations"),
            policy_type="TargetTrackingScaling",
            service_namespace=target.service_namespace,
            resource_id=target.resource_id,
            scalable_dimension=target.scalable_dimension,
            target_tracking_scaling_policy_configuration={
                "target_value": float(config.invocations_per_instance_target),
                "predefined_metric_specification": {
                    "predefined_metric_type": "SageMakerVariantInvocationsPerInstance"
                },
                "scale_in_cooldown": 300,
                "scale_out_cooldown": 60,
            },
            opts=child_opts(self),
        )
        dimensions = endpoint.name.apply(
            lambda n: {"EndpointName": n, "VariantName": SHARED_ENDPOINT_VARIANT}
        )
        actions = [args.topic_arn]
        for logical, metric, statistic, threshold, description in (
            (
                "model-loading-wait",
                "ModelLoadingWaitTime",
                "Average",
                config.model_loading_wait_alarm_ms * 1000,  # the metric is in microseconds
                f"shared endpoint: model loads make requests wait {config.model_loading_wait_alarm_ms}+ ms "
                "(cold loads or eviction churn: scale out or move busy tenants to dedicated)",
            ),
            (
                "5xx",
                "Invocation5XXErrors",
                "Sum",
                config.server_error_alarm_threshold,
                f"shared endpoint: {config.server_error_alarm_threshold}+ server errors in 5 minutes",
            ),
        ):
            aws.cloudwatch.MetricAlarm(
                f"{name}-{logical}",
                name=naming.name("shared", logical),
                alarm_description=description,
                namespace="AWS/SageMaker",
                metric_name=metric,
                dimensions=dimensions,
                statistic=statistic,
                threshold=threshold,
                comparison_operator="GreaterThanOrEqualToThreshold",
                period=ALARM_PERIOD_SECONDS,
                evaluation_periods=1,
                treat_missing_data="notBreaching",
                alarm_actions=actions,
                ok_actions=actions,
                tags=tags,
                opts=child_opts(self),
            )
        self.register_outputs({"endpoint_name": self.endpoint_name, "model_data_url": self.model_data_url})
