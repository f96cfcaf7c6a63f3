"""The stack's event bus, and the notification topic by which approvals, outcomes and alarms reach people."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from convclass.events import APPROVAL_REQUESTED, PIPELINE_SOURCE, RUN_FAILED, RUN_SUCCEEDED
from infra.common import AwsEnv, Naming, Statement, child_opts

# Rules from the bus to the topic: what an operator must see (approvals to answer, runs that ended).
NOTIFIED_DETAIL_TYPES = {
    "approvals": [APPROVAL_REQUESTED],
    "outcomes": [RUN_SUCCEEDED, RUN_FAILED],
}


def topic_policy(env: AwsEnv, topic_arn: str, rule_arns: list[str]) -> str:
    """Only this stack's bus rules and this account's alarms may publish."""
    statements: list[Statement] = [
        {
            "Sid": "BusRulesPublish",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": topic_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": sorted(rule_arns)}},
        },
        {
            "Sid": "AlarmsPublish",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": topic_arn,
            "Condition": {
                "ArnLike": {"aws:SourceArn": env.arn("cloudwatch", "alarm:*")},
                "StringEquals": {"aws:SourceAccount": env.account_id},
            },
        },
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


def delivery_dlq_policy(env: AwsEnv, queue_arn: str, bus_name: str) -> str:
    """EventBridge parks events its rules on this bus could not deliver (Scheduler uses its role instead)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "BusRulesDeadLetter",
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {
                        "ArnLike": {"aws:SourceArn": env.arn("events", f"rule/{bus_name}/*")},
                        "StringEquals": {"aws:SourceAccount": env.account_id},
                    },
                }
            ],
        },
        sort_keys=True,
    )


@dataclass(frozen=True)
class NotificationsArgs:
    naming: Naming
    env: pulumi.Output[AwsEnv]
    key_arn: pulumi.Output[str]
    emails: list[str]


class Notifications(pulumi.ComponentResource):
    """Custom EventBridge bus (KMS-encrypted) + SNS topic (KMS-encrypted) fed by bus rules and by alarms."""

    bus_name: pulumi.Output[str]
    bus_arn: pulumi.Output[str]
    topic_arn: pulumi.Output[str]
    delivery_dlq: aws.sqs.Queue

    def __init__(
        self, name: str, args: NotificationsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("convclass:infra:Notifications", name, None, opts)
        tags = args.naming.tags("notifications")
        self.bus = aws.cloudwatch.EventBus(
            f"{name}-bus",
            name=args.naming.prefix,
            kms_key_identifier=args.key_arn,
            tags=tags,
            opts=child_opts(self),
        )
        self.bus_name = self.bus.name
        self.bus_arn = self.bus.arn
        self.topic = aws.sns.Topic(
            f"{name}-topic",
            name=args.naming.name("notifications"),
            kms_master_key_id=args.key_arn,
            tags=tags,
            opts=child_opts(self),
        )
        self.topic_arn = self.topic.arn
        # Events that rules and schedules could not deliver after their retries: alarmed on like every DLQ.
        self.delivery_dlq = aws.sqs.Queue(
            f"{name}-delivery-dlq",
            name=args.naming.name("undelivered-events"),
            kms_master_key_id=args.key_arn,
            kms_data_key_reuse_period_seconds=300,
            message_retention_seconds=14 * 24 * 3600,
            tags=tags,
            opts=child_opts(self),
        )
        aws.sqs.QueuePolicy(
            f"{name}-delivery-dlq-policy",
            queue_url=self.delivery_dlq.url,
            policy=pulumi.Output.all(args.env, self.delivery_dlq.arn, self.bus.name).apply(
                lambda v: delivery_dlq_policy(v[0], v[1], v[2])
            ),
            opts=child_opts(self),
        )
        rule_arns = []
        for purpose, detail_types in NOTIFIED_DETAIL_TYPES.items():
            rule = aws.cloudwatch.EventRule(
                f"{name}-{purpose}",
                name=args.naming.name(purpose),
                event_bus_name=self.bus.name,
                description=f"convclass {purpose} to the notification topic",
                event_pattern=json.dumps({"source": [PIPELINE_SOURCE], "detail-type": detail_types}),
                tags=tags,
                opts=child_opts(self),
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{purpose}-target",
                rule=rule.name,
                event_bus_name=self.bus.name,
                arn=self.topic.arn,
                # The approval detail carries the task token an approver needs; never customer text.
                input_path="$.detail",
                dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=self.delivery_dlq.arn),
                retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                    maximum_event_age_in_seconds=3600, maximum_retry_attempts=20
                ),
                opts=child_opts(self),
            )
            rule_arns.append(rule.arn)
        aws.sns.TopicPolicy(
            f"{name}-topic-policy",
            arn=self.topic.arn,
            policy=pulumi.Output.all(args.env, self.topic.arn, *rule_arns).apply(
                lambda v: topic_policy(v[0], v[1], list(v[2:]))
            ),
            opts=child_opts(self),
        )
        for index, email in enumerate(args.emails):
            aws.sns.TopicSubscription(
                f"{name}-email-{index}",
                topic=self.topic.arn,
                protocol="email",
                endpoint=email,
                opts=child_opts(self),
            )
        self.register_outputs({"bus_name": self.bus_name, "topic_arn": self.topic_arn})
