"""The one place that turns (tenant, classifier, run) into S3 keys and AWS resource names.

Everything that reads or writes the data bucket, names a SageMaker resource or an execution goes through
here, so the Lambdas, the state machine, the infrastructure and the CLI agree by construction.

S3 layout (one prefix per tenant/classifier, so IAM and lifecycle rules can be scoped by prefix)::

    tenants/{tenant}/classifiers/{classifier}/
        consent.json                         approval to use the tenant's data (written by the approval gate)
        exports/{run}/part-00000.parquet     export records (see convclass.records)
        exports/{run}/manifest.json          written last: an export without it is incomplete
        exports/{run}/chunks/{i}/...         parts + manifest of one chunk of a parallel export (listed by the
                                             run manifest, which is written after every chunk finished)
        exports/{run}/history/...            the run's training history: parts + manifest (by preprocess)
        exports/watermark.json               committed when a run succeeds: where the next incremental export
                                             starts and the history it is merged into
        datasets/{run}/{train,validation,test}.parquet, tokenizer.json, manifest.json
        models/{run}/                        SageMaker S3OutputPath (the job writes .../output/model.tar.gz)
        checkpoints/{run}/                   managed-spot checkpoints
        champion.json                        the model behind the endpoint now (pointer + headline metrics)
        feedback/{kind}/date=YYYY-MM-DD/{event}.parquet
                                             captured predictions and confirmed labels (ids and labels only),
                                             one object per event id (see convclass.feedback)
        feedback/deployed/{run}.json         a deployed run's request and training label counts
        inference-events/{day}/*.jsonl       inference events (Email Classified/Failed) archived per UTC day,
                                             read by the customer console (no email text in them)
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

# Tenant and classifier ids end up in SageMaker names (63 chars, [a-zA-Z0-9-]) and S3 keys: keep them short.
# Words of lowercase letters and digits joined by single hyphens: an id never contains PAIR_SEPARATOR, so a
# name that joins a tenant and a classifier with it can be split back in exactly one way.
ID_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
ID_MAX_CHARS = 24
_ID_RE = re.compile(ID_PATTERN)
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,39}$"
_RUN_RE = re.compile(RUN_ID_PATTERN)
SAGEMAKER_NAME_MAX = 63
EXECUTION_NAME_MAX = 80
PROJECT_PREFIX = "cc"
#: Joins the parts of every derived name. Ids cannot contain it, so (tenant, classifier) pairs never collide:
#: ("acme", "shop-intent") → ``acme--shop-intent``, ("acme-shop", "intent") → ``acme-shop--intent``.
PAIR_SEPARATOR = "--"
#: Hex digits of SHA-256 that replace the tail of a name longer than its resource kind allows.
NAME_DIGEST_CHARS = 10

Split = Literal["train", "validation", "test"]
SPLITS: tuple[Split, ...] = ("train", "validation", "test")

TENANTS_ROOT = "tenants/"
# Areas under a classifier's prefix: each holds one sub-prefix per run. IAM policies and S3 lifecycle rules
# are scoped by area, so the names live here and nowhere else.
EXPORTS = "exports"
DATASETS = "datasets"
MODELS = "models"
CHECKPOINTS = "checkpoints"
AREAS = (EXPORTS, DATASETS, MODELS, CHECKPOINTS)
INFERENCE_EVENTS = "inference-events"
CONSENT_FILE = "consent.json"
#: The Hugging Face tokenizer file, in a dataset and in a model artifact alike.
TOKENIZER_FILE = "tokenizer.json"
CHAMPION_FILE = "champion.json"
WATERMARK_FILE = "watermark.json"
#: Folder of a run's training history inside its export prefix.
HISTORY_DIR = "history"
#: A classifier's prefix over (tenant id, classifier id); the inference workflow fills it with States.Format.
CLASSIFIER_PREFIX_FORMAT = f"{TENANTS_ROOT}{{}}/classifiers/{{}}/"
CHAMPION_KEY_FORMAT = CLASSIFIER_PREFIX_FORMAT + CHAMPION_FILE
#: Feedback area: what agents confirmed and what the endpoint predicted, per day (convclass.feedback).
FEEDBACK = "feedback"
FEEDBACK_KINDS = ("predictions", "confirmations")
#: Event ids become object names: EventBridge ids (UUIDs) and the host product's ids fit this.
EVENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
_EVENT_ID_RE = re.compile(EVENT_ID_PATTERN)


def validate_id(value: str, what: str) -> str:
    """Return ``value`` if it is a valid tenant/classifier id, else raise ``ValueError`` naming ``what``."""
    if not isinstance(value, str) or len(value) > ID_MAX_CHARS or not _ID_RE.fullmatch(value):
        raise ValueError(
            f"{what} must be 1-{ID_MAX_CHARS} lowercase letters and digits, words joined by single hyphens"
        )
    return value


def validate_event_id(value: str) -> str:
    if not isinstance(value, str) or not _EVENT_ID_RE.fullmatch(value):
        raise ValueError(f"event id must match {EVENT_ID_PATTERN}")
    return value


def validate_run_id(value: str) -> str:
    if not isinstance(value, str) or not _RUN_RE.fullmatch(value):
        raise ValueError(f"run id must match {RUN_ID_PATTERN}")
    return value


@dataclass(frozen=True)
class ClassifierLayout:
    """S3 keys for one tenant's classifier. Keys are relative to the data bucket."""

    tenant: str
    classifier: str

    def __post_init__(self) -> None:
        validate_id(self.tenant, "tenant id")
        validate_id(self.classifier, "classifier id")

    @property
    def prefix(self) -> str:
        return CLASSIFIER_PREFIX_FORMAT.format(self.tenant, self.classifier)

    def area_prefix(self, area: str) -> str:
        """Prefix holding every run of one area (what per-classifier S3 lifecycle rules filter on)."""
        if area not in AREAS:
            raise ValueError(f"unknown area {area!r}; expected one of {AREAS}")
        return f"{self.prefix}{area}/"

    @property
    def consent_key(self) -> str:
        return self.prefix + CONSENT_FILE

    @property
    def champion_key(self) -> str:
        return self.prefix + CHAMPION_FILE

    @property
    def watermark_key(self) -> str:
        return self.area_prefix(EXPORTS) + WATERMARK_FILE

    def export_prefix(self, run: str) -> str:
        return f"{self.area_prefix(EXPORTS)}{validate_run_id(run)}/"

    def export_part_key(self, run: str, part: int) -> str:
        return f"{self.export_prefix(run)}part-{part:05d}.parquet"

    def export_manifest_key(self, run: str) -> str:
        return self.export_prefix(run) + "manifest.json"

    def export_chunk_prefix(self, run: str, chunk: int) -> str:
        """One chunk of a parallel (Distributed Map) export: its parts and its own manifest."""
        if not isinstance(chunk, int) or chunk < 0:
            raise ValueError("chunk index must be a non-negative integer")
        return f"{self.export_prefix(run)}chunks/{chunk:05d}/"

    def export_chunk_part_key(self, run: str, chunk: int, part: int) -> str:
        return f"{self.export_chunk_prefix(run, chunk)}part-{part:05d}.parquet"

    def export_chunk_manifest_key(self, run: str, chunk: int) -> str:
        return self.export_chunk_prefix(run, chunk) + "manifest.json"

    def dataset_prefix(self, run: str) -> str:
        return f"{self.area_prefix(DATASETS)}{validate_run_id(run)}/"

    def split_key(self, run: str, split: str) -> str:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        return f"{self.dataset_prefix(run)}{split}.parquet"

    def tokenizer_key(self, run: str) -> str:
        return self.dataset_prefix(run) + TOKENIZER_FILE

    def dataset_manifest_key(self, run: str) -> str:
        return self.dataset_prefix(run) + "manifest.json"

    def model_output_prefix(self, run: str) -> str:
        return f"{self.area_prefix(MODELS)}{validate_run_id(run)}/"

    def checkpoint_prefix(self, run: str) -> str:
        return f"{self.area_prefix(CHECKPOINTS)}{validate_run_id(run)}/"

    # The training history: every labelled conversation's latest state, compacted by the run's preprocess from
    # the history it continued and its own export. Kept with the run's export (same retention); the committed
    # watermark names the history the next incremental export continues.
    def history_prefix(self, run: str) -> str:
        return f"{self.export_prefix(run)}{HISTORY_DIR}/"

    def history_part_key(self, run: str, part: int) -> str:
        return f"{self.history_prefix(run)}part-{part:05d}.parquet"

    def history_manifest_key(self, run: str) -> str:
        return self.history_prefix(run) + "manifest.json"

    @property
    def feedback_prefix(self) -> str:
        """Everything the feedback loop stores for this classifier (its lifecycle rule filters on tags)."""
        return f"{self.prefix}{FEEDBACK}/"

    def feedback_kind_prefix(self, kind: str) -> str:
        if kind not in FEEDBACK_KINDS:
            raise ValueError(f"unknown feedback kind {kind!r}; expected one of {FEEDBACK_KINDS}")
        return f"{self.feedback_prefix}{kind}/"

    def feedback_day_prefix(self, kind: str, day: date) -> str:
        return f"{self.feedback_kind_prefix(kind)}date={day.isoformat()}/"

    def feedback_key(self, kind: str, day: date, event_id: str) -> str:
        """One object per event: a redelivered event overwrites itself, so capture is idempotent."""
        return f"{self.feedback_day_prefix(kind, day)}{validate_event_id(event_id)}.parquet"

    def feedback_deployed_key(self, run: str) -> str:
        """What the feedback loop keeps of a deployed run (its request and training label counts), so it
        outlives the run's dataset and execution history."""
        return f"{self.feedback_prefix}deployed/{validate_run_id(run)}.json"

    def inference_events_prefix(self, day: date | None = None) -> str:
        """Archived inference events of the classifier, or of one UTC day."""
        return f"{self.prefix}{INFERENCE_EVENTS}/" + (f"{day.isoformat()}/" if day is not None else "")


def any_classifier_key_pattern(relative: str) -> str:
    """IAM resource pattern for ``relative`` (``exports/*``, ``consent.json``) under every classifier.

    Deployed roles are scoped with these patterns, so a role that may write exports cannot touch models.
    """
    return f"{TENANTS_ROOT}*/classifiers/*/{relative}"


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into (bucket, key); raise ``ValueError`` for anything else."""
    match = re.fullmatch(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.*)", uri or "")
    if not match:
        raise ValueError("expected an s3://bucket/key URI")
    return match.group(1), match.group(2)


def _bounded(name: str, limit: int) -> str:
    """Shorten ``name`` to ``limit`` chars, keeping it unique with a digest of the full name."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:NAME_DIGEST_CHARS]
    return f"{name[: limit - NAME_DIGEST_CHARS - 1].rstrip('-')}-{digest}"


def pair_name(tenant: str, classifier: str) -> str:
    """``tenant--classifier``: the collision-free stem of every per-classifier name."""
    validate_id(tenant, "tenant id")
    validate_id(classifier, "classifier id")
    return f"{tenant}{PAIR_SEPARATOR}{classifier}"


def _run_name(tenant: str, classifier: str, run: str, suffix: str = "") -> str:
    return f"{PROJECT_PREFIX}-{pair_name(tenant, classifier)}{PAIR_SEPARATOR}{validate_run_id(run)}{suffix}"


#: ``States.Format`` template of endpoint_name(): the inference workflow builds the name from a message's
#: attributes. Valid ids always fit (3 + 24 + 2 + 24 chars), so no digest is ever needed.
ENDPOINT_NAME_FORMAT = f"{PROJECT_PREFIX}-{{}}{PAIR_SEPARATOR}{{}}"
assert len(ENDPOINT_NAME_FORMAT.format("x" * ID_MAX_CHARS, "x" * ID_MAX_CHARS)) <= SAGEMAKER_NAME_MAX


def endpoint_name(tenant: str, classifier: str) -> str:
    """One endpoint per tenant/classifier: the isolation boundary for serving."""
    validate_id(tenant, "tenant id")
    validate_id(classifier, "classifier id")
    return ENDPOINT_NAME_FORMAT.format(tenant, classifier)


def model_name(tenant: str, classifier: str, run: str) -> str:
    return _bounded(_run_name(tenant, classifier, run), SAGEMAKER_NAME_MAX)


def endpoint_config_name(tenant: str, classifier: str, run: str) -> str:
    return _bounded(_run_name(tenant, classifier, run, "-cfg"), SAGEMAKER_NAME_MAX)


def _name_word(value: str) -> str:
    """Letters and digits of ``value``, every other run of characters one hyphen (never PAIR_SEPARATOR)."""
    return re.sub(r"[^A-Za-z0-9]+", "-", value).strip("-")


def training_execution_name(tenant: str, classifier: str, business_key: str) -> str:
    """Idempotent StartExecution name: the same (tenant, classifier, business key) always maps to one name.

    Standard workflows return the running execution for a repeated name + input, so a duplicated trigger
    (SQS redelivery, a double click) cannot start a second paid training run. Business keys that differ only
    in punctuation (``2026-12-01`` and ``2026/12/01``) name the same run.
    """
    key = _name_word(business_key)
    if not key:
        raise ValueError("business key must contain letters or digits")
    return _bounded(f"{pair_name(tenant, classifier)}{PAIR_SEPARATOR}{key}", EXECUTION_NAME_MAX)


def execution_pair(execution_name: str) -> tuple[str, str] | None:
    """The (tenant, classifier) a training execution name belongs to, or None for a foreign name."""
    parts = execution_name.split(PAIR_SEPARATOR, 2)
    if len(parts) != 3:
        return None
    tenant, classifier = parts[0], parts[1]
    if not (_ID_RE.fullmatch(tenant) and _ID_RE.fullmatch(classifier)):
        return None
    return tenant, classifier


#: Suffix room a training job name needs for ``-{RedriveCount}-{RetryCount}`` (the state machine appends it
#: per redrive and attempt; at most 1,000 redrives and 9 retries).
TRAINING_ATTEMPT_SUFFIX_MAX = 7
#: CloudWatch alarms watched by blue/green endpoint updates (auto-rollback); monitoring creates them
#: per endpoint.
ENDPOINT_ALARM_KINDS = ("invocation-5xx", "model-latency")


def run_id_for_execution(execution_name: str) -> str:
    """The run id of a training execution: its name, shortened (with a digest) to fit RUN_ID_PATTERN."""
    cleaned = re.sub(r"[^A-Za-z0-9-]+", "-", execution_name).strip("-")
    if not cleaned:
        raise ValueError("execution name must contain letters or digits")
    return validate_run_id(_bounded(cleaned, 40))


def training_job_base_name(tenant: str, classifier: str, run: str) -> str:
    """Training job name without the attempt suffix: a retried CreateTrainingJob needs a fresh name."""
    return _bounded(_run_name(tenant, classifier, run), SAGEMAKER_NAME_MAX - TRAINING_ATTEMPT_SUFFIX_MAX)


def endpoint_alarm_names(tenant: str, classifier: str) -> list[str]:
    """Names of the endpoint's rollback alarms, in ENDPOINT_ALARM_KINDS order."""
    return [f"{endpoint_name(tenant, classifier)}-{kind}" for kind in ENDPOINT_ALARM_KINDS]


# Physical names of one deployment ("stack"): ``convclass-<stack>-<what>``. The Pulumi program and the
# embedded local stack both name their resources through here, so the CLI finds the same names in either.
PROJECT = "convclass"
#: Lambda functions the training pipeline calls, and the one that starts runs from the training queue.
PIPELINE_FUNCTIONS = ("plan", "export", "preprocess", "evaluate")
STARTER_FUNCTION = "starter"
TRAINING_WORKFLOW = "training"
INFERENCE_WORKFLOW = "inference"
TRAINING_QUEUE = "training-requests"
INBOUND_QUEUE = "inbound-emails"
TRAIN_CLASSIFIER_RULE = "train-classifier"
#: The feedback loop: its function, the queue its bus rules feed, and the rules.
FEEDBACK_FUNCTION = "feedback"
FEEDBACK_QUEUE = "feedback-events"
FEEDBACK_RULES = ("feedback-confirmations", "feedback-predictions")


#: Where SageMaker writes every training job's log (one stream per job and host).
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"


def lambda_log_group(function_name: str) -> str:
    return f"/aws/lambda/{function_name}"


def stack_resource_name(stack: str, *parts: str, project: str = PROJECT) -> str:
    return "-".join((project, stack, *parts))


def function_handler(function: str) -> str:
    """Lambda image CMD of one function: ``functions/<function>/handler.py`` exports ``handler``."""
    return f"functions.{function}.handler.handler"
