"""The SageMaker execution role (training jobs and endpoints run as it) and SageMaker's log groups."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from convclass.deployment import SAGEMAKER_ROLE
from convclass.layout import (
    CHECKPOINTS,
    DATASETS,
    MODELS,
    TRAINING_LOG_GROUP,
    any_classifier_key_pattern,
    endpoint_name,
)
from infra.common import (
    AwsEnv,
    Naming,
    Statement,
    assume_role_policy,
    child_opts,
    kms_use_statement,
    policy_document,
    statement,
)
from infra.functions import s3_statements

METRICS_NAMESPACE = "/aws/sagemaker/"


def endpoint_log_group(tenant: str, classifier: str) -> str:
    return f"/aws/sagemaker/Endpoints/{endpoint_name(tenant, classifier)}"


def execution_role_statements(
    env: AwsEnv, bucket: str, key_arn: str, repository_arns: list[str]
) -> list[Statement]:
    """Training reads datasets, writes models and checkpoints; endpoints read models. Nothing else."""
    area = any_classifier_key_pattern
    return [
        *s3_statements(
            env,
            bucket,
            read=[area(f"{DATASETS}/*"), area(f"{MODELS}/*"), area(f"{CHECKPOINTS}/*")],
            write=[area(f"{MODELS}/*"), area(f"{CHECKPOINTS}/*")],
        ),
        kms_use_statement(key_arn),
        # Encrypted ML volumes: SageMaker creates grants on the key for the instances it launches.
        statement(
            "GrantKeyToSageMakerVolumes",
            ["kms:CreateGrant"],
            [key_arn],
            conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
        ),
        statement(
            "PullImages",
            ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            repository_arns,
        ),
        # GetAuthorizationToken is account-wide by design (allow-listed in infra/policies.py).
        statement("RegistryLogin", ["ecr:GetAuthorizationToken"], ["*"]),
        statement(
            "WriteLogs",
            ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            [
                env.arn("logs", "log-group:/aws/sagemaker/*"),
                env.arn("logs", "log-group:/aws/sagemaker/*:log-stream:*"),
            ],
        ),
        # PutMetricData has no resource-level permissions; the namespace condition confines it to SageMaker's.
        statement(
            "PublishMetrics",
            ["cloudwatch:PutMetricData"],
            ["*"],
            conditions={"StringLike": {"cloudwatch:namespace": f"{METRICS_NAMESPACE}*"}},
        ),
    ]


@dataclass(frozen=True)
class SageMakerArgs:
    naming: Naming
    env: pulumi.Output[AwsEnv]
    bucket: pulumi.Output[str]
    key_arn: pulumi.Output[str]
    repository_arns: list[pulumi.Output[str]]
    log_retention_days: int
    #: (tenant, classifier) configured ``hosting: dedicated``: each has an endpoint and log group of its own.
    dedicated_classifiers: list[tuple[str, str]]
    create_log_groups: bool


class SageMaker(pulumi.ComponentResource):
    """Execution role + log groups with retention for training jobs and each dedicated classifier's endpoint
    (SageMaker would otherwise create them itself, unencrypted and kept forever)."""

    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: SageMakerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("convclass:infra:SageMaker", name, None, opts)
        tags = args.naming.tags("sagemaker")
        role = aws.iam.Role(
            f"{name}-execution-role",
            name=args.naming.name(*SAGEMAKER_ROLE),
            assume_role_policy=args.env.apply(
                lambda e: assume_role_policy("sagemaker.amazonaws.com", source_account=e.account_id)
            ),
            tags=tags,
            opts=child_opts(self),
        )
        aws.iam.RolePolicy(
            f"{name}-execution-policy",
            role=role.id,
            policy=pulumi.Output.all(args.env, args.bucket, args.key_arn, *args.repository_arns).apply(
                lambda v: policy_document(execution_role_statements(v[0], v[1], v[2], list(v[3:])))
            ),
            opts=child_opts(self),
        )
        self.role_arn = role.arn
        log_groups = [("training", TRAINING_LOG_GROUP)] + [
            (f"{tenant}-{classifier}", endpoint_log_group(tenant, classifier))
            for tenant, classifier in args.dedicated_classifiers
        ]
        for logical, log_group_name in log_groups if args.create_log_groups else []:
            aws.cloudwatch.LogGroup(
                f"{name}-{logical}-logs",
                name=log_group_name,
                retention_in_days=args.log_retention_days,
                kms_key_id=args.key_arn,
                tags=tags,
                opts=child_opts(self),
            )
        self.register_outputs({"role_arn": self.role_arn})
