"""Training runs: start, list, describe and redrive executions of the training pipeline.

A run is a Step Functions execution named after its tenant, classifier and business key, so starting one
twice gets the same run and listing filters on names alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from convclass import layout
from convclass.events import TrainingRunRequest, execution_name
from convclass.operator.clients import OperatorError, StackClients, credentials
from convclass.operator.history import json_or_none, pending_state, training_jobs


class ExecutionNotFound(OperatorError):
    """The execution named or ARN given does not exist in the training pipeline."""


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


class Runs(StackClients):
    """The training pipeline's executions, by name or ARN."""

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
        with credentials():
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
        jobs = tuple(training_jobs(history))
        summary = RunSummary(
            name=described["name"],
            arn=arn,
            status=described["status"],
            started=described.get("startDate"),
            stopped=described.get("stopDate"),
        )
        return RunDetail(
            summary=summary,
            input=json_or_none(described.get("input")) or {},
            output=json_or_none(described.get("output")),
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
