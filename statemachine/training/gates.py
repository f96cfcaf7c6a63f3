"""The gates: the request's validation, the export approval (or a roll back's shortcut past training) and
the deployment approval.

``ValidateInput`` turns the request into the run plan or rejects it (``RequestRejected``: no plan names the
tenant, so the rejection is published with the raw request). An approval gate publishes ``Approval
Requested`` with a task token and waits; a refusal fails the run as ``ApprovalRejected`` (the export gate
records it first: ``RecordExportRefusal``), silence as ``ApprovalTimedOut``.
"""

from __future__ import annotations

from typing import Any

from convclass import events
from statemachine.asl import EVENTS_RETRY, State, catch, lambda_task, put_event
from statemachine.resources import TrainingPipelineResources
from statemachine.training.common import export_action, failure, run_detail
from statemachine.training.names import (
    DEPLOY_APPROVAL_TIMED_OUT,
    ERROR_APPROVAL_REJECTED,
    ERROR_APPROVAL_TIMED_OUT,
    ERROR_INVALID_INPUT,
    ERROR_VALIDATION_FAILED,
    EVALUATE,
    EXPORT_APPROVAL_GATE,
    EXPORT_APPROVAL_TIMED_OUT,
    NO_CHAMPION_SCORED,
    PLAN_EXPORT,
    PUBLISH_FAILURE,
    RECORD_EXPORT_CONSENT,
    RECORD_EXPORT_REFUSAL,
    REPORT_REJECTED_REQUEST,
    REQUEST_DEPLOY_APPROVAL,
    REQUEST_EXPORT_APPROVAL,
    REQUEST_REJECTED,
    TIMEOUTS,
    USE_EARLIER_MODEL,
    VALIDATE_INPUT,
    VALIDATION_UNAVAILABLE,
)
from statemachine.training.settings import PipelineSettings


def _approval(
    bus: str,
    gate: events.Gate,
    settings: PipelineSettings,
    *,
    result_path: str,
    next_state: str,
    timed_out: str,
    rejected: str = PUBLISH_FAILURE,
) -> State:
    detail: dict[str, Any] = {
        "gate": gate,
        "task_token.$": "$$.Task.Token",
        **run_detail(),
        "timeout_seconds": settings.approval_timeout_seconds,
    }
    if gate == "deployment":
        detail["evaluation.$"] = "$.evaluation.result"
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::events:putEvents.waitForTaskToken",
        "Parameters": {
            "Entries": [
                {
                    "EventBusName": bus,
                    "Source": events.PIPELINE_SOURCE,
                    "DetailType": events.APPROVAL_REQUESTED,
                    "Detail": detail,
                }
            ]
        },
        "ResultPath": result_path,
        "TimeoutSeconds": settings.approval_timeout_seconds,
        "Retry": [EVENTS_RETRY],
        "Catch": [
            catch([ERROR_APPROVAL_REJECTED], rejected, "$.failure"),
            catch(TIMEOUTS, timed_out, "$.failure"),
        ],
        "Next": next_state,
    }


def request_states(r: TrainingPipelineResources) -> dict[str, State]:
    """ValidateInput → the plan at ``$.plan``, or ReportRejectedRequest → RequestRejected."""
    bus = r.event_bus_name
    return {
        VALIDATE_INPUT: lambda_task(
            r.plan_function_arn,
            {
                "request.$": "$",
                "execution_name.$": "$$.Execution.Name",
                "execution.$": "$$.Execution.Id",
                "bucket": r.data_bucket,
                "shared_endpoint": r.shared_endpoint_name,
            },
            result_key="plan",
            result_path="$",
            timeout=60,
            next_state=EXPORT_APPROVAL_GATE,
            # The raw input may not even be an object: the failure replaces it.
            catches=[
                catch([ERROR_INVALID_INPUT], REPORT_REJECTED_REQUEST, "$"),
                catch(["States.ALL"], VALIDATION_UNAVAILABLE, "$"),
            ],
        ),
        VALIDATION_UNAVAILABLE: {
            "Type": "Pass",
            "Parameters": {
                "Error": ERROR_VALIDATION_FAILED,
                "Cause.$": "States.Format('{}: {}', $.Error, $.Cause)",
            },
            "Next": REPORT_REJECTED_REQUEST,
        },
        REPORT_REJECTED_REQUEST: put_event(
            bus,
            events.PIPELINE_SOURCE,
            events.RUN_FAILED,
            {
                "outcome": "failed",
                "execution.$": "$$.Execution.Id",
                "error.$": "$.Error",
                "cause.$": "$.Cause",
                "request.$": "$$.Execution.Input",
            },
            next_state=REQUEST_REJECTED,
            catches=[catch(["States.ALL"], REQUEST_REJECTED, None)],
        ),
        REQUEST_REJECTED: {"Type": "Fail", "ErrorPath": "$.Error", "CausePath": "$.Cause"},
    }


def export_gate_states(r: TrainingPipelineResources, s: PipelineSettings) -> dict[str, State]:
    """ExportApprovalGate: a roll back skips to Evaluate with the earlier model; an export that needs the
    tenant's approval waits for it (and records the answer); any other run goes straight to PlanExport."""
    return {
        EXPORT_APPROVAL_GATE: {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.plan.redeploy_only", "BooleanEquals": True, "Next": USE_EARLIER_MODEL},
                {
                    "Variable": "$.plan.export_approval",
                    "BooleanEquals": True,
                    "Next": REQUEST_EXPORT_APPROVAL,
                },
            ],
            "Default": PLAN_EXPORT,
        },
        # A roll back: the earlier model stands where a training job's result would, and goes through the
        # same comparison (never blocking: the plan sets its thresholds) and deployment steps.
        USE_EARLIER_MODEL: {
            "Type": "Pass",
            "Parameters": {
                "job_name.$": "$.plan.request.redeploy.training_job_name",
                "status": "Completed",
                "model_artifacts.$": "$.plan.request.redeploy.model_artifacts",
            },
            "ResultPath": "$.training",
            "Next": NO_CHAMPION_SCORED,
        },
        # Nothing was trained, so no champion was scored against it (Evaluate reads FindChampion's answer).
        NO_CHAMPION_SCORED: {
            "Type": "Pass",
            "Result": {"result": {"model_artifacts": None}},
            "ResultPath": "$.champion",
            "Next": EVALUATE,
        },
        REQUEST_EXPORT_APPROVAL: _approval(
            r.event_bus_name,
            "export",
            s,
            result_path="$.export_approval",
            next_state=RECORD_EXPORT_CONSENT,
            timed_out=EXPORT_APPROVAL_TIMED_OUT,
            rejected=RECORD_EXPORT_REFUSAL,
        ),
        RECORD_EXPORT_CONSENT: export_action(
            r,
            s,
            "consent",
            {"answer.$": "$.export_approval"},
            result_path="$.consent",
            next_state=PLAN_EXPORT,
        ),
        RECORD_EXPORT_REFUSAL: export_action(
            r,
            s,
            "refuse",
            {"answer.$": "$.failure.Cause"},
            result_path="$.consent",
            next_state=PUBLISH_FAILURE,
            # The run fails as ApprovalRejected either way: a refusal that could not be stored is kept apart.
            on_error=(PUBLISH_FAILURE, "$.consent_error"),
            on_error_names=["States.ALL"],
        ),
        EXPORT_APPROVAL_TIMED_OUT: failure(
            ERROR_APPROVAL_TIMED_OUT,
            "States.Format('export approval got no answer in time ({})', $.failure.Error)",
        ),
    }


def deploy_gate_states(r: TrainingPipelineResources, s: PipelineSettings, deploy: str) -> dict[str, State]:
    """RequestDeployApproval: the approved model goes on to ``deploy`` (the deployment's first state)."""
    return {
        REQUEST_DEPLOY_APPROVAL: _approval(
            r.event_bus_name,
            "deployment",
            s,
            result_path="$.deploy_approval",
            next_state=deploy,
            timed_out=DEPLOY_APPROVAL_TIMED_OUT,
        ),
        DEPLOY_APPROVAL_TIMED_OUT: failure(
            ERROR_APPROVAL_TIMED_OUT,
            "States.Format('deployment approval got no answer in time ({})', $.failure.Error)",
        ),
    }
