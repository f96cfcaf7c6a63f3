"""The one Lambda adapter around a pipeline step: parse without echoing values → guard the bucket → log ids →
run → dump.

Powertools' ``event_parser`` has this shape; :func:`convclass.errors.validated` parses instead because
pydantic's default error text quotes the input, and an email body must never reach a log. Every log line
carries the step's ids (tenant, classifier, run), never an event or a record.
"""

from __future__ import annotations

import os
from typing import Any, Generic, TypeVar

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from convclass.errors import ConvclassError
from convclass.steps.contract import Step, StepEnvironment

E = TypeVar("E")
R = TypeVar("R", bound=BaseModel)


class _Clients:
    """boto3 clients made on first use and kept for one invocation (endpoints and credentials come from the
    environment each time, so nothing stale outlives it)."""

    def __init__(self) -> None:
        self._made: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._made:
            self._made[service] = boto3.client(service)
        return self._made[service]


class lambda_handler(Generic[E, R]):
    """The Lambda handler that runs ``step``; named errors reach Step Functions under their class names."""

    def __init__(self, step: Step[E, R]) -> None:
        self.step = step
        self.logger = Logger(service=f"convclass-{step.name}")
        self._handle = self.logger.inject_lambda_context(log_event=False, clear_state=True)(self._run)

    def __call__(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        result: dict[str, Any] = self._handle(event, context)
        return result

    def _run(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        env = StepEnvironment(environ=os.environ, client=_Clients())
        parsed = self.step.prepare(event, env.environ)
        self.logger.append_keys(**self.step.log_keys(parsed))
        try:
            result = self.step.run(parsed, env)
        except ConvclassError as error:
            self.logger.warning(
                f"{self.step.name} ended with a named error", extra={"error": type(error).__name__}
            )
            raise
        self.logger.info(f"{self.step.name} done", extra=dict(self.step.summary(result)))
        return result.model_dump(mode="json")
