"""Plan Lambda: validate a TrainingRunRequest and compute the run's names and keys (a RunPlan).

The first state of the training pipeline. A request that does not validate raises ``InvalidInput`` naming the
fields at fault (never their values), so the run ends before anything is exported or paid for.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, ValidationError

from convclass.deployment import DATA_BUCKET_ENV
from convclass.errors import InvalidInput
from convclass.events import RunPlan, TrainingRunRequest, plan_run

logger = Logger(service="convclass-plan")


class PlanEvent(BaseModel):
    """What the state machine sends: the raw execution input plus the execution's identity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request: Any
    execution_name: str
    execution: str
    bucket: str
    #: The stack's shared multi-model endpoint (None: the stack has none, ``shared`` runs are refused).
    shared_endpoint: str | None = None


def _problems(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or '<request>'}: {item['msg']}"
        for item in error.errors(include_input=False, include_url=False)
    )


def plan_from_event(event: Any, *, deployed_bucket: str | None = None) -> RunPlan:
    try:
        planned = PlanEvent.model_validate(event)
    except ValidationError as exc:
        raise InvalidInput(f"plan event is invalid: {_problems(exc)}") from None
    if deployed_bucket and planned.bucket != deployed_bucket:
        raise InvalidInput("the plan may only name the data bucket it is deployed with")
    try:
        request = TrainingRunRequest.model_validate(planned.request)
    except ValidationError as exc:
        raise InvalidInput(f"training request is invalid: {_problems(exc)}") from None
    try:
        return plan_run(
            request,
            execution_name=planned.execution_name,
            bucket=planned.bucket,
            shared_endpoint=planned.shared_endpoint,
        )
    except ValueError as exc:
        raise InvalidInput(f"cannot plan this run: {exc}") from None


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    plan = plan_from_event(event, deployed_bucket=os.environ.get(DATA_BUCKET_ENV))
    logger.info(
        "run planned",
        extra={"tenant": plan.tenant, "classifier": plan.classifier, "run_id": plan.run_id},
    )
    return plan.model_dump(mode="json")
