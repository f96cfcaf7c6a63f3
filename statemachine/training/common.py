"""State builders more than one section uses: named failures, the run's event detail, cost tags, export
actions and the published outcome."""

from __future__ import annotations

from typing import Any

from convclass import events
from convclass.events import ExportStep
from statemachine.asl import State, catch, lambda_task, put_event
from statemachine.resources import TrainingPipelineResources
from statemachine.training.names import (
    FINAL_ERRORS,
    PUBLISH_FAILURE,
)
from statemachine.training.settings import PipelineSettings


def failure(error: str, cause_path: str, next_state: str = PUBLISH_FAILURE) -> State:
    """A Pass state that names the failure (the Fail state reads $.failure)."""
    return {
        "Type": "Pass",
        "Parameters": {"Error": error, "Cause.$": cause_path},
        "ResultPath": "$.failure",
        "Next": next_state,
    }


def run_detail() -> dict[str, Any]:
    return {
        "execution.$": "$$.Execution.Id",
        "tenant.$": "$.plan.tenant",
        "classifier.$": "$.plan.classifier",
        "run_id.$": "$.plan.run_id",
    }


def cost_tags(*, per_run: bool = True) -> list[dict[str, str]]:
    """Cost-allocation tags; the endpoint outlives runs, so it is not tagged with one."""
    tags = [
        {"Key": "convclass:tenant", "Value.$": "$.plan.tenant"},
        {"Key": "convclass:classifier", "Value.$": "$.plan.classifier"},
    ]
    if per_run:
        tags.append({"Key": "convclass:run", "Value.$": "$.plan.run_id"})
    return tags


def export_step_fields() -> dict[str, Any]:
    """The run's export step (``$.plan.export``), field by field, as an export-function payload."""
    return {f"{name}.$": f"$.plan.export.{name}" for name in ExportStep.model_fields}


def export_action(
    r: TrainingPipelineResources,
    settings: PipelineSettings,
    action: str,
    extra: dict[str, Any],
    *,
    result_path: str,
    next_state: str,
    on_error: tuple[str, str] = (PUBLISH_FAILURE, "$.failure"),
    on_error_names: list[str] = FINAL_ERRORS,
    catches: list[State] | None = None,
) -> State:
    """An export-function action on this run's export step (commit, recording the export gate's answer).

    ``on_error`` catches ``on_error_names`` (default: the final step errors; other errors fail the run at
    this step, to be redriven); ``catches`` replaces that one catcher."""
    return lambda_task(
        r.export_function_arn,
        {**export_step_fields(), "action": action, **extra},
        result_path=result_path,
        timeout=settings.lambda_timeout_seconds,
        next_state=next_state,
        catches=catches or [catch(on_error_names, on_error[0], on_error[1])],
    )


def publish_outcome(
    r: TrainingPipelineResources, detail_type: str, outcome: str, detail: dict[str, Any], *, then: str
) -> State:
    """Publish the run's outcome on the bus, then go on to ``then`` whether or not the event got out: the
    outcome happened either way, and a lost notification must not change it."""
    return put_event(
        r.event_bus_name,
        events.PIPELINE_SOURCE,
        detail_type,
        {"outcome": outcome, **run_detail(), **detail},
        next_state=then,
        catches=[catch(["States.ALL"], then, "$.publish_error")],
    )
