"""What starts a training run, what a run plans, and the events convclass publishes on its EventBridge bus.

``TrainingRunRequest`` is the input of the training pipeline (the SQS trigger, the "train classifier" rule,
the schedules and the CLI all send it). The plan step turns it into a ``RunPlan``: every S3 key and SageMaker
name the run uses, computed once by :mod:`convclass.layout`, so the state machine only copies pointers around.

Event detail-types (source ``convclass.pipeline`` or ``convclass.inference``) and their ``detail`` models:

============================= =========================== ===============================================
detail-type                   detail model                when
============================= =========================== ===============================================
Train Classifier Requested    TrainingRunRequest          anyone asks for a run (a bus rule starts it)
Approval Requested            ApprovalRequest             an export or deployment gate awaits an answer
Training Run Succeeded        RunOutcome                  ``deployed``, ``rejected`` or ``insufficient_data``
Training Run Failed           RunOutcome                  any failure; ``error`` is the Fail state's error
Email Classified              EmailClassified             one per inbound email the endpoint classified
Email Classification Failed   EmailClassificationFailed   one per inbound email that cannot be classified
============================= =========================== ===============================================

No event ever carries email text: only ids, labels, probabilities and metrics.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from convclass import layout
from convclass.export.source import SourceKind
from convclass.records import LABEL_FIELD_PATTERN

PIPELINE_SOURCE = "convclass.pipeline"
INFERENCE_SOURCE = "convclass.inference"

TRAIN_REQUESTED = "Train Classifier Requested"
APPROVAL_REQUESTED = "Approval Requested"
RUN_SUCCEEDED = "Training Run Succeeded"
RUN_FAILED = "Training Run Failed"
EMAIL_CLASSIFIED = "Email Classified"
EMAIL_CLASSIFICATION_FAILED = "Email Classification Failed"

#: SQS message attributes of an inbound email; the message body is the serving request JSON, passed unchanged
#: to the tenant's endpoint (the workflow never parses or logs it).
INBOUND_ATTRIBUTES = ("tenant", "classifier", "conversation_id")
#: Step Functions refuses an execution input over 256 KiB (262,144 bytes of UTF-8); a Pipe hands a whole batch
#: to the inference workflow as one input.
STEP_FUNCTIONS_MAX_INPUT_BYTES = 262_144
#: What a Pipe adds around each body in that input (ids, receipt handle, attributes, ARNs), generously.
PIPE_RECORD_OVERHEAD_BYTES = 2_048
#: SQS never accepts a message under 1 KiB as its size limit.
SQS_MIN_MESSAGE_SIZE = 1_024

#: Email events carry ``event_id`` = this format over (SQS message id, kind): a redelivered message gets the
#: same id again, so a consumer keeps the first event per id. EventBridge itself never deduplicates. The id
#: must be a valid ``layout.EVENT_ID_PATTERN`` (the feedback loop stores each prediction under it): no ``/``.
EMAIL_EVENT_ID_FORMAT = "{}:{}"
EmailEventKind = Literal["classified", "failed"]


def email_event_id(message_id: str, kind: EmailEventKind) -> str:
    """The ``event_id`` of the email event the inference workflow publishes for one SQS message."""
    return EMAIL_EVENT_ID_FORMAT.format(message_id, kind)


def inbound_max_message_bytes(batch_size: int) -> int:
    """The inbound queue's ``MaximumMessageSize`` for a Pipe batch of ``batch_size`` messages: a full batch of
    the largest messages, each with the Pipe's record around it, fits one Step Functions input.

    A body travels as a JSON string inside that input, so its escaped size is what counts;
    ``convclass.inbound.inbound_message`` checks the escaped size against this limit, SQS checks the raw size.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    size = (STEP_FUNCTIONS_MAX_INPUT_BYTES // batch_size - PIPE_RECORD_OVERHEAD_BYTES) // 1024 * 1024
    if size < SQS_MIN_MESSAGE_SIZE:
        raise ValueError(f"a batch of {batch_size} leaves no room for a message in a Step Functions input")
    return size


#: SageMaker instance types look like ml.<family>.<size>.
INSTANCE_TYPE_PATTERN = r"^ml\.[a-z0-9]+\.[a-z0-9]+$"
#: Where a classifier's approved model is served (see RunOptions.hosting).
Hosting = Literal["dedicated", "shared"]
#: What a classifier gets without asking: the shared multi-model endpoint (dedicated is the opt-in).
DEFAULT_HOSTING: Hosting = "shared"
#: The local path SageMaker syncs to CheckpointConfig.S3Uri (the training entrypoint resumes from it).
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
#: Variant name of every endpoint config; blue/green updates require it to stay the same.
VARIANT_NAME = "AllTraffic"


#: Ids checked against convclass.layout wherever an event carries them (they become S3 keys, names).
TenantId = Annotated[str, AfterValidator(lambda value: layout.validate_id(value, "tenant id"))]
ClassifierId = Annotated[str, AfterValidator(lambda value: layout.validate_id(value, "classifier id"))]
RunId = Annotated[str, AfterValidator(layout.validate_run_id)]
LabelField = Annotated[str, Field(pattern=LABEL_FIELD_PATTERN)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSource(_Frozen):
    """Where the export reads conversations. Connection settings live in Secrets Manager, never here."""

    kind: SourceKind
    #: ``files`` only: an ``s3://`` URI or a local path holding JSON Lines or Parquet files.
    uri: str | None = Field(default=None, max_length=1024)

    @model_validator(mode="after")
    def _uri_for_files(self) -> DataSource:
        if self.kind == "files" and not self.uri:
            raise ValueError("data_source.uri is required for kind 'files'")
        if self.kind != "files" and self.uri:
            raise ValueError(
                "data_source.uri is only allowed for kind 'files' (connections come from secrets)"
            )
        return self


class RunOptions(_Frozen):
    """Per-run choices; every default is what a tenant gets without asking."""

    #: Wait for a human to approve using the tenant's conversations before exporting them.
    export_approval: bool = False
    #: Wait for a human to approve the challenger before it replaces the endpoint's model.
    deploy_approval: bool = False
    #: Re-export everything instead of what changed since the last watermark.
    full_export: bool = False
    #: Labels with fewer examples are dropped by preprocessing (and reported in its manifest).
    min_examples_per_label: int = Field(default=10, ge=1, le=100_000)
    training_instance_type: str = Field(default="ml.g5.xlarge", pattern=INSTANCE_TYPE_PATTERN)
    #: Managed spot training (up to ~70 % cheaper); the job checkpoints and resumes after interruptions.
    managed_spot: bool = True
    max_runtime_seconds: int = Field(default=3600, ge=60, le=432_000)
    #: Spot only: how long SageMaker may wait for capacity plus run; must be ≥ max_runtime_seconds.
    max_wait_seconds: int = Field(default=7200, ge=60, le=432_000)
    #: Extra training hyperparameters (SageMaker passes every value as a string).
    hyperparameters: dict[str, str] = Field(default_factory=dict, max_length=64)
    #: The challenger is deployed only if its test accuracy reaches this …
    min_accuracy: float = Field(default=0.7, ge=0, le=1)
    #: … and is not below the champion's by more than this (absolute accuracy points, 0.01 = one point).
    tolerance: float = Field(default=0.01, ge=0, le=1)
    endpoint_instance_type: str = Field(default="ml.m5.large", pattern=INSTANCE_TYPE_PATTERN)
    endpoint_instance_count: int = Field(default=1, ge=1, le=10)
    #: ``shared`` (the default): the approved model is published to the stack's shared multi-model endpoint
    #: and called by ``TargetModel``; ``dedicated``: the classifier gets its own endpoint (the ``endpoint_*``
    #: options size it). A stack without a shared endpoint refuses ``shared`` runs: ask for ``dedicated``.
    hosting: Hosting = DEFAULT_HOSTING

    @model_validator(mode="after")
    def _spot_wait(self) -> RunOptions:
        if self.managed_spot and self.max_wait_seconds < self.max_runtime_seconds:
            raise ValueError("max_wait_seconds must be >= max_runtime_seconds with managed spot training")
        return self


class Redeploy(_Frozen):
    """Roll back: deploy the model an earlier run of the same classifier trained, through the same
    deployment steps (nothing is exported or trained; the comparison always lets the chosen model through)."""

    #: The run that trained the model.
    run_id: RunId
    #: Its model archive (a ChampionRecord's ``model_artifacts``): under that run's model output prefix.
    model_artifacts: str = Field(max_length=1024)
    training_job_name: str = Field(min_length=1, max_length=63)


class TrainingRunRequest(_Frozen):
    """Input of the training pipeline (and detail of ``Train Classifier Requested``)."""

    tenant: TenantId
    classifier: ClassifierId
    label_field: LabelField
    data_source: DataSource
    options: RunOptions = Field(default_factory=RunOptions)
    #: What makes this run unique for its trigger (a schedule date, a request id). Two requests with the same
    #: key map to one execution name, so a duplicated trigger cannot start a second paid run.
    business_key: str | None = Field(default=None, min_length=1, max_length=64)
    #: Why an automatic trigger asked for this run (the feedback loop's retraining policy says which rule
    #: fired); recorded on the run as part of its input. Never customer text.
    reason: str | None = Field(default=None, min_length=1, max_length=512)
    #: Deploy an earlier model instead of training a new one (a roll back).
    redeploy: Redeploy | None = None


def execution_name(request: TrainingRunRequest) -> str:
    """Idempotent StartExecution name for ``request``.

    With a business key: tenant + classifier + key. Without one: tenant + classifier + a digest of the whole
    request, so the same request (a redelivered message, a double click) always gets the same name.
    """
    key = request.business_key
    if key is None:
        # A request without a reason digests as it did before the field existed.
        fields = request.model_dump(mode="json", exclude={"reason"} if request.reason is None else None)
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        key = "req-" + hashlib.sha256(canonical.encode()).hexdigest()[:16]
    return layout.training_execution_name(request.tenant, request.classifier, key)


class ExportStep(_Frozen):
    """Event of the export function: read one tenant's labelled conversations, write Parquet parts
    + manifest."""

    tenant: str
    classifier: str
    label_field: str
    run_id: str
    data_source: DataSource
    full_export: bool
    bucket: str
    output_prefix: str
    manifest_key: str
    consent_key: str
    watermark_key: str


class PreprocessStep(_Frozen):
    """Event of the preprocess function: export parts → cleaned, tokenized train/validation/test splits."""

    tenant: str
    classifier: str
    label_field: str
    run_id: str
    bucket: str
    input_prefix: str
    input_manifest_key: str
    output_prefix: str
    min_examples_per_label: int


class TrainingStep(_Frozen):
    """What CreateTrainingJob needs beyond the deployment-wide settings (image, role, KMS key)."""

    job_base_name: str
    hyperparameters: dict[str, str]
    #: CreateTrainingJob InputDataConfig: one File-mode channel per split plus the tokenizer and manifest.
    input_data_config: list[dict[str, Any]]
    output_uri: str
    checkpoint_uri: str
    instance_type: str
    managed_spot: bool
    stopping_condition: dict[str, int]


class EvaluationStep(_Frozen):
    """Event of the evaluate function (the model artifact URI is added from the training job's result)."""

    tenant: str
    classifier: str
    run_id: str
    bucket: str
    champion_key: str
    endpoint_name: str
    min_accuracy: float
    tolerance: float
    #: A roll back: the customer chose this earlier model, so it is not compared with the serving champion
    #: (its metrics.json scored whatever served when it trained); only its own artifact is checked.
    redeploy: bool = False


class DeployStep(_Frozen):
    model_name: str
    endpoint_config_name: str
    endpoint_name: str
    instance_type: str
    instance_count: int
    #: AutoRollbackConfiguration alarms for blue/green updates (created with the endpoint's monitoring).
    rollback_alarms: list[dict[str, str]]
    champion_key: str


class SharedDeployStep(_Frozen):
    """Where a ``shared`` run publishes its approved model and how the champion record routes to it."""

    endpoint_name: str
    #: ``TargetModel`` of this run's model (its key relative to the shared model prefix).
    target_model: str
    #: Immutable bucket key the model archive is copied to (``hosting.keys.shared_model_key``).
    model_key: str
    #: ``<bucket>/<S3OutputPath key>``: CopyObject's source is this + ``<job>/output/model.tar.gz``.
    copy_source_prefix: str
    champion_key: str


class RunPlan(_Frozen):
    """The validated request plus every name and key of the run; the state machine only reads
    pointers here."""

    tenant: str
    classifier: str
    run_id: str
    execution_name: str
    bucket: str
    export_approval: bool
    deploy_approval: bool
    #: A roll back: deploy ``request.redeploy``'s model, skipping export, preprocessing and training.
    redeploy_only: bool = False
    request: TrainingRunRequest
    export: ExportStep
    preprocess: PreprocessStep
    training: TrainingStep
    evaluation: EvaluationStep
    deploy: DeployStep
    hosting: Hosting
    #: ``shared`` runs only.
    shared: SharedDeployStep | None = None
    #: The endpoint the approved model serves from: the classifier's own, or the shared one.
    serving_endpoint: str


class HeadlineMetrics(_Frozen):
    """The figures model comparison uses (a summary of convclass.artifacts.ModelMetrics)."""

    accuracy: float = Field(ge=0, le=1)
    macro_f1: float = Field(ge=0, le=1)


class EndpointState(_Frozen):
    exists: bool
    config_name: str | None = None


class ChampionLookup(_Frozen):
    """Output of the champion lookup before training: what the challenger will be compared with.

    ``input_data_config`` is the plan's channels plus, when a champion serves, the channel ``champion`` with
    its model archive, so the training job scores both models on one held-out split.
    """

    endpoint: EndpointState
    #: The champion's model.tar.gz (``s3://`` URI), or None when no champion serves the endpoint.
    model_artifacts: str | None = None
    run_id: str | None = None
    input_data_config: list[dict[str, Any]]


class EvaluationResult(_Frozen):
    """Output of the evaluate function: the deploy decision with both figures.

    ``champion`` holds the champion's figures on the challenger's held-out split (the same rows as
    ``challenger``), or None when no champion could be compared.
    """

    deploy: bool
    reason: str
    challenger: HeadlineMetrics
    champion: HeadlineMetrics | None = None
    #: The champion's model archive that was scored (None without a champion).
    champion_model: str | None = None
    min_accuracy: float
    tolerance: float
    endpoint: EndpointState


class ChampionRecord(BaseModel):
    """champion.json: the model serving the classifier now (written by the pipeline after a deploy).

    A ``dedicated`` record names the SageMaker model and endpoint config behind the classifier's own endpoint;
    a ``shared`` record names the route instead: the shared endpoint and the ``TargetModel`` to pass to it.
    Records written before hosting modes existed read as ``dedicated``.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    run_id: str
    hosting: Hosting = "dedicated"
    #: Dedicated only.
    model_name: str | None = None
    endpoint_config_name: str | None = None
    #: Shared only: the route.
    endpoint_name: str | None = None
    target_model: str | None = None

    @model_validator(mode="after")
    def _names_its_model(self) -> ChampionRecord:
        needed = (
            (self.endpoint_name, self.target_model)
            if self.hosting == "shared"
            else (self.model_name, self.endpoint_config_name)
        )
        if not all(needed):
            raise ValueError(f"a {self.hosting} champion record must name the model that serves")
        return self

    model_artifacts: str
    training_job_name: str
    metrics: HeadlineMetrics
    execution: str
    deployed_at: str


Gate = Literal["export", "deployment"]


class ApprovalRequest(_Frozen):
    """Detail of ``Approval Requested``: answer with SendTaskSuccess /
    SendTaskFailure(error=ApprovalRejected)."""

    gate: Gate
    task_token: str
    tenant: str
    classifier: str
    run_id: str
    execution: str
    #: The run fails as ApprovalTimedOut when nobody answers within this many seconds.
    timeout_seconds: int
    #: Deployment gate only: the decision with both figures.
    evaluation: EvaluationResult | None = None


#: ``rejected``: the comparison kept the champion (a normal end: the run succeeds, ``evaluation`` says why).
Outcome = Literal["deployed", "rejected", "insufficient_data", "failed"]


class RunOutcome(BaseModel):
    """Detail of ``Training Run Succeeded`` / ``Training Run Failed``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    outcome: Outcome
    execution: str
    tenant: str | None = None
    classifier: str | None = None
    run_id: str | None = None
    endpoint: str | None = None
    metrics: HeadlineMetrics | None = None
    evaluation: EvaluationResult | None = None
    error: str | None = None
    cause: str | None = None
    #: Only when the request itself was invalid (no plan exists): the raw execution input.
    request: Any = None


class EmailClassified(_Frozen):
    """Detail of ``Email Classified``: the serving response for one email, plus where it came from."""

    #: ``email_event_id(message_id, "classified")``: the same for every delivery of one message.
    event_id: str
    tenant: str
    classifier: str
    conversation_id: str
    message_id: str
    prediction: Any


class EmailClassificationFailed(_Frozen):
    """Detail of ``Email Classification Failed``: a final answer (the message is not delivered again)."""

    #: ``email_event_id(message_id, "failed")``.
    event_id: str
    tenant: str | None = None
    classifier: str | None = None
    conversation_id: str | None = None
    message_id: str
    error: str
    cause: str | None = None
