"""The stack's KMS key and its data bucket (one prefix per tenant/classifier, see convclass.layout)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from convclass.deployment import bucket_policy_json
from convclass.layout import CHECKPOINTS, DATASETS, EXPORTS, MODELS, ClassifierLayout
from infra.common import AwsEnv, Naming, Statement, child_opts
from infra.config import StorageConfig
from infra.feedback import feedback_expiry_rule

# The account root administers and uses the key; IAM policies then grant use to individual roles. Listed
# explicitly (no "kms:*") so no principal can do more with the key than what is named here.
KEY_ACCOUNT_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)


def key_policy(env: AwsEnv) -> str:
    """Key policy: the account (through IAM), CloudWatch Logs for this account's log groups, and the two
    services that deliver into encrypted queues/topics on this stack's behalf (EventBridge rules, CloudWatch
    alarms)."""
    account_root = f"arn:{env.partition}:iam::{env.account_id}:root"
    statements: list[Statement] = [
        {
            "Sid": "AccountAdministersAndDelegatesThroughIam",
            "Effect": "Allow",
            "Principal": {"AWS": account_root},
            "Action": sorted(KEY_ACCOUNT_ACTIONS),
            "Resource": "*",
        },
        {
            "Sid": "CloudWatchLogsForThisAccount",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{env.region}.amazonaws.com"},
            "Action": [
                "kms:Decrypt",
                "kms:DescribeKey",
                "kms:Encrypt",
                "kms:GenerateDataKey",
                "kms:ReEncryptFrom",
                "kms:ReEncryptTo",
            ],
            "Resource": "*",
            "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": env.arn("logs", "log-group:*")}},
        },
        {
            "Sid": "ServiceDeliveryIntoEncryptedQueuesAndTopics",
            "Effect": "Allow",
            "Principal": {"Service": ["events.amazonaws.com", "cloudwatch.amazonaws.com"]},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": env.account_id}},
        },
        {
            # Log delivery of the KMS-encrypted state machines reads their encrypted execution events.
            "Sid": "StateMachineLogDelivery",
            "Effect": "Allow",
            "Principal": {"Service": "delivery.logs.amazonaws.com"},
            "Action": ["kms:Decrypt"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": env.account_id}},
        },
        {
            # EventBridge archives of this account's buses (the failed-emails archive) encrypt with this key;
            # the encryption context names the archived bus. DescribeKey carries no context.
            "Sid": "EventBridgeArchivesDescribeKey",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": ["kms:DescribeKey"],
            "Resource": "*",
        },
        {
            "Sid": "EventBridgeArchives",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom", "kms:ReEncryptTo"],
            "Resource": "*",
            "Condition": {
                "ArnLike": {
                    "kms:EncryptionContext:aws:events:event-bus:arn": env.arn("events", "event-bus/*")
                }
            },
        },
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


def lifecycle_rules(
    classifiers: list[tuple[str, str]], config: StorageConfig
) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
    """Bucket-wide hygiene plus, per configured classifier, expiry of exports/datasets/checkpoints and
    archiving of models. S3 filters cannot wildcard a path segment, hence one rule per classifier and area."""
    rules = [
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="abort-incomplete-uploads",
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
            abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=7
            ),
        ),
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="expire-noncurrent-versions",
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
            noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                noncurrent_days=config.noncurrent_version_days
            ),
        ),
        feedback_expiry_rule(),
    ]
    expiring = (
        (EXPORTS, config.export_retention_days),
        (DATASETS, config.dataset_retention_days),
        (CHECKPOINTS, config.checkpoint_retention_days),
    )
    for tenant, classifier in classifiers:
        layout = ClassifierLayout(tenant, classifier)
        for area, days in expiring:
            rules.append(
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id=f"{tenant}-{classifier}-{area}-expire",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=layout.area_prefix(area)),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=days),
                )
            )
        rules.append(
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id=f"{tenant}-{classifier}-{MODELS}-archive",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=layout.area_prefix(MODELS)),
                transitions=[
                    aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
                        days=config.model_archive_days, storage_class="GLACIER_IR"
                    )
                ],
            )
        )
    return rules


@dataclass(frozen=True)
class StorageArgs:
    naming: Naming
    env: pulumi.Output[AwsEnv]
    config: StorageConfig
    classifiers: list[tuple[str, str]]


class Storage(pulumi.ComponentResource):
    """KMS key (rotation on) that encrypts everything in the stack, and the versioned, private, TLS-only,
    SSE-KMS data bucket."""

    key_arn: pulumi.Output[str]
    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("convclass:infra:Storage", name, None, opts)
        tags = args.naming.tags("storage")

        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"{args.naming.prefix}: data, queues, topics, logs, images",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=args.env.apply(key_policy),
            tags=tags,
            opts=child_opts(self),
        )
        aws.kms.Alias(
            f"{name}-key-alias",
            name=f"alias/{args.naming.prefix}",
            target_key_id=self.key.key_id,
            opts=child_opts(self),
        )
        self.key_arn = self.key.arn

        self.bucket = aws.s3.Bucket(
            f"{name}-data",
            bucket_prefix=f"{args.naming.prefix}-data-",
            force_destroy=False,
            tags=tags,
            opts=child_opts(self, protect=False),
        )
        self.bucket_name = self.bucket.bucket
        self.bucket_arn = self.bucket.arn
        aws.s3.BucketOwnershipControls(
            f"{name}-data-ownership",
            bucket=self.bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child_opts(self),
        )
        aws.s3.BucketPublicAccessBlock(
            f"{name}-data-public-access",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child_opts(self),
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-data-encryption",
            bucket=self.bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms", kms_master_key_id=self.key.arn
                    ),
                    bucket_key_enabled=True,
                )
            ],
            opts=child_opts(self),
        )
        versioning = aws.s3.BucketVersioning(
            f"{name}-data-versioning",
            bucket=self.bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=child_opts(self),
        )
        aws.s3.BucketPolicy(
            f"{name}-data-policy",
            bucket=self.bucket.id,
            policy=pulumi.Output.all(self.bucket.arn, self.key.arn).apply(
                lambda v: bucket_policy_json(v[0], v[1])
            ),
            opts=child_opts(self),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-data-lifecycle",
            bucket=self.bucket.id,
            rules=lifecycle_rules(args.classifiers, args.config),
            opts=child_opts(self, depends_on=[versioning]),
        )
        self.register_outputs({"key_arn": self.key_arn, "bucket": self.bucket_name})
