"""What starts workflows: training requests (queue, bus rule, schedules) and inbound emails.

Training runs are started by a small starter Lambda, not by an EventBridge Pipe: a Pipe targeting a Standard
workflow can only fire-and-forget and cannot set the execution name, and the name is what makes a start
idempotent (the same tenant + classifier + business key always maps to one execution, so a redelivered
message, a retried schedule or a double click cannot start a second paid training run). Every training trigger
therefore lands in one queue: the "train classifier" bus rule and the schedules send the request there, and
the starter calls StartExecution with ``convclass.events.execution_name``.

Inbound emails need no name: the inference workflow is Express (at-least-once, idempotent by design of its
events), so a Pipe takes queue batches straight to it. The Pipe waits for the result (StartSyncExecution),
reads the workflow's partial batch response (``batchItemFailures``) and deletes every other message: only the
emails the workflow returned come back, and end in the DLQ after ``max_receive_count`` receives. The queue's
``MaximumMessageSize`` is sized so that a full batch fits one Step Functions input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from convclass.deployment import (
    DLQ_RETENTION_S,
    INBOUND_VISIBILITY_TIMEOUT_S,
    QUEUE_KMS_DATA_KEY_REUSE_S,
    QUEUE_RETENTION_S,
    STARTER_BATCH_SIZE,
    STARTER_BATCHING_WINDOW_S,
    STARTER_MAX_CONCURRENCY,
    TRAIN_REQUEST_INPUT_PATH,
    TRAIN_REQUEST_PATTERN,
    TRAINING_MAX_RECEIVE_COUNT,
    TRAINING_STATE_MACHINE_ENV,
    VISIBILITY_PER_FUNCTION_TIMEOUT,
    dead_letter_queue,
)
from convclass.events import RunOptions, TrainingRunRequest, inbound_max_message_bytes
from convclass.layout import INBOUND_QUEUE, STARTER_FUNCTION, TRAIN_CLASSIFIER_RULE, TRAINING_QUEUE
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
from infra.config import ClassifierConfig, FunctionSettings, InferenceConfig, ServingConfig, TrainingConfig
from infra.functions import ContainerFunction, FunctionSpec

# Scheduler replaces this with the schedule's fire time, so each firing has its own, stable business key.
SCHEDULED_BUSINESS_KEY = "scheduled-<aws.scheduler.scheduled-time>"


def scheduled_request(
    tenant: str, classifier: ClassifierConfig, training: TrainingConfig, serving: ServingConfig
) -> TrainingRunRequest:
    """The request a classifier's schedule sends, validated now rather than at 3 a.m."""
    chosen = {
        "export_approval": classifier.export_approval,
        "deploy_approval": classifier.deploy_approval,
        "min_accuracy": classifier.min_accuracy,
        "tolerance": classifier.tolerance,
        "hosting": classifier.hosting,
    }
    options = RunOptions(
        training_instance_type=training.instance_type,
        managed_spot=training.managed_spot,
        max_runtime_seconds=training.max_runtime_seconds,
        max_wait_seconds=training.max_wait_seconds,
        endpoint_instance_type=serving.instance_type,
        endpoint_instance_count=serving.instance_count,
        **{k: v for k, v in chosen.items() if v is not None},
    )
    return TrainingRunRequest(
        tenant=tenant,
        classifier=classifier.id,
        label_field=classifier.label_field,
        data_source=classifier.data_source,
        options=options,
        business_key=SCHEDULED_BUSINESS_KEY,
    )


def starter_statements(state_machine_arn: str, queue_arn: str, key_arn: str) -> list[Statement]:
    return [
        statement("StartTrainingRuns", ["states:StartExecution"], [state_machine_arn]),
        statement(
            "ConsumeRequests",
            [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:ChangeMessageVisibility",
            ],
            [queue_arn],
        ),
        kms_use_statement(key_arn),
    ]


def scheduler_statements(queue_arn: str, dlq_arn: str, key_arn: str) -> list[Statement]:
    return [
        statement("SendRequests", ["sqs:SendMessage"], [queue_arn, dlq_arn]),
        statement("EncryptMessages", ["kms:GenerateDataKey", "kms:Decrypt"], [key_arn]),
    ]


def pipe_statements(queue_arn: str, state_machine_arn: str, key_arn: str) -> list[Statement]:
    return [
        statement(
            "ConsumeEmails",
            ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
            [queue_arn],
        ),
        # Decrypt the queue's messages; encrypt the execution input of the KMS-encrypted state machine.
        statement("UseKey", ["kms:Decrypt", "kms:GenerateDataKey"], [key_arn]),
        statement("ClassifyBatch", ["states:StartSyncExecution"], [state_machine_arn]),
    ]


def queue_policy_for_rule(
    queue_arn: str, rule_arn: str, *more_rule_arns: str, sid: str = "TrainRuleSends"
) -> str:
    """Only the named bus rules may send to the queue."""
    sources: str | list[str] = [rule_arn, *more_rule_arns] if more_rule_arns else rule_arn
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": sid,
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": sources}},
                }
            ],
        },
        sort_keys=True,
    )


class QueueWithDlq(pulumi.ComponentResource):
    """A KMS-encrypted queue whose poison messages move to a KMS-encrypted DLQ (which only it may use)."""

    def __init__(
        self,
        name: str,
        *,
        physical: str,
        naming: Naming,
        key_arn: pulumi.Input[str],
        visibility_timeout: int,
        max_receive_count: int,
        component: str,
        max_message_size: int | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("convclass:infra:QueueWithDlq", name, None, opts)
        tags = naming.tags(component)
        self.dlq = aws.sqs.Queue(
            f"{name}-dlq",
            name=dead_letter_queue(physical),
            kms_master_key_id=key_arn,
            kms_data_key_reuse_period_seconds=QUEUE_KMS_DATA_KEY_REUSE_S,
            message_retention_seconds=DLQ_RETENTION_S,
            tags=tags,
            opts=child_opts(self),
        )
        self.queue = aws.sqs.Queue(
            f"{name}-queue",
            name=physical,
            kms_master_key_id=key_arn,
            kms_data_key_reuse_period_seconds=QUEUE_KMS_DATA_KEY_REUSE_S,
            visibility_timeout_seconds=visibility_timeout,
            message_retention_seconds=QUEUE_RETENTION_S,
            max_message_size=max_message_size,
            redrive_policy=self.dlq.arn.apply(
                lambda arn: json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": max_receive_count})
            ),
            tags=tags,
            opts=child_opts(self),
        )
        aws.sqs.RedriveAllowPolicy(
            f"{name}-dlq-allow",
            queue_url=self.dlq.url,
            redrive_allow_policy=self.queue.arn.apply(
                lambda arn: json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [arn]})
            ),
            opts=child_opts(self),
        )
        self.register_outputs({"url": self.queue.url, "dlq_url": self.dlq.url})


@dataclass(frozen=True)
class TriggersArgs:
    naming: Naming
    env: pulumi.Output[AwsEnv]
    key_arn: pulumi.Output[str]
    lambda_image_uri: pulumi.Input[str]
    starter: FunctionSettings
    training_state_machine_arn: pulumi.Output[str]
    inference_state_machine_arn: pulumi.Output[str]
    bus_name: pulumi.Output[str]
    delivery_dlq: aws.sqs.Queue
    classifiers: list[tuple[str, ClassifierConfig]]
    training: TrainingConfig
    serving: ServingConfig
    inference: InferenceConfig
    log_retention_days: int


class Triggers(pulumi.ComponentResource):
    """Training-request queue + starter, the "train classifier" rule, retraining schedules, and the inbound
    email queue → Pipe → inference workflow."""

    def __init__(self, name: str, args: TriggersArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("convclass:infra:Triggers", name, None, opts)
        naming, env, key_arn = args.naming, args.env, args.key_arn
        tags = naming.tags("triggers")

        # Training requests → starter Lambda → StartExecution(name=execution_name(request)).
        self.training = QueueWithDlq(
            f"{name}-training",
            physical=naming.name(TRAINING_QUEUE),
            naming=naming,
            key_arn=key_arn,
            visibility_timeout=VISIBILITY_PER_FUNCTION_TIMEOUT * args.starter.timeout_seconds,
            max_receive_count=TRAINING_MAX_RECEIVE_COUNT,
            component="triggers",
            opts=child_opts(self),
        )
        training_queue = self.training.queue
        starter_access = pulumi.Output.all(
            args.training_state_machine_arn, training_queue.arn, key_arn
        ).apply(lambda v: starter_statements(v[0], v[1], v[2]))
        self.starter = ContainerFunction(
            f"{name}-starter",
            naming=naming,
            env=env,
            spec=FunctionSpec(
                function=STARTER_FUNCTION,
                settings=args.starter,
                environment={TRAINING_STATE_MACHINE_ENV: args.training_state_machine_arn},
                statements=starter_access,
                description="convclass: start training runs under idempotent execution names",
            ),
            image_uri=args.lambda_image_uri,
            key_arn=key_arn,
            log_retention_days=args.log_retention_days,
            opts=child_opts(self),
        )
        aws.lambda_.EventSourceMapping(
            f"{name}-starter-source",
            event_source_arn=training_queue.arn,
            function_name=self.starter.arn,
            batch_size=STARTER_BATCH_SIZE,
            maximum_batching_window_in_seconds=STARTER_BATCHING_WINDOW_S,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config=aws.lambda_.EventSourceMappingScalingConfigArgs(
                maximum_concurrency=STARTER_MAX_CONCURRENCY
            ),
            tags=tags,
            opts=child_opts(self),
        )

        # "Train Classifier Requested" on the bus → the same queue (detail only: a TrainingRunRequest).
        rule = aws.cloudwatch.EventRule(
            f"{name}-train-rule",
            name=naming.name(TRAIN_CLASSIFIER_RULE),
            event_bus_name=args.bus_name,
            description="convclass: training requests from the bus",
            event_pattern=json.dumps(TRAIN_REQUEST_PATTERN),
            tags=tags,
            opts=child_opts(self),
        )
        aws.sqs.QueuePolicy(
            f"{name}-training-queue-policy",
            queue_url=training_queue.url,
            policy=pulumi.Output.all(training_queue.arn, rule.arn).apply(
                lambda v: queue_policy_for_rule(v[0], v[1])
            ),
            opts=child_opts(self),
        )
        aws.cloudwatch.EventTarget(
            f"{name}-train-target",
            rule=rule.name,
            event_bus_name=args.bus_name,
            arn=training_queue.arn,
            input_path=TRAIN_REQUEST_INPUT_PATH,
            dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=args.delivery_dlq.arn),
            retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                maximum_event_age_in_seconds=3600, maximum_retry_attempts=20
            ),
            opts=child_opts(self),
        )

        # Periodic retraining per configured classifier.
        scheduled = [(tenant, c) for tenant, c in args.classifiers if c.schedule is not None]
        if scheduled:
            scheduler_role = aws.iam.Role(
                f"{name}-scheduler-role",
                name=naming.name("scheduler"),
                assume_role_policy=env.apply(
                    lambda e: assume_role_policy("scheduler.amazonaws.com", source_account=e.account_id)
                ),
                tags=tags,
                opts=child_opts(self),
            )
            aws.iam.RolePolicy(
                f"{name}-scheduler-policy",
                role=scheduler_role.id,
                policy=pulumi.Output.all(training_queue.arn, args.delivery_dlq.arn, key_arn).apply(
                    lambda v: policy_document(scheduler_statements(v[0], v[1], v[2]))
                ),
                opts=child_opts(self),
            )
            group = aws.scheduler.ScheduleGroup(
                f"{name}-schedules", name=naming.prefix, tags=tags, opts=child_opts(self)
            )
            for tenant, classifier in scheduled:
                request = scheduled_request(tenant, classifier, args.training, args.serving)
                aws.scheduler.Schedule(
                    f"{name}-retrain-{tenant}-{classifier.id}",
                    name=f"retrain-{tenant}-{classifier.id}",
                    group_name=group.name,
                    description=f"convclass: periodic retraining of {tenant}/{classifier.id}",
                    schedule_expression=classifier.schedule,
                    schedule_expression_timezone=classifier.schedule_timezone,
                    flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(
                        mode="FLEXIBLE", maximum_window_in_minutes=15
                    ),
                    kms_key_arn=key_arn,
                    target=aws.scheduler.ScheduleTargetArgs(
                        arn=training_queue.arn,
                        role_arn=scheduler_role.arn,
                        input=request.model_dump_json(),
                        dead_letter_config=aws.scheduler.ScheduleTargetDeadLetterConfigArgs(
                            arn=args.delivery_dlq.arn
                        ),
                        retry_policy=aws.scheduler.ScheduleTargetRetryPolicyArgs(
                            maximum_event_age_in_seconds=3600, maximum_retry_attempts=10
                        ),
                    ),
                    opts=child_opts(self),
                )

        # Inbound emails → Pipe (synchronous) → inference workflow (Express).
        self.inbound = QueueWithDlq(
            f"{name}-inbound",
            physical=naming.name(INBOUND_QUEUE),
            naming=naming,
            key_arn=key_arn,
            visibility_timeout=INBOUND_VISIBILITY_TIMEOUT_S,
            max_receive_count=args.inference.max_receive_count,
            component="triggers",
            # A whole Pipe batch of the largest messages must fit one Step Functions input: SendMessage
            # refuses a larger email with an error that names the limit.
            max_message_size=inbound_max_message_bytes(args.inference.batch_size),
            opts=child_opts(self),
        )
        pipe_role = aws.iam.Role(
            f"{name}-inbound-pipe-role",
            name=naming.name("inbound-pipe"),
            assume_role_policy=env.apply(
                lambda e: assume_role_policy("pipes.amazonaws.com", source_account=e.account_id)
            ),
            tags=tags,
            opts=child_opts(self),
        )
        pipe_policy = aws.iam.RolePolicy(
            f"{name}-inbound-pipe-policy",
            role=pipe_role.id,
            policy=pulumi.Output.all(self.inbound.queue.arn, args.inference_state_machine_arn, key_arn).apply(
                lambda v: policy_document(pipe_statements(v[0], v[1], v[2]))
            ),
            opts=child_opts(self),
        )
        pipe_logs = aws.cloudwatch.LogGroup(
            f"{name}-inbound-pipe-logs",
            name=f"/aws/vendedlogs/pipes/{naming.name(INBOUND_QUEUE)}",
            retention_in_days=args.log_retention_days,
            kms_key_id=key_arn,
            tags=tags,
            opts=child_opts(self),
        )
        aws.pipes.Pipe(
            f"{name}-inbound-pipe",
            name=naming.name(INBOUND_QUEUE),
            description="convclass: inbound emails to the inference workflow",
            role_arn=pipe_role.arn,
            source=self.inbound.queue.arn,
            source_parameters=aws.pipes.PipeSourceParametersArgs(
                sqs_queue_parameters=aws.pipes.PipeSourceParametersSqsQueueParametersArgs(
                    batch_size=args.inference.batch_size,
                    maximum_batching_window_in_seconds=args.inference.batching_window_seconds,
                )
            ),
            target=args.inference_state_machine_arn,
            target_parameters=aws.pipes.PipeTargetParametersArgs(
                step_function_state_machine_parameters=aws.pipes.PipeTargetParametersStepFunctionStateMachineParametersArgs(
                    invocation_type="REQUEST_RESPONSE"
                )
            ),
            # Errors only, and never the payload: inbound emails are customer text.
            log_configuration=aws.pipes.PipeLogConfigurationArgs(
                level="ERROR",
                cloudwatch_logs_log_destination=aws.pipes.PipeLogConfigurationCloudwatchLogsLogDestinationArgs(
                    log_group_arn=pipe_logs.arn
                ),
            ),
            kms_key_identifier=key_arn,
            tags=tags,
            opts=child_opts(self, depends_on=[pipe_policy]),
        )

        self.training_queue_url = training_queue.url
        self.training_dlq_url = self.training.dlq.url
        self.inbound_queue_url = self.inbound.queue.url
        self.inbound_dlq_url = self.inbound.dlq.url
        self.register_outputs(
            {"training_queue_url": self.training_queue_url, "inbound_queue_url": self.inbound_queue_url}
        )
