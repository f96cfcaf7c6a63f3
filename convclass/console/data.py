"""Everything a console page reads, for exactly one tenant.

Every object is reached through the tenant of the verified token, never through an id alone:

* S3 keys are built by :class:`convclass.layout.ClassifierLayout` for ``(tenant, classifier)``, so a key of
  another tenant cannot be named;
* an execution is shown only if its input (the :class:`~convclass.events.TrainingRunRequest`) names the
  tenant; names are only a pre-filter;
* endpoint and schedule names come from the tenant's ids, and a schedule's target input is checked too.

Anything that is not the tenant's, does not exist or is malformed raises :class:`NotFound` (a 404 page);
the two are indistinguishable to the caller on purpose.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from convclass import errors, layout
from convclass.artifacts import ARTIFACT_FILE, METRICS_FILE, REPORT_DIR, ArtifactInfo, ModelMetrics
from convclass.dataset.manifest import DatasetManifest
from convclass.errors import ConvclassError
from convclass.events import ChampionRecord, EvaluationResult, TrainingRunRequest
from convclass.export.consent import ConsentRecord
from convclass.operator import Operator
from convclass.operator.endpoints import EndpointInfo
from convclass.operator.history import find_value
from convclass.operator.runs import ExecutionNotFound, RunDetail, RunSummary
from statemachine.training import names as sm

MODEL_TAR = "model.tar.gz"
_SUMMARY_MD = f"{REPORT_DIR}/summary.md"
_WANTED_MEMBERS = (METRICS_FILE, ARTIFACT_FILE, _SUMMARY_MD)
_EXECUTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
#: How many of a tenant's newest runs the pages look at.
RUN_LIMIT = 100
_MODEL_CACHE_SIZE = 32


class NotFound(ConvclassError):
    """The object does not exist or is not the caller's tenant's (the console answers 404 either way)."""


# --- plain-language states --------------------------------------------------------------------------------
_STATE_WORDS: Mapping[str, str] = {
    sm.VALIDATE_INPUT: "starting",
    sm.EXPORT_APPROVAL_GATE: "starting",
    sm.USE_EARLIER_MODEL: "rolling back to an earlier model",
    sm.REQUEST_EXPORT_APPROVAL: "collecting consent: awaiting your approval to use your data",
    sm.EXPORT: "exporting your labelled emails",
    sm.PREPROCESS: "preparing the training data",
    sm.TRAIN: "training",
    sm.EVALUATE: "comparing the new model with the one in production",
    sm.DEPLOY_DECISION: "comparing the new model with the one in production",
    sm.REQUEST_DEPLOY_APPROVAL: "awaiting your approval to deploy the new model",
}
_DEPLOYING = {
    sm.CREATE_MODEL,
    sm.CREATE_ENDPOINT_CONFIG,
    sm.CREATE_OR_UPDATE_ENDPOINT,
    sm.CREATE_ENDPOINT,
    sm.UPDATE_ENDPOINT,
    sm.WAIT_FOR_ENDPOINT,
    sm.DESCRIBE_ENDPOINT,
    sm.CHECK_ENDPOINT,
    sm.COUNT_POLL,
    sm.WRITE_CHAMPION,
}
#: Why a run failed, from its named error, in words a customer understands.
ERROR_WORDS: Mapping[str, str] = {
    sm.ERROR_APPROVAL_REJECTED: "the approval was rejected",
    sm.ERROR_APPROVAL_TIMED_OUT: "the approval got no answer in time",
    sm.ERROR_TRAINING_FAILED: "training failed",
    sm.ERROR_TRAINING_STOPPED: "training was stopped before it finished",
    sm.ERROR_DEPLOYMENT_FAILED: "the new model could not be deployed; the previous one keeps serving",
    sm.ERROR_INVALID_INPUT: "the run request was invalid",
    sm.ERROR_VALIDATION_FAILED: "the run request could not be checked",
    errors.SageMakerTransient.__name__: "SageMaker kept failing; the run can be resumed where it stopped",
    "ExportNotApproved": "your approval to use your data is missing or was withdrawn",
    "SourceUnavailable": "your conversation store could not be reached",
    "InsufficientData": "there were not enough labelled emails to train",
    "Interrupted": "the run was stopped",
}


def state_in_words(detail: RunDetail) -> tuple[str, str]:
    """(words, tone) for a run: tone is ``active``, ``waiting``, ``ok`` or ``failed``."""
    status = detail.summary.status
    if status == "RUNNING":
        current = detail.current_state or ""
        if detail.pending_token:
            gate = str((detail.pending_request or {}).get("gate", ""))
            if gate == "export":
                return _STATE_WORDS[sm.REQUEST_EXPORT_APPROVAL], "waiting"
            return _STATE_WORDS[sm.REQUEST_DEPLOY_APPROVAL], "waiting"
        if current in _DEPLOYING:
            return "deploying the new model", "active"
        return _STATE_WORDS.get(current, "running"), "active"
    if status == "SUCCEEDED":
        outcome = find_value(detail.output, "outcome")
        if outcome == "insufficient_data":
            return "ended without training: " + ERROR_WORDS["InsufficientData"], "failed"
        return "deployed", "ok"
    error = detail.error or status
    return f"failed: {ERROR_WORDS.get(error, error)}", "failed"


# --- views ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """One state of a run's timeline."""

    name: str
    entered: datetime
    exited: datetime | None
    attempts: int
    failures: int
    outcome: str

    @property
    def seconds(self) -> float | None:
        return (self.exited - self.entered).total_seconds() if self.exited else None


@dataclass(frozen=True)
class Run:
    """A run of the tenant, with what the pages show about it."""

    detail: RunDetail
    request: TrainingRunRequest
    words: str
    tone: str

    @property
    def name(self) -> str:
        return self.detail.summary.name

    @property
    def classifier(self) -> str:
        return self.request.classifier

    @property
    def run_id(self) -> str:
        return layout.run_id_for_execution(self.name)

    @property
    def gate(self) -> str | None:
        if not self.detail.pending_token:
            return None
        return str((self.detail.pending_request or {}).get("gate", "")) or None

    @property
    def approval_id(self) -> str | None:
        """A digest of the pending task token: a form answers the gate it was rendered for, never the next."""
        token = self.detail.pending_token
        return hashlib.sha256(token.encode()).hexdigest()[:32] if token else None

    @property
    def evaluation(self) -> EvaluationResult | None:
        document = (self.detail.pending_request or {}).get("evaluation") or find_value(
            self.detail.output, "evaluation"
        )
        try:
            return EvaluationResult.model_validate(document) if isinstance(document, Mapping) else None
        except ValidationError:
            return None


@dataclass(frozen=True)
class ModelRef:
    run_id: str
    key: str
    etag: str
    modified: datetime


@dataclass(frozen=True)
class ModelCard:
    ref: ModelRef
    metrics: ModelMetrics
    info: ArtifactInfo | None
    epochs: list[dict[str, float]]
    dataset: DatasetManifest | None
    evaluation: EvaluationResult | None
    run: Run | None


@dataclass
class _ModelFiles:
    metrics: ModelMetrics
    info: ArtifactInfo | None
    epochs: list[dict[str, float]] = field(default_factory=list)


class _ModelCache:
    """Small, bounded cache of the files read out of model archives, keyed by S3 key and ETag."""

    def __init__(self, size: int = _MODEL_CACHE_SIZE) -> None:
        self._items: OrderedDict[tuple[str, str], _ModelFiles] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> _ModelFiles | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[str, str], value: _ModelFiles) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_MODELS = _ModelCache()
_INPUTS: dict[str, TrainingRunRequest | None] = {}
_INPUTS_LOCK = threading.Lock()


class TenantView:
    """Reads for one tenant through the operator's clients; raises ``NotFound`` for anything else."""

    def __init__(self, operator: Operator, tenant: str, *, schedule_group: str | None = None) -> None:
        self.operator = operator
        self.tenant = layout.validate_id(tenant, "tenant id")
        self.schedule_group = schedule_group
        self.bucket = operator.outputs.require("data_bucket")

    # --- ids ------------------------------------------------------------------------------------------
    def where(self, classifier: str) -> layout.ClassifierLayout:
        try:
            return layout.ClassifierLayout(self.tenant, classifier)
        except ValueError:
            raise NotFound("no such classifier") from None

    def classifiers(self) -> list[str]:
        """The tenant's classifiers: those with data in the bucket and those with runs."""
        s3 = self.operator.client("s3")
        prefix = f"{layout.TENANTS_ROOT}{self.tenant}/classifiers/"
        found: set[str] = set()
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, Delimiter="/"
        ):
            for item in page.get("CommonPrefixes", []):
                candidate = item["Prefix"][len(prefix) :].rstrip("/")
                if re.fullmatch(layout.ID_PATTERN, candidate):
                    found.add(candidate)
        found.update(summary_request.classifier for _, summary_request in self._run_summaries())
        return sorted(found)

    # --- runs -----------------------------------------------------------------------------------------
    def _request_of(self, arn: str) -> TrainingRunRequest | None:
        """The execution's validated input (immutable, so cached by ARN); ``None`` if it is not a request."""
        with _INPUTS_LOCK:
            if arn in _INPUTS:
                return _INPUTS[arn]
        try:
            described = self.operator.client("stepfunctions").describe_execution(executionArn=arn)
        except ClientError:
            return None
        try:
            request: TrainingRunRequest | None = TrainingRunRequest.model_validate_json(described["input"])
        except (ValidationError, KeyError, TypeError):
            request = None
        with _INPUTS_LOCK:
            _INPUTS[arn] = request
        return request

    def _run_summaries(
        self, classifier: str | None = None
    ) -> Iterator[tuple[RunSummary, TrainingRunRequest]]:
        """The tenant's runs, newest first; the name prefix filters, the input decides."""
        for summary in self.operator.runs(self.tenant, None, limit=RUN_LIMIT):
            request = self._request_of(summary.arn)
            if request is None or request.tenant != self.tenant:
                continue
            if classifier is not None and request.classifier != classifier:
                continue
            yield summary, request

    def runs(self, classifier: str | None = None) -> list[tuple[RunSummary, TrainingRunRequest]]:
        return list(self._run_summaries(classifier))

    def run(self, name: str) -> Run:
        """One run of the tenant by execution name; ``NotFound`` if it is not the tenant's."""
        if not _EXECUTION_NAME.fullmatch(name):
            raise NotFound("no such run")
        arn = self.operator.execution_arn(name)
        request = self._request_of(arn)
        if request is None or request.tenant != self.tenant:
            raise NotFound("no such run")
        try:
            detail = self.operator.describe_run(arn)
        except ExecutionNotFound:
            raise NotFound("no such run") from None
        words, tone = state_in_words(detail)
        return Run(detail=detail, request=request, words=words, tone=tone)

    def latest_run(self, classifier: str) -> Run | None:
        for summary, _ in self._run_summaries(classifier):
            return self.run(summary.name)
        return None

    def pending(self) -> list[Run]:
        """Runs of the tenant waiting at an approval gate."""
        waiting = []
        for summary, _ in self._run_summaries():
            if summary.status == "RUNNING":
                run = self.run(summary.name)
                if run.gate:
                    waiting.append(run)
        return waiting

    def timeline(self, run: Run) -> list[Step]:
        return timeline(self.operator.history(run.detail.summary.arn))

    def run_for_model(self, classifier: str, run_id: str) -> Run | None:
        for summary, _ in self._run_summaries(classifier):
            if layout.run_id_for_execution(summary.name) == run_id:
                return self.run(summary.name)
        return None

    # --- S3 documents ---------------------------------------------------------------------------------
    def _get(self, key: str, version: str | None = None) -> bytes | None:
        s3 = self.operator.client("s3")
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version:
            kwargs["VersionId"] = version
        try:
            return bytes(s3.get_object(**kwargs)["Body"].read())
        except ClientError as exc:
            # The console may list key names only under tenants' classifier prefixes (not bucket-wide, so one
            # tenant's page cannot enumerate the bucket), and S3 then answers a missing key with AccessDenied.
            if exc.response.get("Error", {}).get("Code") in {
                "NoSuchKey",
                "404",
                "NoSuchVersion",
                "AccessDenied",
            }:
                return None
            raise

    def consent(self, classifier: str) -> ConsentRecord | None:
        body = self._get(self.where(classifier).consent_key)
        try:
            return ConsentRecord.model_validate_json(body) if body else None
        except ValidationError:
            return None

    def champion(self, classifier: str) -> ChampionRecord | None:
        body = self._get(self.where(classifier).champion_key)
        try:
            return ChampionRecord.model_validate_json(body) if body else None
        except ValidationError:
            return None

    def deployments(self, classifier: str, limit: int = 50) -> list[ChampionRecord]:
        """Every model the pipeline deployed, newest first (the versions of the versioned champion.json)."""
        key = self.where(classifier).champion_key
        s3 = self.operator.client("s3")
        versions = s3.list_object_versions(Bucket=self.bucket, Prefix=key).get("Versions", [])
        records = []
        for version in versions[:limit]:
            if version["Key"] != key:
                continue
            body = self._get(key, version.get("VersionId"))
            try:
                records.append(ChampionRecord.model_validate_json(body or b""))
            except ValidationError:
                continue
        records.sort(key=lambda record: record.deployed_at, reverse=True)
        return records

    def endpoint(self, classifier: str) -> EndpointInfo | None:
        self.where(classifier)
        try:
            return self.operator.endpoint(self.tenant, classifier)
        except ConvclassError:
            return None

    def schedule(self, classifier: str) -> str | None:
        """The classifier's retraining schedule expression, if the stack schedules it."""
        if not self.schedule_group:
            return None
        self.where(classifier)
        try:
            found = self.operator.client("scheduler").get_schedule(
                Name=f"retrain-{self.tenant}-{classifier}", GroupName=self.schedule_group
            )
        except ClientError:
            return None
        try:
            request = TrainingRunRequest.model_validate_json(found["Target"]["Input"])
        except (ValidationError, KeyError, TypeError):
            return None
        if (request.tenant, request.classifier) != (self.tenant, classifier):
            return None
        expression = str(found.get("ScheduleExpression", ""))
        timezone = found.get("ScheduleExpressionTimezone")
        return f"{expression} ({timezone})" if timezone else expression

    def dataset(self, classifier: str, run_id: str) -> DatasetManifest | None:
        try:
            key = self.where(classifier).dataset_manifest_key(run_id)
        except ValueError:
            raise NotFound("no such run") from None
        body = self._get(key)
        try:
            return DatasetManifest.model_validate_json(body) if body else None
        except ValidationError:
            return None

    # --- models ---------------------------------------------------------------------------------------
    def models(self, classifier: str) -> list[ModelRef]:
        """Every trained model of the classifier, newest first."""
        prefix = self.where(classifier).area_prefix(layout.MODELS)
        return self._model_refs(prefix)

    def model(self, classifier: str, run_id: str) -> ModelRef:
        try:
            prefix = self.where(classifier).model_output_prefix(run_id)
        except ValueError:
            raise NotFound("no such model") from None
        refs = self._model_refs(prefix)
        if not refs:
            raise NotFound("no such model")
        return refs[0]

    def _model_refs(self, prefix: str) -> list[ModelRef]:
        s3 = self.operator.client("s3")
        refs = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                if not key.endswith("/" + MODEL_TAR):
                    continue
                refs.append(
                    ModelRef(
                        run_id=_run_of_model_key(key),
                        key=key,
                        etag=str(item.get("ETag", "")),
                        modified=item["LastModified"],
                    )
                )
        refs.sort(key=lambda ref: ref.modified, reverse=True)
        return refs

    def model_files(self, ref: ModelRef) -> _ModelFiles:
        cached = _MODELS.get((ref.key, ref.etag))
        if cached is not None:
            return cached
        body = self._get(ref.key)
        if body is None:
            raise NotFound("no such model")
        files = _read_model_files(body)
        _MODELS.put((ref.key, ref.etag), files)
        return files

    def model_card(self, classifier: str, run_id: str) -> ModelCard:
        ref = self.model(classifier, run_id)
        files = self.model_files(ref)
        run = self.run_for_model(classifier, run_id)
        evaluation = None
        if run is not None:
            evaluation = run.evaluation or _evaluation_from_history(
                self.operator.history(run.detail.summary.arn)
            )
        return ModelCard(
            ref=ref,
            metrics=files.metrics,
            info=files.info,
            epochs=files.epochs,
            dataset=self.dataset(classifier, run_id),
            evaluation=evaluation,
            run=run,
        )


def model_run(record: ChampionRecord) -> str:
    """The run that trained a deployed model (a roll back deploys an earlier run's model under a new run)."""
    try:
        return _run_of_model_key(layout.parse_s3_uri(record.model_artifacts)[1])
    except (ValueError, IndexError):
        return record.run_id


def _run_of_model_key(key: str) -> str:
    """``tenants/T/classifiers/C/models/RUN/<job>/output/model.tar.gz`` → ``RUN``."""
    parts = key.split("/")
    return parts[parts.index(layout.MODELS) + 1]


def _read_model_files(body: bytes) -> _ModelFiles:
    """metrics.json, artifact.json and the report's epoch table out of a model archive (streamed, nothing
    written to disk)."""
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(body), mode="r|gz") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if name in _WANTED_MEMBERS and member.isfile():
                    extracted = tar.extractfile(member)
                    if extracted is not None:
                        found[name] = extracted.read()
                if len(found) == len(_WANTED_MEMBERS):
                    break
    except (tarfile.TarError, OSError, EOFError):
        raise NotFound("the model archive cannot be read") from None
    if METRICS_FILE not in found:
        raise NotFound("the model archive has no metrics")
    try:
        metrics = ModelMetrics.model_validate_json(found[METRICS_FILE])
        info = ArtifactInfo.model_validate_json(found[ARTIFACT_FILE]) if ARTIFACT_FILE in found else None
    except ValidationError:
        raise NotFound("the model archive's metrics are invalid") from None
    return _ModelFiles(metrics=metrics, info=info, epochs=parse_epochs(found.get(_SUMMARY_MD, b"").decode()))


_EPOCH_ROW = re.compile(r"^\|\s*(\d+)\s*\|(.*)\|\s*$")
_EPOCH_COLUMNS = ("loss", "accuracy", "val_loss", "val_accuracy")


def parse_epochs(summary_md: str) -> list[dict[str, float]]:
    """The per-epoch table of the training report (``report/summary.md``, see convclass.training.report)."""
    rows: list[dict[str, float]] = []
    in_table = False
    for line in summary_md.splitlines():
        if line.startswith("## "):
            in_table = line.strip() == "## Epochs"
            continue
        match = _EPOCH_ROW.match(line) if in_table else None
        if not match:
            continue
        row: dict[str, float] = {"epoch": float(match.group(1))}
        for name, cell in zip(_EPOCH_COLUMNS, match.group(2).split("|"), strict=False):
            try:
                row[name] = float(cell.strip())
            except ValueError:
                continue
        rows.append(row)
    return rows


def _evaluation_from_history(history: list[dict[str, Any]]) -> EvaluationResult | None:
    for event in history:
        details = event.get("stateExitedEventDetails") or {}
        if details.get("name") != sm.EVALUATE:
            continue
        try:
            document = json.loads(details.get("output") or "{}")
            return EvaluationResult.model_validate((document.get("evaluation") or {}).get("result"))
        except (ValueError, ValidationError, AttributeError):
            return None
    return None


def timeline(history: list[dict[str, Any]]) -> list[Step]:
    """The run's states in order, with times, attempts (retries), failures and how each one ended."""
    steps: list[Step] = []
    open_step: dict[str, Any] | None = None

    def close(exited: datetime | None, outcome: str) -> None:
        nonlocal open_step
        if open_step is not None:
            steps.append(Step(exited=exited, outcome=outcome, **open_step))
            open_step = None

    for event in history:
        kind = str(event.get("type", ""))
        when = event.get("timestamp")
        if kind.endswith("StateEntered"):
            close(when, "left")
            name = str((event.get("stateEnteredEventDetails") or {}).get("name", "?"))
            open_step = {"name": name, "entered": when, "attempts": 0, "failures": 0}
        elif open_step is not None and kind.endswith("Scheduled"):
            open_step["attempts"] += 1
        elif open_step is not None and (kind.endswith(("Failed", "TimedOut"))):
            if not kind.startswith("Execution"):
                open_step["failures"] += 1
        elif kind.endswith("StateExited"):
            close(
                when,
                "failed" if open_step and open_step["failures"] >= max(1, open_step["attempts"]) else "ok",
            )
        elif kind.startswith("Execution") and kind != "ExecutionStarted":
            close(when, kind.removeprefix("Execution").lower())
    if open_step is not None:
        steps.append(Step(exited=None, outcome="running", **open_step))
    return steps
