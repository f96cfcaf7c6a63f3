"""The feedback loop's resources: bus rules → queue (+DLQ) → feedback Lambda.

Queue → Lambda rather than Firehose: every event must be checked (schema, tenant id, no text) and stored
under a key derived from its event id, so a redelivery overwrites nothing and adds no row; confirmations
also drive the retraining policy and low-confidence predictions must be published back as "Email Needs
Review" within seconds. Firehose would buffer into objects it names itself (no per-event idempotence, no
validation short of a transform Lambda, which would be this function again) and cannot publish events. The
queue gives redelivery, a DLQ for events that never validate, and batches (partial batch responses).

Captured rows are tagged ``convclass-area=feedback`` and expire through one bucket-wide, tag-filtered
lifecycle rule (:func:`feedback_expiry_rule`, part of the storage component's lifecycle configuration).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from convclass.deployment import (
    DATA_BUCKET_ENV,
    EVENT_BUS_ENV,
    FEEDBACK_BATCH_SIZE,
    FEEDBACK_BATCHING_WINDOW_S,
    FEEDBACK_MAX_RECEIVE_COUNT,
    FEEDBACK_POLICIES_ENV,
    KMS_KEY_ENV,
    TRAINING_QUEUE_URL_ENV,
    TRAINING_STATE_MACHINE_ENV,
    VISIBILITY_PER_FUNCTION_TIMEOUT,
)
from convclass.feedback.events import CAPTURE_RULE_PATTERNS, NEEDS_REVIEW
from convclass.feedback.policy import RetrainingPolicy
from convclass.feedback.store import AREA_TAG, RETENTION_DAYS
from convclass.layout import (
    CHAMPION_FILE,
    DATASETS,
    FEEDBACK,
    FEEDBACK_FUNCTION,
    FEEDBACK_QUEUE,
    any_classifier_key_pattern,
)
from infra.common import AwsEnv, Naming, Statement, child_opts, kms_use_statement, statement
from infra.config import FunctionSettings
from infra.functions import ContainerFunction, FunctionSpec, s3_statements
from infra.triggers import QueueWithDlq, queue_policy_for_rule


def feedback_expiry_rule(days: int = RETENTION_DAYS) -> aws.s3.BucketLifecycleConfigurationRuleArgs:
    """Expire captured feedback of every tenant (S3 prefixes cannot wildcard the tenant; tags can)."""
    return aws.s3.BucketLifecycleConfigurationRuleArgs(
        id=f"{FEEDBACK}-expire",
        status="Enabled",
        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(
            tag=aws.s3.BucketLifecycleConfigurationRuleFilterTagArgs(key=AREA_TAG[0], value=AREA_TAG[1])
        ),
        expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=days),
    )


@dataclass(frozen=True)
class FeedbackAccess:
    """Everything the feedback function may do beyond its own logs."""

    env: AwsEnv
    bucket: str
    key_arn: str
    queue_arn: str
    training_queue_arn: str
    training_state_machine_arn: str
    bus_arn: str

    def statements(self) -> list[Statement]:
        area = any_classifier_key_pattern
        rows = area(f"{FEEDBACK}/*")
        executions = self.training_state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":*"
        return [
            *s3_statements(
                self.env,
                self.bucket,
                read=[rows, area(CHAMPION_FILE), area(f"{DATASETS}/*/manifest.json")],
                write=[rows],
                # No champion.json yet, or no kept deployed-run record, must read as absent (404), not 403.
                missing_is_404=True,
            ),
            statement(
                "TagRows", ["s3:PutObjectTagging"], [f"arn:{self.env.partition}:s3:::{self.bucket}/{rows}"]
            ),
            kms_use_statement(self.key_arn),
            statement(
                "ConsumeFeedback",
                [
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:ChangeMessageVisibility",
                ],
                [self.queue_arn],
            ),
            # The deployed run's request (champion.json names its execution) and whether today's run exists.
            statement("ReadTrainingRuns", ["states:DescribeExecution"], [executions]),
            statement("RequestTraining", ["sqs:SendMessage"], [self.training_queue_arn]),
            statement("PublishReviews", ["events:PutEvents"], [self.bus_arn]),
        ]


@dataclass(frozen=True)
class FeedbackArgs:
    naming: Naming
    env: pulumi.Output[AwsEnv]
    key_arn: pulumi.Output[str]
    bucket: pulumi.Output[str]
    lambda_image_uri: pulumi.Input[str]
    settings: FunctionSettings
    bus_name: pulumi.Output[str]
    bus_arn: pulumi.Output[str]
    delivery_dlq: aws.sqs.Queue
    training_state_machine_arn: pulumi.Output[str]
    training_queue: aws.sqs.Queue
    log_retention_days: int
    #: ``tenant/classifier`` → policy; classifiers not named get RetrainingPolicy's defaults.
    policies: dict[str, RetrainingPolicy]


class Feedback(pulumi.ComponentResource):
    """Confirmations and predictions from the bus → feedback queue → feedback Lambda."""

    def __init__(self, name: str, args: FeedbackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("convclass:infra:Feedback", name, None, opts)
        naming, tags = args.naming, args.naming.tags("feedback")
        self.events = QueueWithDlq(
            f"{name}-events",
            physical=naming.name(FEEDBACK_QUEUE),
            naming=naming,
            key_arn=args.key_arn,
            visibility_timeout=VISIBILITY_PER_FUNCTION_TIMEOUT * args.settings.timeout_seconds,
            max_receive_count=FEEDBACK_MAX_RECEIVE_COUNT,
            component="feedback",
            opts=child_opts(self),
        )
        queue = self.events.queue
        access = pulumi.Output.all(
            args.env,
            args.bucket,
            args.key_arn,
            queue.arn,
            args.training_queue.arn,
            args.training_state_machine_arn,
            args.bus_arn,
        ).apply(lambda v: FeedbackAccess(*v).statements())
        policies = {key: policy.model_dump() for key, policy in sorted(args.policies.items())}
        self.function = ContainerFunction(
            f"{name}-function",
            naming=naming,
            env=args.env,
            spec=FunctionSpec(
                function=FEEDBACK_FUNCTION,
                settings=args.settings,
                environment={
                    DATA_BUCKET_ENV: args.bucket,
                    KMS_KEY_ENV: args.key_arn,
                    TRAINING_STATE_MACHINE_ENV: args.training_state_machine_arn,
                    TRAINING_QUEUE_URL_ENV: args.training_queue.url,
                    EVENT_BUS_ENV: args.bus_name,
                    FEEDBACK_POLICIES_ENV: json.dumps(policies, sort_keys=True),
                },
                statements=access,
                description=f"convclass: capture feedback, publish {NEEDS_REVIEW}, start retraining",
            ),
            image_uri=args.lambda_image_uri,
            key_arn=args.key_arn,
            log_retention_days=args.log_retention_days,
            opts=child_opts(self),
        )
        aws.lambda_.EventSourceMapping(
            f"{name}-source",
            event_source_arn=queue.arn,
            function_name=self.function.arn,
            batch_size=FEEDBACK_BATCH_SIZE,
            maximum_batching_window_in_seconds=FEEDBACK_BATCHING_WINDOW_S,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config=aws.lambda_.EventSourceMappingScalingConfigArgs(maximum_concurrency=2),
            tags=tags,
            opts=child_opts(self),
        )
        rules = []
        for rule_name, pattern in CAPTURE_RULE_PATTERNS.items():
            rule = aws.cloudwatch.EventRule(
                f"{name}-{rule_name}",
                name=naming.name(rule_name),
                event_bus_name=args.bus_name,
                description=f"convclass: {pattern['detail-type'][0]} to the feedback queue",
                event_pattern=json.dumps(pattern),
                tags=tags,
                opts=child_opts(self),
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{rule_name}-target",
                rule=rule.name,
                event_bus_name=args.bus_name,
                arn=queue.arn,
                dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=args.delivery_dlq.arn),
                retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                    maximum_event_age_in_seconds=3600, maximum_retry_attempts=20
                ),
                opts=child_opts(self),
            )
            rules.append(rule)
        aws.sqs.QueuePolicy(
            f"{name}-queue-policy",
            queue_url=queue.url,
            policy=pulumi.Output.all(queue.arn, *(rule.arn for rule in rules)).apply(
                lambda v: queue_policy_for_rule(v[0], *v[1:], sid="FeedbackRulesSend")
            ),
            opts=child_opts(self),
        )
        self.queue_url = queue.url
        self.dlq_url = self.events.dlq.url
        self.register_outputs({"queue_url": self.queue_url, "dlq_url": self.dlq_url})
