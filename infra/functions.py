"""The container-image Lambdas: one image, one command per function, one least-privilege role per function."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from convclass.deployment import (
    DATA_BUCKET_ENV,
    KMS_KEY_ENV,
    LAMBDA_TRACING_MODE,
    function_environment,
    function_role,
)
from convclass.export.factory import FILES_ROOTS_ENV
from convclass.export.settings import SECRET_ID_ENV
from convclass.layout import (
    CHAMPION_FILE,
    CONSENT_FILE,
    DATASETS,
    EXPORTS,
    FEEDBACK,
    HISTORY_DIR,
    MODELS,
    PIPELINE_FUNCTIONS,
    PROJECT_PREFIX,
    WATERMARK_FILE,
    any_classifier_key_pattern,
    function_handler,
    lambda_log_group,
)
from infra.common import (
    AwsEnv,
    Naming,
    Statement,
    assume_role_policy,
    child_opts,
    kms_use_statement,
    log_group_arns,
    policy_document,
    shared_endpoint_name,
    statement,
    xray_statement,
)
from infra.config import FunctionsConfig, FunctionSettings


def s3_statements(
    env: AwsEnv,
    bucket: str,
    *,
    read: Sequence[str] = (),
    write: Sequence[str] = (),
    sid: str = "Data",
    missing_is_404: bool = False,
) -> list[Statement]:
    """Object access limited to ``convclass.layout`` key patterns, and listing limited to the same.

    ``missing_is_404``: S3 answers a GetObject for a key that does not exist with 404 ``NoSuchKey`` only to a
    caller allowed ``s3:ListBucket`` on the bucket, and that check carries no ``s3:prefix``, so a
    prefix-conditioned grant reads as 403 ``AccessDenied``. A function that must tell "absent" from "denied"
    (export: a first run has no watermark; preprocess: a missing manifest is a named error; evaluate and
    feedback: no ``champion.json`` means no champion) gets listing without the prefix condition: key names
    only, no object it could not already read.
    """
    bucket_arn = f"arn:{env.partition}:s3:::{bucket}"
    statements = []
    if read:
        statements.append(statement(f"{sid}Read", ["s3:GetObject"], [f"{bucket_arn}/{p}" for p in read]))
    if write:
        statements.append(statement(f"{sid}Write", ["s3:PutObject"], [f"{bucket_arn}/{p}" for p in write]))
    prefixes = sorted(set(read) | set(write))
    if prefixes and missing_is_404:
        statements.append(statement(f"{sid}List", ["s3:ListBucket"], [bucket_arn]))
    elif prefixes:
        statements.append(
            statement(
                f"{sid}List",
                ["s3:ListBucket"],
                [bucket_arn],
                conditions={"StringLike": {"s3:prefix": prefixes}},
            )
        )
    return statements


def source_secret_prefix(naming: Naming) -> str:
    """Secrets Manager names under which a deployment stores its conversation-store connections."""
    return f"{naming.prefix}/sources/"


def source_secret_id(naming: Naming) -> str:
    """One secret per tenant; the export function replaces ``{tenant}`` (convclass.export.settings)."""
    return source_secret_prefix(naming) + "{tenant}"


def files_root_statements(env: AwsEnv, roots: Sequence[str]) -> list[Statement]:
    """Read access to the S3 prefixes tenants drop files into (``{tenant}`` matches any tenant)."""
    objects, buckets = [], set()
    for root in roots:
        bucket, _, prefix = root.removeprefix("s3://").partition("/")
        buckets.add(bucket)
        objects.append(f"arn:{env.partition}:s3:::{bucket}/{prefix.replace('{tenant}', '*')}*")
    if not objects:
        return []
    return [
        statement("ReadDroppedFiles", ["s3:GetObject"], objects),
        statement("ListDroppedFiles", ["s3:ListBucket"], [f"arn:{env.partition}:s3:::{b}" for b in buckets]),
    ]


@dataclass(frozen=True)
class PipelineAccess:
    """What each pipeline function may touch beyond its own logs (a pure function of names)."""

    bucket: str
    key_arn: str
    env: AwsEnv
    naming: Naming
    files_roots: tuple[str, ...] = ()

    def statements(self, function: str) -> list[Statement]:
        area = any_classifier_key_pattern
        if function == "plan":
            # Validates the request and computes names: no data access at all.
            return []
        if function == "export":
            watermark = area(f"{EXPORTS}/{WATERMARK_FILE}")
            return [
                *s3_statements(
                    self.env,
                    self.bucket,
                    read=[area(CONSENT_FILE), area(f"{EXPORTS}/*")],
                    # consent.json: the run records its export gate's answer (consent or refusal).
                    write=[area(CONSENT_FILE), area(f"{EXPORTS}/*")],
                    missing_is_404=True,
                ),
                # A refusal drops the committed training history (the watermark names it).
                statement(
                    "DropHistory",
                    ["s3:DeleteObject"],
                    [f"arn:{self.env.partition}:s3:::{self.bucket}/{watermark}"],
                ),
                kms_use_statement(self.key_arn),
                statement(
                    "ReadSourceConnections",
                    ["secretsmanager:GetSecretValue"],
                    [self.env.arn("secretsmanager", f"secret:{source_secret_prefix(self.naming)}*")],
                ),
                *files_root_statements(self.env, self.files_roots),
            ]
        if function == "preprocess":
            return [
                *s3_statements(
                    self.env,
                    self.bucket,
                    # Agents' confirmed labels override exported ones (convclass.feedback).
                    read=[area(f"{EXPORTS}/*"), area(f"{FEEDBACK}/confirmations/*")],
                    # The run's training history is kept with its export (exports/{run}/history/).
                    write=[area(f"{DATASETS}/*"), area(f"{EXPORTS}/*/{HISTORY_DIR}/*")],
                    missing_is_404=True,
                ),
                kms_use_statement(self.key_arn),
            ]
        if function == "evaluate":
            return [
                *s3_statements(
                    self.env,
                    self.bucket,
                    read=[area(f"{MODELS}/*"), area(CHAMPION_FILE)],
                    missing_is_404=True,
                ),
                kms_use_statement(self.key_arn),
                # Whether the tenant's endpoint (or the shared one a route names) exists, and which config it
                # runs, decide whether a champion serves.
                statement(
                    "DescribeTenantEndpoints",
                    ["sagemaker:DescribeEndpoint"],
                    [
                        self.env.arn("sagemaker", f"endpoint/{PROJECT_PREFIX}-*"),
                        self.env.arn("sagemaker", f"endpoint/{shared_endpoint_name(self.naming)}"),
                    ],
                ),
            ]
        raise ValueError(f"no access defined for function {function!r}")


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda: its name (``functions/<name>/handler.py``), sizing, environment and extra permissions."""

    function: str
    settings: FunctionSettings
    environment: dict[str, pulumi.Input[str]]
    statements: pulumi.Output[list[Statement]]
    description: str = ""


class ContainerFunction(pulumi.ComponentResource):
    """Log group (retention, KMS), role (own logs + X-Ray + what ``spec`` grants) and the image function."""

    arn: pulumi.Output[str]
    name: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        naming: Naming,
        env: pulumi.Output[AwsEnv],
        spec: FunctionSpec,
        image_uri: pulumi.Input[str],
        key_arn: pulumi.Input[str],
        log_retention_days: int,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("convclass:infra:ContainerFunction", name, None, opts)
        tags = naming.tags("functions")
        function_name = naming.name(spec.function)
        log_group_name = lambda_log_group(function_name)
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=log_group_name,
            retention_in_days=log_retention_days,
            kms_key_id=key_arn,
            tags=tags,
            opts=child_opts(self),
        )
        role = aws.iam.Role(
            f"{name}-role",
            name=naming.name(*function_role(spec.function)),
            assume_role_policy=env.apply(
                lambda e: assume_role_policy("lambda.amazonaws.com", source_account=e.account_id)
            ),
            tags=tags,
            opts=child_opts(self),
        )

        def document(values: list[Any]) -> str:
            e, key, statements = values
            own_logs = statement(
                "OwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], log_group_arns(e, log_group_name)
            )
            # The environment is encrypted with the stack's key.
            environment = statement("DecryptEnvironment", ["kms:Decrypt"], [key])
            return policy_document([own_logs, xray_statement(), environment, *statements])

        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=pulumi.Output.all(env, key_arn, spec.statements).apply(document),
            opts=child_opts(self),
        )
        self.function = aws.lambda_.Function(
            f"{name}-function",
            name=function_name,
            description=spec.description,
            package_type="Image",
            image_uri=image_uri,
            image_config=aws.lambda_.FunctionImageConfigArgs(commands=[function_handler(spec.function)]),
            architectures=["x86_64"],
            role=role.arn,
            memory_size=spec.settings.memory_mb,
            timeout=spec.settings.timeout_seconds,
            ephemeral_storage=aws.lambda_.FunctionEphemeralStorageArgs(
                size=spec.settings.ephemeral_storage_mb
            ),
            reserved_concurrent_executions=spec.settings.reserved_concurrency,
            tracing_config=aws.lambda_.FunctionTracingConfigArgs(mode=LAMBDA_TRACING_MODE),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="JSON",
                log_group=log_group.name,
                application_log_level="INFO",
                system_log_level="WARN",
            ),
            kms_key_arn=key_arn,
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables=function_environment(spec.function, spec.environment)
            ),
            tags=tags,
            opts=child_opts(self, depends_on=[policy, log_group]),
        )
        self.arn = self.function.arn
        self.name = self.function.name
        self.role_arn = role.arn
        self.register_outputs({"arn": self.arn})


@dataclass(frozen=True)
class FunctionsArgs:
    naming: Naming
    env: pulumi.Output[AwsEnv]
    config: FunctionsConfig
    image_uri: pulumi.Input[str]
    bucket: pulumi.Output[str]
    key_arn: pulumi.Output[str]
    log_retention_days: int
    files_roots: tuple[str, ...] = ()


class Functions(pulumi.ComponentResource):
    """plan, export, preprocess and evaluate: the Lambda steps of the training pipeline."""

    functions: dict[str, ContainerFunction]

    def __init__(self, name: str, args: FunctionsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("convclass:infra:Functions", name, None, opts)
        access = pulumi.Output.all(args.bucket, args.key_arn, args.env).apply(
            lambda v: PipelineAccess(
                bucket=v[0], key_arn=v[1], env=v[2], naming=args.naming, files_roots=args.files_roots
            )
        )
        self.functions = {}
        for function in PIPELINE_FUNCTIONS:
            spec = FunctionSpec(
                function=function,
                settings=getattr(args.config, function),
                environment={
                    DATA_BUCKET_ENV: args.bucket,
                    KMS_KEY_ENV: args.key_arn,
                    **(self._export_environment(args) if function == "export" else {}),
                },
                statements=access.apply(lambda a, f=function: a.statements(f)),  # type: ignore[misc]
                description=f"convclass {function} step",
            )
            self.functions[function] = ContainerFunction(
                f"{name}-{function}",
                naming=args.naming,
                env=args.env,
                spec=spec,
                image_uri=args.image_uri,
                key_arn=args.key_arn,
                log_retention_days=args.log_retention_days,
                opts=child_opts(self),
            )
        self.register_outputs({f: fn.arn for f, fn in self.functions.items()})

    @staticmethod
    def _export_environment(args: FunctionsArgs) -> dict[str, pulumi.Input[str]]:
        environment: dict[str, pulumi.Input[str]] = {SECRET_ID_ENV: source_secret_id(args.naming)}
        if args.files_roots:
            environment[FILES_ROOTS_ENV] = ",".join(args.files_roots)
        return environment
