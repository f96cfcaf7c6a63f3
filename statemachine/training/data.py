"""The data section: plan the export, export the tenant's conversations (one task, or chunks in a Map for
big tenants), and preprocess them into the training dataset.

``PipelineSettings.export_map`` picks the Map's processor: ``distributed`` (every chunk a child execution) on
AWS, ``inline`` where the engine has no Distributed Map (the local run).
"""

from __future__ import annotations

from typing import Any

from convclass import errors, events
from statemachine.asl import State, catch, lambda_task, retry
from statemachine.resources import TrainingPipelineResources
from statemachine.training.common import export_action, export_step_fields, publish_outcome
from statemachine.training.names import (
    ENDED_WITHOUT_TRAINING,
    ERROR_INSUFFICIENT_DATA,
    EXPORT,
    EXPORT_CHUNK,
    EXPORT_CHUNKS,
    EXPORT_SIZE,
    FINAL_ERRORS,
    FINALIZE_EXPORT,
    FIND_CHAMPION,
    PLAN_EXPORT,
    PREPROCESS,
    PUBLISH_FAILURE,
    REPORT_NO_TRAINING,
)
from statemachine.training.settings import PipelineSettings

#: Too little data ends the run cleanly; a final error ends it as failed (anything else: redrivable here).
_DATA_CATCHES = [
    catch([ERROR_INSUFFICIENT_DATA], REPORT_NO_TRAINING, "$.failure"),
    catch(FINAL_ERRORS, PUBLISH_FAILURE, "$.failure"),
]


def _export_task(r: TrainingPipelineResources, s: PipelineSettings, payload: str, **rest: Any) -> State:
    """One export-function call of an export (whole window or one chunk)."""
    return lambda_task(
        r.export_function_arn,
        payload,
        timeout=s.lambda_timeout_seconds,
        # The export already retries inside; an unreachable store gets two more chances a minute apart.
        extra_retries=[retry([errors.SourceUnavailable.__name__], interval=60, attempts=2)],
        **rest,
    )


def _chunk_task(r: TrainingPipelineResources, s: PipelineSettings) -> State:
    """One Map iteration: export one chunk (its errors reach the Map state's catchers)."""
    task = _export_task(r, s, "$", result_path="$", next_state=EXPORT_CHUNK, catches=[])
    del task["Next"], task["Catch"]
    return {**task, "End": True}


def data_states(r: TrainingPipelineResources, s: PipelineSettings) -> dict[str, State]:
    """PlanExport → ExportSize → Export (one task: small tenants) | ExportChunks → FinalizeExport.

    The plan's size rule (``ExportPlan.chunked``) picks the path; both end with the run manifest at the
    same key and its summary at ``$.export``. The Map's chunk results are dropped (``ResultPath: null``): up
    to 500 summaries would not fit the state payload, and FinalizeExport reads the chunk manifests instead.
    Preprocess then builds the dataset from the manifest; too little data ends the run cleanly
    (ReportNoTraining → EndedWithoutTraining).
    """
    processor: State = {"Mode": "INLINE"}
    if s.export_map == "distributed":
        processor = {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    return {
        PLAN_EXPORT: export_action(
            r,
            s,
            "plan",
            {"max_chunks": s.export_max_chunks},
            result_path="$.export_plan",
            next_state=EXPORT_SIZE,
            catches=_DATA_CATCHES,
        ),
        EXPORT_SIZE: {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.export_plan.result.chunked", "BooleanEquals": True, "Next": EXPORT_CHUNKS}
            ],
            "Default": EXPORT,
        },
        EXPORT: _export_task(
            r, s, "$.plan.export", result_path="$.export", next_state=PREPROCESS, catches=_DATA_CATCHES
        ),
        EXPORT_CHUNKS: {
            "Type": "Map",
            "ItemsPath": "$.export_plan.result.chunks",
            "ItemSelector": {**export_step_fields(), "action": "export", "chunk.$": "$$.Map.Item.Value"},
            "MaxConcurrency": s.export_max_concurrency,
            "ItemProcessor": {
                "ProcessorConfig": processor,
                "StartAt": EXPORT_CHUNK,
                "States": {EXPORT_CHUNK: _chunk_task(r, s)},
            },
            "ResultPath": None,
            "Catch": _DATA_CATCHES,
            "Next": FINALIZE_EXPORT,
        },
        FINALIZE_EXPORT: export_action(
            r,
            s,
            "finalize",
            {"window.$": "$.export_plan.result.window", "chunk_count.$": "$.export_plan.result.chunk_count"},
            result_path="$.export",
            next_state=PREPROCESS,
        ),
        PREPROCESS: lambda_task(
            r.preprocess_function_arn,
            "$.plan.preprocess",
            result_path="$.dataset",
            timeout=s.lambda_timeout_seconds,
            next_state=FIND_CHAMPION,
            catches=_DATA_CATCHES,
        ),
        REPORT_NO_TRAINING: publish_outcome(
            r,
            events.RUN_SUCCEEDED,
            "insufficient_data",
            {"error.$": "$.failure.Error", "cause.$": "$.failure.Cause"},
            then=ENDED_WITHOUT_TRAINING,
        ),
        ENDED_WITHOUT_TRAINING: {"Type": "Succeed"},
    }
