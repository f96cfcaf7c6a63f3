"""What an operator does with a deployed convclass stack, through plain boto3: the typed core behind the CLI.

Every call goes to the AWS account (or embedded AWS) that boto3's usual configuration points at; names and
keys come from :mod:`convclass.layout` and resource ARNs from the stack outputs, so this code runs unchanged
against a real deployment and against the embedded AWS of ``convclass-local``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

from convclass import layout
from convclass.errors import ApprovalRejected, ConvclassError, InvalidInput, UnknownTenant
from convclass.events import TrainingRunRequest, execution_name
from convclass.stack import StackOutputs

_TOKEN_KEY = re.compile(r"task_?token", re.IGNORECASE)


class OperatorError(ConvclassError):
    """A request to AWS that cannot be carried out, with a message meant for the operator."""


class NoCredentials(OperatorError):
    """boto3 found no AWS credentials or region."""


class ExecutionNotFound(OperatorError):
    """The execution named or ARN given does not exist in the training pipeline."""


class NoPendingApproval(OperatorError):
    """The execution is not waiting at an approval gate."""


@dataclass(frozen=True)
class RunSummary:
    name: str
    arn: str
    status: str
    started: datetime | None
    stopped: datetime | None


@dataclass(frozen=True)
class RunDetail:
    summary: RunSummary
    input: dict[str, Any]
    output: dict[str, Any] | None
    error: str | None
    cause: str | None
    current_state: str | None
    pending_token: str | None
    #: What the pending approval request says (gate, evaluation ...), as published to the approver.
    pending_request: dict[str, Any] | None
    training_jobs: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class EndpointInfo:
    name: str
    status: str
    config_name: str | None
    failure_reason: str | None


def _json_or_none(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else {"value": value}


def _find_token(value: Any) -> str | None:
    """A task token anywhere in a task's parameters (the approval request carries it to the approver)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(item, str) and _TOKEN_KEY.search(str(key)):
                return item
            if isinstance(item, str) and item.startswith("{"):
                item = _json_or_none(item)
            found = _find_token(item)
            if found:
                return found
    elif isinstance(value, list):
        for item in value:
            found = _find_token(item)
            if found:
                return found
    return None


@contextmanager
def _credentials() -> Iterator[None]:
    """boto3 finds credentials only when a request is made: name the problem there."""
    try:
        yield
    except NoCredentialsError as exc:
        raise NoCredentials(
            "no AWS credentials found: configure a profile (AWS_PROFILE), environment credentials or SSO"
        ) from exc


class Operator:
    """Operator actions on one stack. Construct with the stack outputs; clients are created lazily."""

    def __init__(self, outputs: StackOutputs, *, session: Any = None) -> None:
        self.outputs = outputs
        self._session = session or boto3.Session(region_name=outputs.region)
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            try:
                self._clients[service] = self._session.client(service)
            except NoRegionError as exc:
                raise NoCredentials(
                    "no AWS region configured: set AWS_REGION or the stack outputs' 'region'"
                ) from exc
        return self._clients[service]

    def _call(self, service: str, operation: str, **kwargs: Any) -> Any:
        with _credentials():
            return getattr(self.client(service), operation)(**kwargs)

    # --- training runs -------------------------------------------------------------------------------------
    @property
    def training_state_machine(self) -> str:
        return self.outputs.require("training_state_machine_arn")

    def execution_arn(self, name_or_arn: str) -> str:
        if name_or_arn.startswith("arn:"):
            return name_or_arn
        base = self.training_state_machine.replace(":stateMachine:", ":execution:", 1)
        return f"{base}:{name_or_arn}"

    def start_training(self, request: TrainingRunRequest) -> str:
        """StartExecution under the request's idempotent name: a repeated trigger gets the running run."""
        name = execution_name(request)
        try:
            response = self._call(
                "stepfunctions",
                "start_execution",
                stateMachineArn=self.training_state_machine,
                name=name,
                input=request.model_dump_json(exclude_none=True),
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ExecutionAlreadyExists":
                raise OperatorError(
                    f"a run named {name!r} already exists with a different input or has finished; "
                    "use another --business-key to start a new run"
                ) from exc
            raise
        return str(response["executionArn"])

    def runs(
        self, tenant: str | None = None, classifier: str | None = None, limit: int = 50
    ) -> list[RunSummary]:
        """Training runs, newest first; filtered by the exact tenant/classifier their names carry."""
        if tenant is not None:
            layout.validate_id(tenant, "tenant id")
        if classifier is not None:
            layout.validate_id(classifier, "classifier id")

        def wanted(name: str) -> bool:
            pair = layout.execution_pair(name)
            if pair is None:
                return tenant is None and classifier is None
            return tenant in (None, pair[0]) and classifier in (None, pair[1])

        found: list[RunSummary] = []
        paginator = self.client("stepfunctions").get_paginator("list_executions")
        with _credentials():
            for page in paginator.paginate(stateMachineArn=self.training_state_machine):
                for item in page.get("executions", []):
                    if wanted(item["name"]):
                        found.append(
                            RunSummary(
                                name=item["name"],
                                arn=item["executionArn"],
                                status=item["status"],
                                started=item.get("startDate"),
                                stopped=item.get("stopDate"),
                            )
                        )
        found.sort(key=lambda run: run.started or datetime.min, reverse=True)
        return found[:limit]

    def describe_run(self, name_or_arn: str) -> RunDetail:
        arn = self.execution_arn(name_or_arn)
        try:
            described = self._call("stepfunctions", "describe_execution", executionArn=arn)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"ExecutionDoesNotExist", "InvalidArn"}:
                raise ExecutionNotFound(f"no training run {name_or_arn!r} in this stack") from exc
            raise
        history = list(self._history(arn))
        current, token, request = pending_state(history)
        jobs = tuple(_training_jobs(history))
        summary = RunSummary(
            name=described["name"],
            arn=arn,
            status=described["status"],
            started=described.get("startDate"),
            stopped=described.get("stopDate"),
        )
        return RunDetail(
            summary=summary,
            input=_json_or_none(described.get("input")) or {},
            output=_json_or_none(described.get("output")),
            error=described.get("error"),
            cause=described.get("cause"),
            current_state=current if described["status"] == "RUNNING" else None,
            pending_token=token if described["status"] == "RUNNING" else None,
            pending_request=request if described["status"] == "RUNNING" else None,
            training_jobs=jobs,
        )

    def redrive(self, name_or_arn: str) -> str:
        """RedriveExecution: resume a failed run at the state that did not complete; returns its ARN."""
        arn = self.execution_arn(name_or_arn)
        try:
            self._call("stepfunctions", "redrive_execution", executionArn=arn)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in {"ExecutionDoesNotExist", "InvalidArn"}:
                raise ExecutionNotFound(f"no training run {name_or_arn!r} in this stack") from exc
            if code == "ExecutionNotRedrivable":
                message = exc.response.get("Error", {}).get("Message", "")
                raise OperatorError(f"run {name_or_arn!r} cannot be redriven: {message}") from exc
            raise
        return arn

    def history(self, arn: str) -> list[dict[str, Any]]:
        """The execution's history events, oldest first."""
        return list(self._history(arn))

    def _history(self, arn: str) -> Iterator[dict[str, Any]]:
        paginator = self.client("stepfunctions").get_paginator("get_execution_history")
        for page in paginator.paginate(executionArn=arn):
            yield from page.get("events", [])

    # --- approvals -----------------------------------------------------------------------------------------
    def pending_token(self, name_or_arn: str) -> str:
        detail = self.describe_run(name_or_arn)
        if detail.summary.status != "RUNNING" or not detail.pending_token:
            raise NoPendingApproval(
                f"run {detail.summary.name!r} is {detail.summary.status} and not waiting for an approval"
            )
        return detail.pending_token

    def answer_pending(self, name_or_arn: str, *, approve: bool, approver: str, reason: str = "") -> str:
        """Answer the gate a run waits at; returns the gate's name (``export`` or ``deployment``).

        The run itself records an export gate's answer as the tenant's consent or refusal (whoever answered
        the token, this CLI or another tool), so nothing is written here.
        """
        detail = self.describe_run(name_or_arn)
        if detail.summary.status != "RUNNING" or not detail.pending_token:
            raise NoPendingApproval(
                f"run {detail.summary.name!r} is {detail.summary.status} and not waiting for an approval"
            )
        gate = str((detail.pending_request or {}).get("gate", ""))
        self.answer(detail.pending_token, approve=approve, reason=reason, approver=approver)
        return gate

    def record_consent(
        self, tenant: str, classifier: str, label_field: str | None, *, approver: str, revoke: bool = False
    ) -> str:
        """Record (or revoke) the tenant's approval to train on its conversations; returns the key."""
        from convclass.export.consent import ConsentRecord, record_consent

        now = datetime.now(UTC)
        record = ConsentRecord(
            approved=not revoke,
            approved_by=approver or "operator",
            approved_at=now,
            label_fields=[label_field] if label_field else None,
            revoked_at=now if revoke else None,
        )
        where = layout.ClassifierLayout(tenant, classifier)
        with _credentials():
            return record_consent(
                self.client("s3"),
                self.outputs.require("data_bucket"),
                where,
                record,
                kms_key_arn=self.outputs.kms_key_arn,
            )

    def answer(self, token: str, *, approve: bool, reason: str = "", approver: str = "") -> None:
        """Answer an approval gate: approval resumes the run, rejection fails it as ``ApprovalRejected``.

        The answer carries the approver and reason; at the export gate the run records them with the tenant's
        consent (approval) or refusal (rejection)."""
        try:
            if approve:
                self._call(
                    "stepfunctions",
                    "send_task_success",
                    taskToken=token,
                    output=json.dumps({"approved": True, "approver": approver, "reason": reason}),
                )
            else:
                self._call(
                    "stepfunctions",
                    "send_task_failure",
                    taskToken=token,
                    error=ApprovalRejected.__name__,
                    cause=json.dumps({"approved": False, "approver": approver, "reason": reason}),
                )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in {"TaskDoesNotExist", "InvalidToken", "TaskTimedOut"}:
                raise NoPendingApproval(f"the approval token is not (or no longer) valid: {code}") from exc
            raise

    # --- endpoints -----------------------------------------------------------------------------------------
    def endpoint(self, tenant: str, classifier: str) -> EndpointInfo:
        name = layout.endpoint_name(tenant, classifier)
        try:
            described = self._call("sagemaker", "describe_endpoint", EndpointName=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"ValidationException", "ResourceNotFound"}:
                raise UnknownTenant(
                    f"no endpoint for tenant {tenant!r} classifier {classifier!r} (expected {name!r}); "
                    "has a training run deployed it?"
                ) from exc
            raise
        return EndpointInfo(
            name=name,
            status=str(described.get("EndpointStatus", "")),
            config_name=described.get("EndpointConfigName"),
            failure_reason=described.get("FailureReason"),
        )

    def classify(
        self, tenant: str, classifier: str, emails: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """Send emails to the tenant's endpoint in one batch; returns one prediction per email, in order."""
        if not emails:
            raise InvalidInput("no emails to classify")
        info = self.endpoint(tenant, classifier)
        try:
            response = self._call(
                "sagemaker-runtime",
                "invoke_endpoint",
                EndpointName=info.name,
                ContentType="application/json",
                Accept="application/json",
                Body=json.dumps({"emails": [dict(email) for email in emails]}).encode(),
            )
        except ClientError as exc:
            message = exc.response.get("Error", {}).get("Message", "")
            raise OperatorError(f"endpoint {info.name!r} refused the request: {message}") from exc
        document = json.loads(response["Body"].read())
        predictions = document.get("predictions") if isinstance(document, dict) else None
        if not isinstance(predictions, list):
            raise OperatorError(f"endpoint {info.name!r} answered without predictions")
        return predictions

    # --- logs ----------------------------------------------------------------------------------------------
    def training_log(self, job: str, limit: int = 10_000) -> list[str]:
        """The training job's log lines (CloudWatch Logs, as SageMaker writes them)."""
        logs = self.client("logs")
        lines: list[str] = []
        try:
            streams = self._call(
                "logs",
                "describe_log_streams",
                logGroupName=layout.TRAINING_LOG_GROUP,
                logStreamNamePrefix=f"{job}/",
            )["logStreams"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise OperatorError(f"no logs for training job {job!r}") from exc
            raise
        if not streams:
            raise OperatorError(f"no logs for training job {job!r}")
        for stream in streams:
            kwargs: dict[str, Any] = {
                "logGroupName": layout.TRAINING_LOG_GROUP,
                "logStreamName": stream["logStreamName"],
                "startFromHead": True,
            }
            while len(lines) < limit:
                page = logs.get_log_events(**kwargs)
                lines.extend(event["message"] for event in page.get("events", []))
                token = page.get("nextForwardToken")
                if not page.get("events") or token == kwargs.get("nextToken"):
                    break
                kwargs["nextToken"] = token
        return lines[:limit]


def pending_state(
    history: Sequence[Mapping[str, Any]],
) -> tuple[str | None, str | None, dict[str, Any] | None]:
    """The state a run is in now and, if it waits on a callback task, its token and request document."""
    current: str | None = None
    token: str | None = None
    request: dict[str, Any] | None = None
    for event in history:
        kind = event.get("type", "")
        if kind.endswith("StateEntered"):
            current = event.get("stateEnteredEventDetails", {}).get("name")
            token, request = None, None
        elif kind == "TaskScheduled":
            parameters = _json_or_none(event.get("taskScheduledEventDetails", {}).get("parameters"))
            found = _find_token(parameters)
            if found:
                token, request = found, _token_holder(parameters)
        elif kind in {"TaskSucceeded", "TaskFailed", "TaskTimedOut"} or kind.endswith("StateExited"):
            token, request = None, None
    return current, token, request


def _token_holder(value: Any) -> dict[str, Any] | None:
    """The innermost document that carries the task token (an approval request's ``detail``)."""
    if isinstance(value, Mapping):
        if any(isinstance(item, str) and _TOKEN_KEY.search(str(key)) for key, item in value.items()):
            return dict(value)
        for item in value.values():
            if isinstance(item, str) and item.startswith("{"):
                item = _json_or_none(item)
            found = _token_holder(item)
            if found is not None:
                return found
    elif isinstance(value, list):
        for item in value:
            found = _token_holder(item)
            if found is not None:
                return found
    return None


def _training_jobs(history: Sequence[Mapping[str, Any]]) -> Iterator[str]:
    for event in history:
        if event.get("type") != "TaskScheduled":
            continue
        details = event.get("taskScheduledEventDetails", {})
        if details.get("resourceType") == "sagemaker" and str(details.get("resource", "")).startswith(
            "createTrainingJob"
        ):
            parameters = _json_or_none(details.get("parameters")) or {}
            name = parameters.get("TrainingJobName")
            if isinstance(name, str):
                yield name
