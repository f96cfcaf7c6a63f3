"""Create on the embedded AWS what ``pulumi up`` creates on a real account, and describe it as stack outputs.

The resources mirror the Pulumi program and read the same descriptions: :mod:`convclass.deployment` (sizes,
environments, role names, workflow types, queue and event-source settings, the training-request rule, the
shared endpoint's defaults) and :class:`statemachine.PipelineSettings` (the training workflow's knobs, as
:meth:`~statemachine.PipelineSettings.for_local_run` changes them), so the local run cannot drift from what
``pulumi up`` creates. They are: a KMS key, the data bucket (SSE-KMS, public access blocked, versioning, and
the deployed bucket policy as far as :mod:`convclass_local.bucket_policy` explains), the training-trigger and
inbound-email queues with DLQs, the bus, the container-image Lambda functions (one image, one ``CMD`` per
handler, a role each), the SageMaker execution role, the shared endpoint and the two state machines (a role
each) rendered by :mod:`statemachine` from these resources' real ARNs, and the feedback loop's queue
and bus rules. The outputs are written in the shape of
``pulumi stack output --json`` so the ``convclass`` CLI works against a local run unchanged.

The queues' event source mappings (training queue → starter, feedback queue → feedback function) are not
moto's: the runtime polls them (:class:`convclass_local.pipes.QueueFunctionSource`), see
:data:`EVENT_SOURCES`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from convclass.deployment import (
    DATA_BUCKET_ENV,
    DLQ_RETENTION_S,
    EVENT_BUS_ENV,
    FEEDBACK_BATCH_SIZE,
    FEEDBACK_BATCHING_WINDOW_S,
    FEEDBACK_MAX_RECEIVE_COUNT,
    FEEDBACK_POLICIES_ENV,
    FEEDBACK_VISIBILITY_TIMEOUT_S,
    FUNCTION_SPECS,
    INBOUND_BATCH_SIZE,
    INBOUND_MAX_RECEIVE_COUNT,
    INBOUND_VISIBILITY_TIMEOUT_S,
    KMS_KEY_ENV,
    LAMBDA_TRACING_MODE,
    QUEUE_KMS_DATA_KEY_REUSE_S,
    QUEUE_RETENTION_S,
    SAGEMAKER_ROLE,
    SHARED_ENDPOINT,
    SHARED_ENDPOINT_INSTANCE_TYPE,
    SHARED_ENDPOINT_MIN_INSTANCES,
    SHARED_ENDPOINT_VARIANT,
    SHARED_MODEL_CACHE_SETTING,
    STARTER_BATCH_SIZE,
    STARTER_BATCHING_WINDOW_S,
    TRAIN_REQUEST_INPUT_PATH,
    TRAIN_REQUEST_PATTERN,
    TRAINING_MAX_RECEIVE_COUNT,
    TRAINING_QUEUE_URL_ENV,
    TRAINING_STATE_MACHINE_ENV,
    TRAINING_VISIBILITY_TIMEOUT_S,
    WORKFLOW_TYPES,
    FunctionSpec,
    dead_letter_queue,
    function_environment,
    function_role,
    state_machine_role,
)
from convclass.events import inbound_max_message_bytes
from convclass.feedback.events import CAPTURE_RULE_PATTERNS
from convclass.feedback.policy import RetrainingPolicy
from convclass.hosting.keys import SHARED_MODELS_PREFIX
from convclass.layout import (
    FEEDBACK_FUNCTION,
    FEEDBACK_QUEUE,
    INBOUND_QUEUE,
    INFERENCE_WORKFLOW,
    PIPELINE_FUNCTIONS,
    PROJECT,
    STARTER_FUNCTION,
    TRAIN_CLASSIFIER_RULE,
    TRAINING_QUEUE,
    TRAINING_WORKFLOW,
    s3_uri,
    stack_resource_name,
)
from convclass.stack import StackOutputs
from convclass_local import bucket_policy
from convclass_local.embedded import LOCAL_ACCOUNT_ID, EmbeddedAws
from statemachine import (
    InferenceResources,
    PipelineSettings,
    TrainingPipelineResources,
    render_inference_workflow,
    render_training_pipeline,
)

STACK = "local"
_TAGS = {"project": PROJECT, "stack": STACK}
_IMAGE_REPO = f"{LOCAL_ACCOUNT_ID}.dkr.ecr.us-east-1.amazonaws.com"
LAMBDA_IMAGE_URI = f"{_IMAGE_REPO}/{PROJECT}-lambda:local"
TRAINING_IMAGE_URI = f"{_IMAGE_REPO}/{PROJECT}-train:local"
SERVING_IMAGE_URI = f"{_IMAGE_REPO}/{PROJECT}-serve:local"


def function_name(key: str) -> str:
    return stack_resource_name(STACK, key)


@dataclass(frozen=True)
class EventSource:
    """A queue → function event source mapping, as the Pulumi program declares it."""

    queue: str
    function: str
    batch_size: int
    window_s: float = 0.0


#: The stack's event source mappings (infra.triggers for the starter, infra.feedback for the feedback
#: function); the local runtime runs one poller per entry.
EVENT_SOURCES = (
    EventSource(TRAINING_QUEUE, STARTER_FUNCTION, STARTER_BATCH_SIZE, STARTER_BATCHING_WINDOW_S),
    EventSource(FEEDBACK_QUEUE, FEEDBACK_FUNCTION, FEEDBACK_BATCH_SIZE, FEEDBACK_BATCHING_WINDOW_S),
)


def _assume_role_policy(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


def _role(iam: Any, name: str, service: str) -> str:
    return str(
        iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=_assume_role_policy(service),
            Tags=[{"Key": k, "Value": v} for k, v in _TAGS.items()],
        )["Role"]["Arn"]
    )


def _queue_with_dlq(
    sqs: Any,
    name: str,
    kms_key_id: str,
    visibility_timeout_s: int,
    max_receive_count: int,
    max_message_bytes: int | None = None,
) -> tuple[str, str]:
    encryption = {
        "KmsMasterKeyId": kms_key_id,
        "KmsDataKeyReusePeriodSeconds": str(QUEUE_KMS_DATA_KEY_REUSE_S),
    }
    dlq_url = sqs.create_queue(
        QueueName=dead_letter_queue(name),
        Attributes={**encryption, "MessageRetentionPeriod": str(DLQ_RETENTION_S)},
        tags=_TAGS,
    )["QueueUrl"]
    dlq_arn = _queue_arn(sqs, dlq_url)
    url = sqs.create_queue(
        QueueName=name,
        Attributes={
            **encryption,
            "VisibilityTimeout": str(visibility_timeout_s),
            "MessageRetentionPeriod": str(QUEUE_RETENTION_S),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}
            ),
            **({"MaximumMessageSize": str(max_message_bytes)} if max_message_bytes else {}),
        },
        tags=_TAGS,
    )["QueueUrl"]
    return str(url), str(dlq_url)


def _queue_arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def _function(lam: Any, iam: Any, spec: FunctionSpec, environment: dict[str, str], kms_key_arn: str) -> str:
    """One image function with its own role, as the stack's ContainerFunction creates it; returns its ARN."""
    name = function_name(spec.key)
    role = _role(iam, stack_resource_name(STACK, *function_role(spec.key)), "lambda.amazonaws.com")
    return str(
        lam.create_function(
            FunctionName=name,
            PackageType="Image",
            Code={"ImageUri": LAMBDA_IMAGE_URI},
            ImageConfig={"Command": [spec.handler]},
            Role=role,
            MemorySize=spec.memory_mb,
            Timeout=spec.timeout_s,
            EphemeralStorage={"Size": spec.ephemeral_storage_mb},
            Environment={"Variables": function_environment(spec.key, environment)},
            KMSKeyArn=kms_key_arn,
            TracingConfig={"Mode": LAMBDA_TRACING_MODE},
            Tags=_TAGS,
        )["FunctionArn"]
    )


def _bucket(s3: Any, name: str, kms_key_arn: str) -> None:
    s3.create_bucket(Bucket=name)
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": kms_key_arn,
                    },
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    # moto cannot evaluate the deployed policy's encryption conditions: the local stack enforces them itself.
    bucket_policy.enforce(name, kms_key_arn)


def _shared_endpoint(sagemaker: Any, bucket: str, role: str) -> tuple[str, str]:
    """The shared multi-model endpoint (what infra.shared_endpoint creates): name and model prefix URL."""
    name = stack_resource_name(STACK, SHARED_ENDPOINT)
    models_url = s3_uri(bucket, SHARED_MODELS_PREFIX)
    sagemaker.create_model(
        ModelName=name,
        ExecutionRoleArn=role,
        PrimaryContainer={
            "Image": SERVING_IMAGE_URI,
            "Mode": "MultiModel",
            "ModelDataUrl": models_url,
            "MultiModelConfig": {"ModelCacheSetting": SHARED_MODEL_CACHE_SETTING},
        },
        EnableNetworkIsolation=True,
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": SHARED_ENDPOINT_VARIANT,
                "ModelName": name,
                "InitialInstanceCount": SHARED_ENDPOINT_MIN_INSTANCES,
                "InstanceType": SHARED_ENDPOINT_INSTANCE_TYPE,
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    return name, models_url


def _state_machine(sfn: Any, iam: Any, workflow: str, definition: dict[str, Any]) -> str:
    """One workflow with its own role, of the type the deployment gives it; returns its ARN."""
    role = _role(iam, stack_resource_name(STACK, *state_machine_role(workflow)), "states.amazonaws.com")
    return str(
        sfn.create_state_machine(
            name=stack_resource_name(STACK, workflow),
            definition=json.dumps(definition),
            roleArn=role,
            type=WORKFLOW_TYPES[workflow],
            tags=[{"key": k, "value": v} for k, v in _TAGS.items()],
        )["stateMachineArn"]
    )


def deploy(
    aws: EmbeddedAws,
    settings: PipelineSettings | None = None,
    feedback_policies: Mapping[str, RetrainingPolicy] | None = None,
) -> StackOutputs:
    """Create every resource of the stack on the embedded AWS and return its outputs.

    ``settings``: the training workflow's knobs (default: the deployment's, as the local run changes them);
    ``feedback_policies`` (``tenant/classifier`` → policy) is the stack config's ``feedback:`` section.
    """
    settings = settings or PipelineSettings().for_local_run()

    iam, kms, s3, sqs = aws.client("iam"), aws.client("kms"), aws.client("s3"), aws.client("sqs")
    lam, events, sfn = aws.client("lambda"), aws.client("events"), aws.client("stepfunctions")

    key = kms.create_key(
        Description="convclass data key", Tags=[{"TagKey": k, "TagValue": v} for k, v in _TAGS.items()]
    )["KeyMetadata"]
    kms.enable_key_rotation(KeyId=key["KeyId"])
    kms_key_arn = str(key["Arn"])

    bucket = stack_resource_name(STACK, "data", LOCAL_ACCOUNT_ID)
    _bucket(s3, bucket, kms_key_arn)
    training_queue_url, training_dlq_url = _queue_with_dlq(
        sqs,
        stack_resource_name(STACK, TRAINING_QUEUE),
        kms_key_arn,
        TRAINING_VISIBILITY_TIMEOUT_S,
        TRAINING_MAX_RECEIVE_COUNT,
    )
    inbound_queue_url, inbound_dlq_url = _queue_with_dlq(
        sqs,
        stack_resource_name(STACK, INBOUND_QUEUE),
        kms_key_arn,
        INBOUND_VISIBILITY_TIMEOUT_S,
        INBOUND_MAX_RECEIVE_COUNT,
        inbound_max_message_bytes(INBOUND_BATCH_SIZE),
    )
    bus = stack_resource_name(STACK)
    events.create_event_bus(Name=bus, Tags=[{"Key": k, "Value": v} for k, v in _TAGS.items()])

    sagemaker_role = _role(iam, stack_resource_name(STACK, *SAGEMAKER_ROLE), "sagemaker.amazonaws.com")
    environment = {DATA_BUCKET_ENV: bucket, KMS_KEY_ENV: kms_key_arn}
    arns = {
        key: _function(lam, iam, FUNCTION_SPECS[key], environment, kms_key_arn) for key in PIPELINE_FUNCTIONS
    }

    shared_endpoint, shared_models_url = _shared_endpoint(aws.client("sagemaker"), bucket, sagemaker_role)
    training_resources = TrainingPipelineResources(
        plan_function_arn=arns["plan"],
        export_function_arn=arns["export"],
        preprocess_function_arn=arns["preprocess"],
        evaluate_function_arn=arns["evaluate"],
        data_bucket=bucket,
        kms_key_arn=kms_key_arn,
        sagemaker_role_arn=sagemaker_role,
        training_image_uri=TRAINING_IMAGE_URI,
        serving_image_uri=SERVING_IMAGE_URI,
        event_bus_name=bus,
        shared_endpoint_name=shared_endpoint,
    )
    training_arn = _state_machine(
        sfn, iam, TRAINING_WORKFLOW, render_training_pipeline(training_resources, settings)
    )
    inference_arn = _state_machine(
        sfn,
        iam,
        INFERENCE_WORKFLOW,
        render_inference_workflow(
            InferenceResources(event_bus_name=bus, data_bucket=bucket, shared_endpoint_name=shared_endpoint)
        ),
    )

    # Training requests: queue → starter (EVENT_SOURCES) → StartExecution under the idempotent name; the
    # "Train Classifier Requested" rule on the bus feeds the same queue.
    _function(
        lam,
        iam,
        FUNCTION_SPECS[STARTER_FUNCTION],
        {TRAINING_STATE_MACHINE_ENV: training_arn},
        kms_key_arn,
    )
    training_queue_arn = _queue_arn(sqs, training_queue_url)
    events.put_rule(
        Name=stack_resource_name(STACK, TRAIN_CLASSIFIER_RULE),
        EventBusName=bus,
        EventPattern=json.dumps(TRAIN_REQUEST_PATTERN),
    )
    events.put_targets(
        Rule=stack_resource_name(STACK, TRAIN_CLASSIFIER_RULE),
        EventBusName=bus,
        Targets=[
            {"Id": "training-requests", "Arn": training_queue_arn, "InputPath": TRAIN_REQUEST_INPUT_PATH}
        ],
    )

    # Feedback: the bus rules for confirmations and predictions → feedback queue → feedback function
    # (EVENT_SOURCES), which may queue a training request (infra.feedback).
    feedback_queue_url, _ = _queue_with_dlq(
        sqs,
        stack_resource_name(STACK, FEEDBACK_QUEUE),
        kms_key_arn,
        FEEDBACK_VISIBILITY_TIMEOUT_S,
        FEEDBACK_MAX_RECEIVE_COUNT,
    )
    policies = {key: policy.model_dump() for key, policy in sorted((feedback_policies or {}).items())}
    _function(
        lam,
        iam,
        FUNCTION_SPECS[FEEDBACK_FUNCTION],
        {
            **environment,
            TRAINING_STATE_MACHINE_ENV: str(training_arn),
            TRAINING_QUEUE_URL_ENV: training_queue_url,
            EVENT_BUS_ENV: bus,
            FEEDBACK_POLICIES_ENV: json.dumps(policies, sort_keys=True),
        },
        kms_key_arn,
    )
    feedback_queue_arn = _queue_arn(sqs, feedback_queue_url)
    for rule, pattern in CAPTURE_RULE_PATTERNS.items():
        events.put_rule(
            Name=stack_resource_name(STACK, rule), EventBusName=bus, EventPattern=json.dumps(pattern)
        )
        events.put_targets(
            Rule=stack_resource_name(STACK, rule),
            EventBusName=bus,
            Targets=[{"Id": "feedback-events", "Arn": feedback_queue_arn}],
        )

    return StackOutputs(
        region=aws.region,
        data_bucket=bucket,
        kms_key_arn=kms_key_arn,
        event_bus_name=bus,
        training_state_machine_arn=training_arn,
        inference_state_machine_arn=inference_arn,
        training_queue_url=training_queue_url,
        training_dlq_url=training_dlq_url,
        inbound_queue_url=inbound_queue_url,
        inbound_dlq_url=inbound_dlq_url,
        sagemaker_role_arn=sagemaker_role,
        shared_endpoint_name=shared_endpoint,
        shared_models_url=shared_models_url,
    )
