"""The stack's event bus, and the notification topic by which approvals, outcomes and alarms reach people."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from convclass.events import (
    APPROVAL_REQUESTED,
    EMAIL_CLASSIFICATION_FAILED,
    INFERENCE_SOURCE,
    PIPELINE_SOURCE,
    RUN_FAILED,
    RUN_SUCCEEDED,
)
from infra.common import AwsEnv, Naming, Statement, child_opts

# Rules from the bus to the topic: what an operator must see (approvals to answer, runs that ended).
NOTIFIED_DETAIL_TYPES = {
    "approvals": [APPROVAL_REQUESTED],
    "outcomes": [RUN_SUCCEEDED, RUN_FAILED],
}

#: Emails the inference workflow gave a final failure (bad input, no such endpoint): kept in an archive
#: (replay them once the cause is fixed) and alarmed on through the matching rule's MatchedEvents.
FAILED_EMAILS_PATTERN = {"source": [INFERENCE_SOURCE], "detail-type": [EMAIL_CLASSIFICATION_FAILED]}
FAILED_EMAILS_ARCHIVE_DAYS = 30
ALARM_PERIOD_SECONDS = 300


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
        self._failed_emails(name, args, tags)
        self.register_outputs({"bus_name": self.bus_name, "topic_arn": self.topic_arn})

    def _failed_emails(self, name: str, args: NotificationsArgs, tags: dict[str, str]) -> None:
        """Archive every ``Email Classification Failed`` event and alarm as soon as one is published."""
        pattern = json.dumps(FAILED_EMAILS_PATTERN)
        self.failed_emails_archive = aws.cloudwatch.EventArchive(
            f"{name}-failed-emails-archive",
            name=args.naming.name("failed-emails"),
            description="convclass: inbound emails that could not be classified (replayable)",
            event_source_arn=self.bus.arn,
            event_pattern=pattern,
            retention_days=FAILED_EMAILS_ARCHIVE_DAYS,
            kms_key_identifier=args.key_arn,
            opts=child_opts(self),
        )
        # A rule without targets: it exists so CloudWatch counts the matching events for the alarm.
        rule = aws.cloudwatch.EventRule(
            f"{name}-failed-emails",
            name=args.naming.name("failed-emails"),
            event_bus_name=self.bus.name,
            description="convclass: counts inbound emails that could not be classified",
            event_pattern=pattern,
            tags=tags,
            opts=child_opts(self),
        )
        actions = [self.topic.arn]
        aws.cloudwatch.MetricAlarm(
            f"{name}-failed-emails-alarm",
            name=args.naming.name("inference", "emails-not-classified"),
            alarm_description="convclass inference: inbound emails ended as Email Classification Failed",
            namespace="AWS/Events",
            metric_name="MatchedEvents",
            dimensions={"EventBusName": self.bus.name, "RuleName": rule.name},
            statistic="Sum",
            period=ALARM_PERIOD_SECONDS,
            evaluation_periods=1,
            comparison_operator="GreaterThanThreshold",
            threshold=0,
            treat_missing_data="notBreaching",
            alarm_actions=actions,
            ok_actions=actions,
            tags=tags,
            opts=child_opts(self),
        )
