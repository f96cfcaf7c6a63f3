"""The customer console: the Lambda image's console app behind an API Gateway HTTP API with a Lambda
authorizer, and IAM limited to what its pages read and its decisions write.

Why a Lambda authorizer rather than the HTTP API's JWT authorizer: a JWT authorizer reads only the
``Authorization`` header, which a browser does not send when it follows a link, so it would turn every page
view into a 401. The authorizer here verifies the same JWT (the identity provider's JWKS, issuer and
audience, the tenant claim) from the header or the session cookie set by ``/login``; the app verifies it again
and scopes every object it reads to the token's tenant.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from convclass.layout import (
    CHAMPION_FILE,
    CONSENT_FILE,
    DATASETS,
    INFERENCE_EVENTS,
    MODELS,
    PROJECT_PREFIX,
    TENANTS_ROOT,
    any_classifier_key_pattern,
)
from infra.common import AwsEnv, Naming, Statement, child_opts, kms_use_statement, statement
from infra.config import ConsoleConfig
from infra.functions import ContainerFunction, FunctionSpec, s3_statements

CONSOLE_FUNCTION = "console"
AUTHORIZER_FUNCTION = "authorizer"
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
        self.app, self.authorizer = app, authorizer
        self.url = api.api_endpoint
        self.register_outputs({"url": self.url})
