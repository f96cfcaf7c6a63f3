"""Alarms and the pipeline dashboard. Every alarm notifies the stack's topic."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from convclass.events import VARIANT_NAME
from convclass.layout import ENDPOINT_ALARM_KINDS, endpoint_alarm_names, endpoint_name
from infra.common import Naming, child_opts
from infra.config import ServingConfig

PERIOD_SECONDS = 300
# Step Functions metrics that mean a run did not finish normally.
EXECUTION_PROBLEMS = ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted")


@dataclass(frozen=True)
class EndpointAlarm:
    """One alarm of a tenant's endpoint: blue/green updates roll back when it fires (names from layout)."""

    kind: str
    name: str
    metric: str
    statistic: str | None
    extended_statistic: str | None
    threshold: float


def endpoint_alarms(tenant: str, classifier: str, serving: ServingConfig) -> list[EndpointAlarm]:
    alarms = []
    for kind, name in zip(ENDPOINT_ALARM_KINDS, endpoint_alarm_names(tenant, classifier), strict=True):
        if kind == "invocation-5xx":
            alarms.append(
                EndpointAlarm(
                    kind,
                    name,
                    "Invocation5XXErrors",
                    "Sum",
                    None,
                    float(serving.server_error_alarm_threshold),
                )
            )
        elif kind == "model-latency":
            # ModelLatency is reported in microseconds.
            alarms.append(
                EndpointAlarm(
                    kind, name, "ModelLatency", None, "p90", float(serving.latency_alarm_p90_ms * 1000)
                )
            )
        else:
            raise ValueError(f"no metric defined for endpoint alarm kind {kind!r}")
    return alarms


def dashboard_body(
    region: str,
    training_arn: str,
    inference_arn: str,
    queues: dict[str, str],
    functions: list[str],
    endpoints: list[str],
) -> str:
    """Executions, queue backlogs, function errors and endpoint health on one page."""

    def widget(title: str, metrics: list[list[Any]], stat: str = "Sum") -> dict[str, Any]:
        return {
            "type": "metric",
            "width": 12,
            "height": 6,
            "properties": {
                "title": title,
                "region": region,
                "stat": stat,
                "period": PERIOD_SECONDS,
                "view": "timeSeries",
                "metrics": metrics,
            },
        }

    def executions(arn: str) -> list[list[Any]]:
        return [
            ["AWS/States", metric, "StateMachineArn", arn]
            for metric in ("ExecutionsStarted", "ExecutionsSucceeded", *EXECUTION_PROBLEMS)
        ]

    widgets = [
        widget("Training runs", executions(training_arn)),
        widget("Inference batches", executions(inference_arn)),
        widget(
            "Queue backlog",
            [
                ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q]
                for q in sorted(queues.values())
            ],
            stat="Maximum",
        ),
        widget("Function errors", [["AWS/Lambda", "Errors", "FunctionName", f] for f in functions]),
    ]
    if endpoints:
        widgets.append(
            widget(
                "Endpoint 5xx",
                [
                    ["AWS/SageMaker", "Invocation5XXErrors", "EndpointName", e, "VariantName", VARIANT_NAME]
                    for e in endpoints
                ],
            )
        )
        widgets.append(
            widget(
                "Endpoint latency p90 (µs)",
                [
                    ["AWS/SageMaker", "ModelLatency", "EndpointName", e, "VariantName", VARIANT_NAME]
                    for e in endpoints
                ],
                stat="p90",
            )
        )
    return json.dumps({"widgets": widgets}, sort_keys=True)


@dataclass(frozen=True)
class MonitoringArgs:
    naming: Naming
    region: str
    topic_arn: pulumi.Output[str]
    training_arn: pulumi.Output[str]
    inference_arn: pulumi.Output[str]
    # Dead-letter queues by purpose (names): any message there needs a human.
    dlq_names: dict[str, pulumi.Output[str]]
    queue_names: dict[str, pulumi.Output[str]]
    function_names: list[pulumi.Output[str]]
    #: (tenant, classifier) of the classifiers configured ``hosting: dedicated``: each has an endpoint of its
    #: own to alarm on (shared classifiers are served by the shared endpoint, which has alarms of its own).
    dedicated_classifiers: list[tuple[str, str]]
    serving: ServingConfig


class Monitoring(pulumi.ComponentResource):
    """Alarms: failed/timed-out/aborted executions, any DLQ message, dedicated endpoints' 5xx and latency; a
    dashboard."""

    dashboard_name: pulumi.Output[str]

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("convclass:infra:Monitoring", name, None, opts)
        naming = args.naming
        tags = naming.tags("monitoring")
        actions = [args.topic_arn]

        def alarm(logical: str, physical: str, description: str, **kwargs: Any) -> None:
            aws.cloudwatch.MetricAlarm(
                f"{name}-{logical}",
                name=physical,
                alarm_description=description,
                alarm_actions=actions,
                ok_actions=actions,
                period=PERIOD_SECONDS,
                evaluation_periods=1,
                tags=tags,
                opts=child_opts(self),
                **kwargs,
            )

        for workflow, arn in (("training", args.training_arn), ("inference", args.inference_arn)):
            for metric in EXECUTION_PROBLEMS:
                alarm(
                    f"{workflow}-{metric}",
                    naming.name(workflow, metric.lower()),
                    f"convclass {workflow} workflow: {metric} > 0",
                    namespace="AWS/States",
                    metric_name=metric,
                    dimensions={"StateMachineArn": arn},
                    statistic="Sum",
                    comparison_operator="GreaterThanThreshold",
                    threshold=0,
                    treat_missing_data="notBreaching",
                )
        for purpose, queue in args.dlq_names.items():
            alarm(
                f"{purpose}-dlq-depth",
                naming.name(purpose, "dlq-not-empty"),
                f"convclass {purpose}: messages in the dead-letter queue need attention",
                namespace="AWS/SQS",
                metric_name="ApproximateNumberOfMessagesVisible",
                dimensions={"QueueName": queue},
                statistic="Maximum",
                comparison_operator="GreaterThanThreshold",
                threshold=0,
                treat_missing_data="notBreaching",
            )
        for tenant, classifier in args.dedicated_classifiers:
            endpoint = endpoint_name(tenant, classifier)
            for spec in endpoint_alarms(tenant, classifier, args.serving):
                alarm(
                    f"{tenant}-{classifier}-{spec.kind}",
                    spec.name,
                    f"convclass endpoint {endpoint}: {spec.metric} (rolls back blue/green updates)",
                    namespace="AWS/SageMaker",
                    metric_name=spec.metric,
                    dimensions={"EndpointName": endpoint, "VariantName": VARIANT_NAME},
                    statistic=spec.statistic,
                    extended_statistic=spec.extended_statistic,
                    comparison_operator="GreaterThanOrEqualToThreshold",
                    threshold=spec.threshold,
                    treat_missing_data="notBreaching",
                )

        endpoints = [endpoint_name(t, c) for t, c in args.dedicated_classifiers]
        queues = {**args.queue_names, **{f"{k}-dlq": v for k, v in args.dlq_names.items()}}
        queue_keys = sorted(queues)
        body = pulumi.Output.all(
            args.training_arn, args.inference_arn, *(queues[k] for k in queue_keys), *args.function_names
        ).apply(
            lambda v: dashboard_body(
                args.region,
                v[0],
                v[1],
                dict(zip(queue_keys, v[2 : 2 + len(queue_keys)], strict=True)),
                list(v[2 + len(queue_keys) :]),
                endpoints,
            )
        )
        dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=naming.name("pipeline"),
            dashboard_body=body,
            opts=child_opts(self),
        )
        self.dashboard_name = dashboard.dashboard_name
        self.register_outputs({"dashboard": self.dashboard_name})
