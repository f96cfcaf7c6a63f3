"""Typed stack settings: what one deployment of convclass is made of.

``infra/__main__.py`` is the only place that reads Pulumi stack config; it validates it into
:class:`StackArgs` and hands that to the components, so each component can be built (and tested) from plain
values. Every field here is documented, with its stack-config key, in ``Pulumi.dev.yaml``.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel, to_snake

from convclass.deployment import (
    FUNCTION_SPECS,
    INBOUND_BATCH_SIZE,
    INBOUND_MAX_RECEIVE_COUNT,
    SHARED_ENDPOINT_INSTANCE_TYPE,
    SHARED_ENDPOINT_MIN_INSTANCES,
)
from convclass.events import DEFAULT_HOSTING, INSTANCE_TYPE_PATTERN, DataSource, Hosting
from convclass.feedback.policy import RetrainingPolicy
from convclass.layout import FEEDBACK_FUNCTION, STARTER_FUNCTION, validate_id
from convclass.records import LABEL_FIELD_PATTERN
from statemachine import PipelineSettings

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
# EventBridge Scheduler expressions: at(...), rate(...) or cron(...).
_SCHEDULE_RE = re.compile(r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\([^()]+\)|at\([^()]+\))$")
# S3 allows 1,000 lifecycle rules per bucket; each configured classifier takes four (see storage.py).
MAX_CLASSIFIERS = 200


class _Model(BaseModel):
    """Stack config uses camelCase keys (Pulumi's convention); Python code uses snake_case attributes."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class FunctionSettings(_Model):
    memory_mb: Annotated[int, Field(ge=128, le=10240)] = 512
    timeout_seconds: Annotated[int, Field(ge=1, le=900)] = 60
    ephemeral_storage_mb: Annotated[int, Field(ge=512, le=10240)] = 512
    # None: no reservation (shares the account's unreserved concurrency).
    reserved_concurrency: Annotated[int, Field(ge=0)] | None = None


def _defaults(function: str) -> FunctionSettings:
    spec = FUNCTION_SPECS[function]
    return FunctionSettings(
        memory_mb=spec.memory_mb,
        timeout_seconds=spec.timeout_s,
        ephemeral_storage_mb=spec.ephemeral_storage_mb,
    )


class FunctionsConfig(_Model):
    """Sizing per Lambda. All run the one Lambda image with a different command."""

    plan: FunctionSettings = _defaults("plan")
    export: FunctionSettings = _defaults("export")
    preprocess: FunctionSettings = _defaults("preprocess")
    evaluate: FunctionSettings = _defaults("evaluate")
    starter: FunctionSettings = _defaults(STARTER_FUNCTION)
    feedback: FunctionSettings = _defaults(FEEDBACK_FUNCTION)


class ImagesConfig(_Model):
    """Container images: built and pushed here (needs a Docker daemon at ``pulumi up``), or digests that CI
    pushed to this stack's ECR repositories. Everything downstream references an image by digest."""

    build: bool = False
    lambda_digest: str | None = None
    training_digest: str | None = None
    serving_digest: str | None = None
    # Only used when build is true; paths are relative to the repository root.
    context: str = "."
    lambda_dockerfile: str = "images/lambda/Dockerfile"
    training_dockerfile: str = "images/train/Dockerfile"
    serving_dockerfile: str = "images/serve/Dockerfile"
    platform: str = "linux/amd64"
    # Tag pushed with each build (tags are immutable: use a fresh one per build, e.g. the Git commit).
    build_tag: str | None = None

    @field_validator("lambda_digest", "training_digest", "serving_digest")
    @classmethod
    def _digest(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(DIGEST_PATTERN, value):
            raise ValueError("image digests look like sha256:<64 hex digits>")
        return value

    @model_validator(mode="after")
    def _digests_when_not_building(self) -> ImagesConfig:
        if not self.build:
            missing = [
                name
                for name in ("lambda_digest", "training_digest", "serving_digest")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(
                    f"images.build is false, so these digests are required: {', '.join(missing)}"
                )
        elif not self.build_tag or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", self.build_tag):
            raise ValueError(
                "images.build is true, so images.buildTag must be set to a new valid tag per build"
            )
        return self


class TrainingConfig(_Model):
    """SageMaker training settings of scheduled runs (other triggers carry their own RunOptions)."""

    instance_type: str = Field(default="ml.m5.xlarge", pattern=INSTANCE_TYPE_PATTERN)
    managed_spot: bool = True
    max_runtime_seconds: Annotated[int, Field(ge=60, le=432000)] = 7200
    # Managed spot: how long to wait for capacity in total; must be >= max_runtime_seconds.
    max_wait_seconds: Annotated[int, Field(ge=60, le=432000)] = 14400

    @model_validator(mode="after")
    def _wait_covers_runtime(self) -> TrainingConfig:
        if self.managed_spot and self.max_wait_seconds < self.max_runtime_seconds:
            raise ValueError(
                "training.maxWaitSeconds must be >= training.maxRuntimeSeconds with managed spot"
            )
        return self


class ServingConfig(_Model):
    """Endpoint settings of scheduled runs, and the thresholds of every endpoint's alarms (which also roll
    back a failing blue/green update)."""

    instance_type: str = Field(default="ml.m5.large", pattern=INSTANCE_TYPE_PATTERN)
    instance_count: Annotated[int, Field(ge=1, le=10)] = 1
    latency_alarm_p90_ms: Annotated[int, Field(ge=1)] = 1000
    server_error_alarm_threshold: Annotated[int, Field(ge=1)] = 1


class SharedEndpointConfig(_Model):
    """The shared multi-model endpoint (infra.shared_endpoint): fleet size, scaling target and alarms."""

    enabled: bool = True
    instance_type: str = Field(default=SHARED_ENDPOINT_INSTANCE_TYPE, pattern=INSTANCE_TYPE_PATTERN)
    min_instances: Annotated[int, Field(ge=1, le=100)] = SHARED_ENDPOINT_MIN_INSTANCES
    max_instances: Annotated[int, Field(ge=1, le=100)] = 4
    # Target of the scaling policy: invocations per instance per minute.
    invocations_per_instance_target: Annotated[int, Field(ge=1)] = 1000
    model_loading_wait_alarm_ms: Annotated[int, Field(ge=1)] = 2000
    server_error_alarm_threshold: Annotated[int, Field(ge=1)] = 1

    @model_validator(mode="after")
    def _max_covers_min(self) -> SharedEndpointConfig:
        if self.max_instances < self.min_instances:
            raise ValueError("sharedEndpoint.maxInstances must be >= sharedEndpoint.minInstances")
        return self


class ClassifierConfig(_Model):
    id: str
    # Field of a conversation that holds the label this classifier learns (e.g. "category").
    label_field: str = Field(pattern=LABEL_FIELD_PATTERN)
    # Where the export reads this tenant's conversations (connections come from Secrets Manager).
    data_source: DataSource
    # Periodic retraining: an EventBridge Scheduler expression, or None for on-demand only.
    schedule: str | None = None
    schedule_timezone: str = "UTC"
    # Approval gates of scheduled runs: wait for an operator before exporting data / before deploying.
    # This and the next settings: None keeps convclass's default (see convclass.events.RunOptions).
    export_approval: bool | None = None
    deploy_approval: bool | None = None
    # Deployment bar for the challenger: minimum test accuracy, and how far below the champion it may be.
    min_accuracy: Annotated[float, Field(ge=0, le=1)] | None = None
    tolerance: Annotated[float, Field(ge=0, le=1)] | None = None
    # Where the approved model serves: the shared multi-model endpoint ("shared", the default) or its own
    # endpoint ("dedicated"). A stack whose sharedEndpoint is disabled must say "dedicated".
    hosting: Hosting = DEFAULT_HOSTING
    # Feedback loop: when confirmed labels start a run by itself, and the review threshold (None: defaults).
    feedback: RetrainingPolicy | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return validate_id(value, "classifier id")

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is not None and not _SCHEDULE_RE.fullmatch(value):
            raise ValueError(
                "schedule must be rate(...), cron(...) or at(...) (EventBridge Scheduler syntax)"
            )
        return value


class TenantConfig(_Model):
    id: str
    classifiers: list[ClassifierConfig] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return validate_id(value, "tenant id")

    @model_validator(mode="after")
    def _unique_classifiers(self) -> TenantConfig:
        ids = [c.id for c in self.classifiers]
        if len(ids) != len(set(ids)):
            raise ValueError(f"tenant {self.id} lists a classifier twice")
        return self


class StorageConfig(_Model):
    """Retention of the data bucket's areas (see convclass.layout)."""

    export_retention_days: Annotated[int, Field(ge=1)] = 30
    dataset_retention_days: Annotated[int, Field(ge=1)] = 90
    checkpoint_retention_days: Annotated[int, Field(ge=1)] = 14
    # Models stay (an endpoint may still serve them); they move to Glacier Instant Retrieval after this.
    model_archive_days: Annotated[int, Field(ge=30)] = 90
    noncurrent_version_days: Annotated[int, Field(ge=1)] = 30


class InferenceConfig(_Model):
    """The inbound-email queue → Pipe → Express workflow path."""

    batch_size: Annotated[int, Field(ge=1, le=10)] = INBOUND_BATCH_SIZE
    batching_window_seconds: Annotated[int, Field(ge=0, le=300)] = 5
    max_receive_count: Annotated[int, Field(ge=1, le=1000)] = INBOUND_MAX_RECEIVE_COUNT


class ConsoleConfig(_Model):
    """The customer console (infra/console.py): off unless enabled with the customers' identity provider,
    whose JWTs carry the tenant in ``tenantClaim``."""

    enabled: bool = False
    jwks_url: str | None = None
    issuer: str | None = None
    audience: str | None = None
    tenant_claim: str = "tenant"
    function: FunctionSettings = FunctionSettings(memory_mb=1024, timeout_seconds=29)
    authorizer: FunctionSettings = FunctionSettings(memory_mb=256, timeout_seconds=10)

    @model_validator(mode="after")
    def _identity_provider(self) -> ConsoleConfig:
        complete = (self.jwks_url or "").startswith("https://") and self.issuer and self.audience
        if self.enabled and not complete:
            raise ValueError("console.enabled needs jwksUrl (https://), issuer and audience")
        return self


class StackArgs(_Model):
    """Everything one convclass deployment needs, validated before any resource is declared."""

    project: str
    stack: str
    region: str
    log_retention_days: int = 30
    # Where alarms and approval requests are mailed (SNS email subscriptions; each must be confirmed).
    notification_emails: list[str] = Field(default_factory=list)
    storage: StorageConfig = StorageConfig()
    images: ImagesConfig
    functions: FunctionsConfig = FunctionsConfig()
    training: TrainingConfig = TrainingConfig()
    serving: ServingConfig = ServingConfig()
    shared_endpoint: SharedEndpointConfig = SharedEndpointConfig()
    inference: InferenceConfig = InferenceConfig()
    # Deployment-wide knobs of the training workflow: the fields of statemachine.PipelineSettings, camelCased.
    pipeline: dict[str, int | bool] = Field(default_factory=dict)
    # S3 prefixes (s3://bucket/prefix/, "{tenant}" allowed) from which "files" data sources may be exported.
    # Empty: files sources are not readable by the deployed export function (MongoDB/OpenSearch only).
    export_files_roots: list[str] = Field(default_factory=list)
    # Create SageMaker's log groups (training jobs, each configured endpoint) with retention and KMS. Set
    # false when the account already has /aws/sagemaker/TrainingJobs (another stack or earlier use of
    # SageMaker).
    sagemaker_log_groups: bool = True
    tenants: list[TenantConfig] = Field(default_factory=list)
    console: ConsoleConfig = ConsoleConfig()

    @field_validator("project", "stack")
    @classmethod
    def _name_part(cls, value: str) -> str:
        # Both prefix every physical name: ECR and S3 want lowercase, IAM role names at most 64 characters.
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,19}", value):
            raise ValueError("project and stack names must be lowercase letters, digits and '-', at most 20")
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"logRetentionDays must be one of {LOG_RETENTION_DAYS}")
        return value

    @field_validator("export_files_roots")
    @classmethod
    def _roots(cls, value: list[str]) -> list[str]:
        for root in value:
            if not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/([A-Za-z0-9_.{}/-]+/)?", root):
                raise ValueError("exportFilesRoots must be s3://bucket/prefix/ URIs ending in '/'")
        return value

    @field_validator("notification_emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        for email in value:
            if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
                raise ValueError("notificationEmails must be e-mail addresses")
        return value

    @field_validator("pipeline")
    @classmethod
    def _pipeline(cls, value: dict[str, int | bool]) -> dict[str, int | bool]:
        settings = {to_snake(key): v for key, v in value.items()}
        try:
            PipelineSettings(**settings)  # type: ignore[arg-type]
        except TypeError as exc:
            raise ValueError(f"unknown pipeline setting: {exc}") from None
        return settings

    def pipeline_settings(self) -> PipelineSettings:
        return PipelineSettings(**self.pipeline)  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _unique_tenants(self) -> StackArgs:
        ids = [t.id for t in self.tenants]
        if len(ids) != len(set(ids)):
            raise ValueError("a tenant is listed twice")
        if sum(len(t.classifiers) for t in self.tenants) > MAX_CLASSIFIERS:
            raise ValueError(f"at most {MAX_CLASSIFIERS} classifiers per stack (S3 lifecycle rule limit)")
        return self

    @model_validator(mode="after")
    def _shared_hosting_has_an_endpoint(self) -> StackArgs:
        # Refused now rather than when the first scheduled run reaches its plan.
        if not self.shared_endpoint.enabled:
            shared = [f"{tenant}/{c.id}" for tenant, c in self.classifiers() if c.hosting == "shared"]
            if shared:
                raise ValueError(
                    f"sharedEndpoint.enabled is false, but {', '.join(shared)} "
                    "use hosting shared (the default): set hosting: dedicated on them"
                )
        return self

    def classifiers(self) -> list[tuple[str, ClassifierConfig]]:
        """(tenant id, classifier) for every configured classifier, in config order."""
        return [(tenant.id, classifier) for tenant in self.tenants for classifier in tenant.classifiers]
