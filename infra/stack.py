"""Wire the components of one convclass stack together and export what operators and the CLI need."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.common import AwsEnv, Naming
from infra.config import StackArgs
from infra.console import Console, ConsoleArgs
from infra.feedback import Feedback, FeedbackArgs
from infra.functions import Functions, FunctionsArgs
from infra.images import Images, ImagesArgs
from infra.monitoring import Monitoring, MonitoringArgs
from infra.notifications import Notifications, NotificationsArgs
from infra.orchestration import Orchestration, OrchestrationArgs
from infra.sagemaker import SageMaker, SageMakerArgs
from infra.shared_endpoint import SharedEndpoint, SharedEndpointArgs
from infra.storage import Storage, StorageArgs
from infra.triggers import Triggers, TriggersArgs


@dataclass(frozen=True)
class ConvclassStack:
    """The components, for tests that want to look at one of them."""

    storage: Storage
    images: Images
    functions: Functions
    sagemaker: SageMaker
    notifications: Notifications
    orchestration: Orchestration
    triggers: Triggers
    monitoring: Monitoring
    shared_endpoint: SharedEndpoint | None
    feedback: Feedback
    console: Console | None = None


def aws_env(region: str) -> pulumi.Output[AwsEnv]:
    identity = aws.get_caller_identity_output()
    partition = aws.get_partition_output()
    return pulumi.Output.all(identity.account_id, partition.partition).apply(
        lambda v: AwsEnv(account_id=v[0], region=region, partition=v[1])
    )


def build(args: StackArgs) -> ConvclassStack:
    """Declare every resource of the stack from validated settings, and export the stack outputs."""
    naming = Naming(project=args.project, stack=args.stack)
    env = aws_env(args.region)
    classifier_ids = [(tenant, c.id) for tenant, c in args.classifiers()]
    dedicated = [(tenant, c.id) for tenant, c in args.classifiers() if c.hosting == "dedicated"]

    storage = Storage(
        "storage", StorageArgs(naming=naming, env=env, config=args.storage, classifiers=classifier_ids)
    )
    images = Images("images", ImagesArgs(naming=naming, env=env, config=args.images, key_arn=storage.key_arn))
    functions = Functions(
        "functions",
        FunctionsArgs(
            naming=naming,
            env=env,
            config=args.functions,
            image_uri=images.image_uris["lambda"],
            bucket=storage.bucket_name,
            key_arn=storage.key_arn,
            log_retention_days=args.log_retention_days,
            files_roots=tuple(args.export_files_roots),
        ),
    )
    sagemaker = SageMaker(
        "sagemaker",
        SageMakerArgs(
            naming=naming,
            env=env,
            bucket=storage.bucket_name,
            key_arn=storage.key_arn,
            repository_arns=[images.repository_arns["training"], images.repository_arns["serving"]],
            log_retention_days=args.log_retention_days,
            dedicated_classifiers=dedicated,
            create_log_groups=args.sagemaker_log_groups,
        ),
    )
    notifications = Notifications(
        "notifications",
        NotificationsArgs(naming=naming, env=env, key_arn=storage.key_arn, emails=args.notification_emails),
    )
    shared_endpoint = None
    if args.shared_endpoint.enabled:
        shared_endpoint = SharedEndpoint(
            "shared-endpoint",
            SharedEndpointArgs(
                naming=naming,
                env=env,
                config=args.shared_endpoint,
                bucket=storage.bucket_name,
                key_arn=storage.key_arn,
                serving_image_uri=images.image_uris["serving"],
                serving_repository_arn=images.repository_arns["serving"],
                topic_arn=notifications.topic_arn,
                log_retention_days=args.log_retention_days,
                create_log_group=args.sagemaker_log_groups,
            ),
        )
    orchestration = Orchestration(
        "orchestration",
        OrchestrationArgs(
            naming=naming,
            env=env,
            key_arn=storage.key_arn,
            bucket=storage.bucket_name,
            bus_name=notifications.bus_name,
            sagemaker_role_arn=sagemaker.role_arn,
            function_arns={name: fn.arn for name, fn in functions.functions.items()},
            training_image_uri=images.image_uris["training"],
            serving_image_uri=images.image_uris["serving"],
            pipeline=args.pipeline_settings(),
            log_retention_days=args.log_retention_days,
            shared_endpoint_name=shared_endpoint.endpoint_name if shared_endpoint else None,
        ),
    )
    triggers = Triggers(
        "triggers",
        TriggersArgs(
            naming=naming,
            env=env,
            key_arn=storage.key_arn,
            lambda_image_uri=images.image_uris["lambda"],
            starter=args.functions.starter,
            training_state_machine_arn=orchestration.training_arn,
            inference_state_machine_arn=orchestration.inference_arn,
            bus_name=notifications.bus_name,
            delivery_dlq=notifications.delivery_dlq,
            classifiers=args.classifiers(),
            training=args.training,
            serving=args.serving,
            inference=args.inference,
            log_retention_days=args.log_retention_days,
        ),
    )
    feedback = Feedback(
        "feedback",
        FeedbackArgs(
            naming=naming,
            env=env,
            key_arn=storage.key_arn,
            bucket=storage.bucket_name,
            lambda_image_uri=images.image_uris["lambda"],
            settings=args.functions.feedback,
            bus_name=notifications.bus_name,
            bus_arn=notifications.bus_arn,
            delivery_dlq=notifications.delivery_dlq,
            training_state_machine_arn=orchestration.training_arn,
            training_queue=triggers.training.queue,
            log_retention_days=args.log_retention_days,
            policies={f"{t}/{c.id}": c.feedback for t, c in args.classifiers() if c.feedback is not None},
        ),
    )
    monitoring = Monitoring(
        "monitoring",
        MonitoringArgs(
            naming=naming,
            region=args.region,
            topic_arn=notifications.topic_arn,
            training_arn=orchestration.training_arn,
            inference_arn=orchestration.inference_arn,
            dlq_names={
                "training-requests": triggers.training.dlq.name,
                "inbound-emails": triggers.inbound.dlq.name,
                "undelivered-events": notifications.delivery_dlq.name,
                "feedback-events": feedback.events.dlq.name,
            },
            queue_names={
                "training-requests": triggers.training.queue.name,
                "inbound-emails": triggers.inbound.queue.name,
                "feedback-events": feedback.events.queue.name,
            },
            function_names=[
                *(fn.name for fn in functions.functions.values()),
                triggers.starter.name,
                feedback.function.name,
            ],
            dedicated_classifiers=dedicated,
            serving=args.serving,
        ),
    )

    if shared_endpoint is not None:
        pulumi.export("shared_endpoint_name", shared_endpoint.endpoint_name)
        pulumi.export("shared_models_url", shared_endpoint.model_data_url)

    # Names match convclass.stack.StackOutputs, which the CLI reads from `pulumi stack output --json`.
    pulumi.export("region", args.region)
    pulumi.export("data_bucket", storage.bucket_name)
    pulumi.export("kms_key_arn", storage.key_arn)
    pulumi.export("event_bus_name", notifications.bus_name)
    pulumi.export("notifications_topic_arn", notifications.topic_arn)
    pulumi.export("training_state_machine_arn", orchestration.training_arn)
    pulumi.export("inference_state_machine_arn", orchestration.inference_arn)
    pulumi.export("training_queue_url", triggers.training_queue_url)
    pulumi.export("training_dlq_url", triggers.training_dlq_url)
    pulumi.export("inbound_queue_url", triggers.inbound_queue_url)
    pulumi.export("inbound_dlq_url", triggers.inbound_dlq_url)
    pulumi.export("sagemaker_role_arn", sagemaker.role_arn)
    pulumi.export("repository_urls", images.repository_urls)
    pulumi.export("image_uris", images.image_uris)
    pulumi.export("dashboard_name", monitoring.dashboard_name)
    pulumi.export("feedback_queue_url", feedback.queue_url)
    console = None
    if args.console.enabled:
        console = Console(
            "console",
            ConsoleArgs(
                naming=naming,
                env=env,
                config=args.console,
                image_uri=images.image_uris["lambda"],
                bucket=storage.bucket_name,
                key_arn=storage.key_arn,
                training_state_machine_arn=orchestration.training_arn,
                bus_name=notifications.bus_name,
                region=args.region,
                log_retention_days=args.log_retention_days,
            ),
        )
        pulumi.export("console_url", console.url)
    return ConvclassStack(
        storage,
        images,
        functions,
        sagemaker,
        notifications,
        orchestration,
        triggers,
        monitoring,
        shared_endpoint,
        feedback,
        console,
    )
