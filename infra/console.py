"""The customer console: the Lambda image's console app behind an API Gateway HTTP API with a Lambda
authorizer, and IAM limited to what its pages read and its decisions write.

Why a Lambda authorizer rather than the HTTP API's JWT authorizer: a JWT authorizer reads only the
``Authorization`` header, which a browser does not send when it follows a link, so it would turn every page
view into a 401. The authorizer here verifies the same JWT (the identity provider's JWKS, issuer and
audience, the tenant claim) from the header or the session cookie set by ``/login``; the app verifies it again
and scopes every object it reads to the token's tenant.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from convclass.events import EMAIL_CLASSIFICATION_FAILED, EMAIL_CLASSIFIED, INFERENCE_SOURCE
from convclass.layout import (
    CHAMPION_FILE,
    CONSENT_FILE,
    DATASETS,
    FEEDBACK,
    INFERENCE_EVENTS,
    MODELS,
    PROJECT_PREFIX,
    TENANTS_ROOT,
    any_classifier_key_pattern,
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
from infra.config import ConsoleConfig
from infra.functions import ContainerFunction, FunctionSpec, s3_statements

CONSOLE_FUNCTION = "console"
AUTHORIZER_FUNCTION = "authorizer"
#: Where Firehose writes the inference events (convclass.console.inference reads them): the classifier's
#: ``inference-events/{day}/`` folder of ``ClassifierLayout``, tenant and classifier taken from the event.
ARCHIVE_PREFIX = (
    f"{TENANTS_ROOT}!{{partitionKeyFromQuery:tenant}}/classifiers/!{{partitionKeyFromQuery:classifier}}/"
    f"{INFERENCE_EVENTS}/!{{timestamp:yyyy-MM-dd}}/"
)
ARCHIVE_ERRORS = "inference-archive-errors/"
PARTITION_QUERY = "{tenant:.detail.tenant,classifier:.detail.classifier}"
#: Routes that need no token: the health check and the sign-in link (which verifies the token itself).
PUBLIC_ROUTES = ("GET /healthz", "GET /login")


def console_statements(
    env: AwsEnv, bucket: str, key_arn: str, state_machine_arn: str, schedule_group: str
) -> list[Statement]:
    """What the console's pages read, and what its decisions (approve, reject, roll back, withdraw consent)
    write."""
    area = any_classifier_key_pattern
    bucket_arn = f"arn:{env.partition}:s3:::{bucket}"
    execution_arns = state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":*"
    return [
        *s3_statements(
            env,
            bucket,
            read=[
                area(CONSENT_FILE),
                area(CHAMPION_FILE),
                area(f"{MODELS}/*"),
                area(f"{DATASETS}/*"),
                area(f"{INFERENCE_EVENTS}/*"),
                # The feedback page: captured rows and the deployed run's summary (read only).
                area(f"{FEEDBACK}/*"),
            ],
            # Withdrawn consent (and consent given at the export gate).
            write=[area(CONSENT_FILE)],
            sid="Console",
        ),
        # The overview lists a tenant's classifiers; the history reads every version of champion.json.
        statement(
            "ListTenantClassifiers",
            ["s3:ListBucket"],
            [bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{TENANTS_ROOT}*/classifiers/"]}},
        ),
        statement(
            "ChampionHistory",
            ["s3:ListBucketVersions"],
            [bucket_arn],
            conditions={"StringLike": {"s3:prefix": [area(CHAMPION_FILE)]}},
        ),
        statement("ChampionVersions", ["s3:GetObjectVersion"], [f"{bucket_arn}/{area(CHAMPION_FILE)}"]),
        kms_use_statement(key_arn),
        # Runs: list and read them, answer their approval gates, start a roll back.
        statement(
            "TrainingRuns",
            [
                "states:ListExecutions",
                "states:StartExecution",
                "states:SendTaskSuccess",
                "states:SendTaskFailure",
            ],
            [state_machine_arn],
        ),
        statement(
            "TrainingRunDetail", ["states:DescribeExecution", "states:GetExecutionHistory"], [execution_arns]
        ),
        statement(
            "TenantEndpoints",
            ["sagemaker:DescribeEndpoint"],
            [env.arn("sagemaker", f"endpoint/{PROJECT_PREFIX}-*")],
        ),
        statement(
            "RetrainingSchedules",
            ["scheduler:GetSchedule"],
            [env.arn("scheduler", f"schedule/{schedule_group}/*")],
        ),
    ]


@dataclass(frozen=True)
class ConsoleArgs:
    naming: Naming
    env: pulumi.Output[AwsEnv]
    config: ConsoleConfig
    image_uri: pulumi.Input[str]
    bucket: pulumi.Output[str]
    key_arn: pulumi.Output[str]
    training_state_machine_arn: pulumi.Output[str]
    bus_name: pulumi.Output[str]
    region: str
    log_retention_days: int


class Console(pulumi.ComponentResource):
    """Console and authorizer functions, the HTTP API (access-logged, throttled) and its routes."""

    url: pulumi.Output[str]

    def __init__(self, name: str, args: ConsoleArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("convclass:infra:Console", name, None, opts)
        naming, config = args.naming, args.config
        tags = naming.tags("console")
        schedule_group = naming.prefix  # the retraining schedules' group (infra/triggers.py)
        identity: dict[str, pulumi.Input[str]] = {
            "CONVCLASS_CONSOLE_JWKS_URL": str(config.jwks_url),
            "CONVCLASS_CONSOLE_ISSUER": str(config.issuer),
            "CONVCLASS_CONSOLE_AUDIENCE": str(config.audience),
            "CONVCLASS_CONSOLE_TENANT_CLAIM": config.tenant_claim,
        }
        reads = pulumi.Output.all(args.env, args.bucket, args.key_arn, args.training_state_machine_arn).apply(
            lambda v: console_statements(v[0], v[1], v[2], v[3], schedule_group)
        )
        app = ContainerFunction(
            f"{name}-app",
            naming=naming,
            env=args.env,
            spec=FunctionSpec(
                function=CONSOLE_FUNCTION,
                settings=config.function,
                environment={
                    **identity,
                    "CONVCLASS_REGION": args.region,
                    "CONVCLASS_DATA_BUCKET": args.bucket,
                    "CONVCLASS_TRAINING_STATE_MACHINE_ARN": args.training_state_machine_arn,
                    "CONVCLASS_CONSOLE_SCHEDULE_GROUP": schedule_group,
                },
                statements=reads,
                description="convclass customer console",
            ),
            image_uri=args.image_uri,
            key_arn=args.key_arn,
            log_retention_days=args.log_retention_days,
            opts=child_opts(self),
        )
        authorizer = ContainerFunction(
            f"{name}-authorizer",
            naming=naming,
            env=args.env,
            spec=FunctionSpec(
                function=AUTHORIZER_FUNCTION,
                settings=config.authorizer,
                environment=identity,
                statements=pulumi.Output.from_input([]),
                description="convclass customer console: verifies the tenant's token",
            ),
            image_uri=args.image_uri,
            key_arn=args.key_arn,
            log_retention_days=args.log_retention_days,
            opts=child_opts(self),
        )
        api = aws.apigatewayv2.Api(
            f"{name}-api",
            name=naming.name(CONSOLE_FUNCTION),
            protocol_type="HTTP",
            description="convclass customer console",
            tags=tags,
            opts=child_opts(self),
        )
        access_logs = aws.cloudwatch.LogGroup(
            f"{name}-access-logs",
            name=f"/aws/apigateway/{naming.name(CONSOLE_FUNCTION)}",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.key_arn,
            tags=tags,
            opts=child_opts(self),
        )
        aws.apigatewayv2.Stage(
            f"{name}-stage",
            api_id=api.id,
            name="$default",
            auto_deploy=True,
            # No path or query string: the sign-in link carries the token in its query.
            access_log_settings=aws.apigatewayv2.StageAccessLogSettingsArgs(
                destination_arn=access_logs.arn,
                format='{"requestId":"$context.requestId","routeKey":"$context.routeKey",'
                '"status":"$context.status","time":"$context.requestTime",'
                '"tenant":"$context.authorizer.tenant"}',
            ),
            default_route_settings=aws.apigatewayv2.StageDefaultRouteSettingsArgs(
                throttling_burst_limit=50, throttling_rate_limit=20
            ),
            tags=tags,
            opts=child_opts(self),
        )
        gate = aws.apigatewayv2.Authorizer(
            f"{name}-jwt",
            api_id=api.id,
            name=naming.name(AUTHORIZER_FUNCTION),
            authorizer_type="REQUEST",
            authorizer_uri=authorizer.function.invoke_arn,
            authorizer_payload_format_version="2.0",
            enable_simple_responses=True,
            # Caching off: every request is checked (the cookie or header varies per request).
            authorizer_result_ttl_in_seconds=0,
            opts=child_opts(self),
        )
        integration = aws.apigatewayv2.Integration(
            f"{name}-integration",
            api_id=api.id,
            integration_type="AWS_PROXY",
            integration_uri=app.function.invoke_arn,
            payload_format_version="2.0",
            opts=child_opts(self),
        )
        target = integration.id.apply(lambda ident: f"integrations/{ident}")
        for route in PUBLIC_ROUTES:
            aws.apigatewayv2.Route(
                f"{name}-route-{route.split('/')[-1]}",
                api_id=api.id,
                route_key=route,
                target=target,
                authorization_type="NONE",
                opts=child_opts(self),
            )
        aws.apigatewayv2.Route(
            f"{name}-route-default",
            api_id=api.id,
            route_key="$default",
            target=target,
            authorization_type="CUSTOM",
            authorizer_id=gate.id,
            opts=child_opts(self),
        )
        for key, function in (("app", app), ("authorizer", authorizer)):
            aws.lambda_.Permission(
                f"{name}-{key}-invoke",
                action="lambda:InvokeFunction",
                function=function.name,
                principal="apigateway.amazonaws.com",
                source_arn=api.execution_arn.apply(lambda arn: f"{arn}/*"),
                opts=child_opts(self),
            )
        self.archive = InferenceArchive(f"{name}-archive", args, opts=child_opts(self))
        self.app, self.authorizer = app, authorizer
        self.url = api.api_endpoint
        self.register_outputs({"url": self.url})


def archive_statements(env: AwsEnv, bucket: str, key_arn: str) -> list[Statement]:
    """Firehose writes inference events under each classifier's archive prefix (and failures aside)."""
    bucket_arn = f"arn:{env.partition}:s3:::{bucket}"
    objects = [
        f"{bucket_arn}/{any_classifier_key_pattern(INFERENCE_EVENTS)}/*",
        f"{bucket_arn}/{ARCHIVE_ERRORS}*",
    ]
    return [
        statement("WriteArchive", ["s3:PutObject", "s3:AbortMultipartUpload"], objects),
        statement("ArchiveBucket", ["s3:GetBucketLocation", "s3:ListBucketMultipartUploads"], [bucket_arn]),
        kms_use_statement(key_arn),
    ]


class InferenceArchive(pulumi.ComponentResource):
    """EventBridge rule (inference events of the stack's bus) → Firehose, partitioned per tenant, classifier
    and day into the data bucket, encrypted with the stack's key."""

    def __init__(self, name: str, args: ConsoleArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("convclass:infra:InferenceArchive", name, None, opts)
        naming = args.naming
        tags = naming.tags("console")
        role = aws.iam.Role(
            f"{name}-firehose-role",
            name=naming.name("inference-archive"),
            assume_role_policy=args.env.apply(
                lambda e: assume_role_policy("firehose.amazonaws.com", source_account=e.account_id)
            ),
            tags=tags,
            opts=child_opts(self),
        )
        policy = aws.iam.RolePolicy(
            f"{name}-firehose-policy",
            role=role.id,
            policy=pulumi.Output.all(args.env, args.bucket, args.key_arn).apply(
                lambda v: policy_document(archive_statements(v[0], v[1], v[2]))
            ),
            opts=child_opts(self),
        )
        extended = aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationArgs
        stream = aws.kinesis.FirehoseDeliveryStream(
            f"{name}-stream",
            name=naming.name("inference-archive"),
            destination="extended_s3",
            server_side_encryption=aws.kinesis.FirehoseDeliveryStreamServerSideEncryptionArgs(
                enabled=True, key_type="CUSTOMER_MANAGED_CMK", key_arn=args.key_arn
            ),
            extended_s3_configuration=extended(
                role_arn=role.arn,
                bucket_arn=args.bucket.apply(lambda b: f"arn:aws:s3:::{b}"),
                prefix=ARCHIVE_PREFIX,
                error_output_prefix=ARCHIVE_ERRORS + "!{firehose:error-output-type}/!{timestamp:yyyy-MM-dd}/",
                kms_key_arn=args.key_arn,
                # Dynamic partitioning needs at least 64 MB buffers; five minutes bounds the page's delay.
                buffering_size=64,
                buffering_interval=300,
                dynamic_partitioning_configuration=aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationDynamicPartitioningConfigurationArgs(
                    enabled=True
                ),
                processing_configuration=aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationProcessingConfigurationArgs(
                    enabled=True,
                    processors=[
                        _processor(
                            "MetadataExtraction",
                            {
                                "JsonParsingEngine": "JQ-1.6",
                                "MetadataExtractionQuery": PARTITION_QUERY,
                            },
                        ),
                        _processor("AppendDelimiterToRecord", {"Delimiter": "\\n"}),
                    ],
                ),
            ),
            tags=tags,
            opts=child_opts(self, depends_on=[policy]),
        )
        events_role = aws.iam.Role(
            f"{name}-events-role",
            name=naming.name("inference-archive", "events"),
            assume_role_policy=args.env.apply(
                lambda e: assume_role_policy("events.amazonaws.com", source_account=e.account_id)
            ),
            tags=tags,
            opts=child_opts(self),
        )
        aws.iam.RolePolicy(
            f"{name}-events-policy",
            role=events_role.id,
            policy=stream.arn.apply(
                lambda arn: policy_document(
                    [statement("DeliverToArchive", ["firehose:PutRecord", "firehose:PutRecordBatch"], [arn])]
                )
            ),
            opts=child_opts(self),
        )
        rule = aws.cloudwatch.EventRule(
            f"{name}-rule",
            name=naming.name("inference-archive"),
            event_bus_name=args.bus_name,
            event_pattern=json.dumps(
                {"source": [INFERENCE_SOURCE], "detail-type": [EMAIL_CLASSIFIED, EMAIL_CLASSIFICATION_FAILED]}
            ),
            tags=tags,
            opts=child_opts(self),
        )
        aws.cloudwatch.EventTarget(
            f"{name}-target",
            rule=rule.name,
            event_bus_name=args.bus_name,
            arn=stream.arn,
            role_arn=events_role.arn,
            opts=child_opts(self),
        )
        self.stream_arn = stream.arn
        self.register_outputs({"stream_arn": stream.arn})


def _processor(kind: str, parameters: dict[str, str]) -> Any:
    args = aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationProcessingConfigurationProcessorArgs
    parameter = (
        aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationProcessingConfigurationProcessorParameterArgs
    )
    return args(
        type=kind,
        parameters=[
            parameter(parameter_name=name, parameter_value=value) for name, value in parameters.items()
        ],
    )
