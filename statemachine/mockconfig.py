"""Paths of the training pipeline as mocked service responses, in the Step Functions Local mock-config format.

A test case names the states whose service calls are replaced; every other state runs for real (the plan
function, the SageMaker calls, S3, EventBridge). Start an execution on ``<stateMachineArn>#<TestCase>`` with
the engine's mock config set to ``training_mock_config(...)``. Each case also records how the run must end, so
the same catalogue drives the path tests and the benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from convclass.events import EndpointState, EvaluationResult, HeadlineMetrics, RunPlan
from statemachine.asl import call_state
from statemachine.training import names as t


@dataclass(frozen=True)
class PathCase:
    """One mocked path: which states are mocked with which responses, and the expected end."""

    mocks: dict[str, str]
    status: str
    error: str | None = None


def _lambda_return(payload: dict[str, Any]) -> dict[str, Any]:
    return {"Return": {"StatusCode": 200, "Payload": payload}}


def _throw(error: str, cause: str) -> dict[str, Any]:
    return {"Throw": {"Error": error, "Cause": cause}}


def _evaluation(*, deploy: bool, endpoint_exists: bool, live_config: str | None) -> dict[str, Any]:
    champion = HeadlineMetrics(accuracy=0.9, macro_f1=0.88) if endpoint_exists else None
    challenger = HeadlineMetrics(accuracy=0.93 if deploy else 0.71, macro_f1=0.91 if deploy else 0.6)
    return EvaluationResult(
        deploy=deploy,
        reason="mocked decision",
        challenger=challenger,
        champion=champion,
        min_accuracy=0.7,
        tolerance=0.01,
        endpoint=EndpointState(exists=endpoint_exists, config_name=live_config),
    ).model_dump(mode="json")


def _endpoint(plan: RunPlan, status: str, config: str, failure: str | None = None) -> dict[str, Any]:
    described = {
        "EndpointName": plan.deploy.endpoint_name,
        "EndpointStatus": status,
        "EndpointConfigName": config,
    }
    if failure:
        described["FailureReason"] = failure
    return {"Return": described}


def training_mock_config(
    state_machine_name: str, plan: RunPlan, *, polls_to_in_service: int = 3
) -> dict[str, Any]:
    """The mock config for ``plan``'s run (names in mocked SageMaker answers must match the plan)."""
    new_config = plan.deploy.endpoint_config_name
    old_config = f"{plan.deploy.endpoint_name}-previous-cfg"
    export = {"manifest": plan.export.manifest_key, "complete": True, "records": 1200, "parts": 1}
    dataset = {"manifest": f"{plan.preprocess.output_prefix}manifest.json", "records_kept": 1150, "labels": 7}
    creating = polls_to_in_service - 1
    responses: dict[str, dict[str, Any]] = {
        "ExportSmall": {"0": _lambda_return({"chunked": False, "chunk_count": 1, "chunks": []})},
        "ExportDone": {"0": _lambda_return(export)},
        "ExportThrottledOnce": {
            "0": _throw("Lambda.TooManyRequestsException", "Rate exceeded"),
            "1": _lambda_return(export),
        },
        "DatasetBuilt": {"0": _lambda_return(dataset)},
        "HistoryCommitted": {"0": _lambda_return({"watermark": plan.export.watermark_key})},
        "ConsentRecorded": {"0": _lambda_return({"consent": plan.export.consent_key, "approved": True})},
        "RefusalRecorded": {"0": _lambda_return({"consent": plan.export.consent_key, "approved": False})},
        "NotEnoughData": {
            "0": _throw("InsufficientData", "1 label has at least 10 examples; a classifier needs 2"),
        },
        "ChallengerWins": {
            "0": _lambda_return(_evaluation(deploy=True, endpoint_exists=False, live_config=None))
        },
        "ChallengerWinsOverChampion": {
            "0": _lambda_return(_evaluation(deploy=True, endpoint_exists=True, live_config=old_config))
        },
        "ChallengerLoses": {
            "0": _lambda_return(_evaluation(deploy=False, endpoint_exists=True, live_config=old_config))
        },
        "EndpointInServiceAfterPolls": {
            **(
                {f"0-{creating - 1}" if creating > 1 else "0": _endpoint(plan, "Creating", new_config)}
                if creating
                else {}
            ),
            str(creating): _endpoint(plan, "InService", new_config),
        },
        "EndpointServesChampion": {"0": _endpoint(plan, "InService", old_config)},
        "UpdateAccepted": {
            "0": {"Return": {"EndpointArn": f"arn:aws:sagemaker:::endpoint/{plan.deploy.endpoint_name}"}}
        },
        # A failed update: SageMaker keeps serving the old config, InService, with a FailureReason.
        "EndpointUpdateRolledBack": {
            "0": _endpoint(plan, "Updating", old_config),
            "1": _endpoint(
                plan, "InService", old_config, "Rolled back: alarm invocation-5xx went into ALARM"
            ),
        },
    }
    return {
        "StateMachines": {
            state_machine_name: {"TestCases": {name: case.mocks for name, case in TRAINING_PATHS.items()}}
        },
        "MockedResponses": responses,
    }


_DEPLOY_NEW = {t.EVALUATE: "ChallengerWins", call_state(t.DESCRIBE_ENDPOINT): "EndpointInServiceAfterPolls"}
_DATA = {
    t.RECORD_EXPORT_CONSENT: "ConsentRecorded",
    t.RECORD_EXPORT_REFUSAL: "RefusalRecorded",
    t.PLAN_EXPORT: "ExportSmall",
    t.EXPORT: "ExportDone",
    t.PREPROCESS: "DatasetBuilt",
    t.COMMIT_HISTORY: "HistoryCommitted",
    t.COMMIT_REJECTED_RUN_HISTORY: "HistoryCommitted",
}

#: Paths that need nothing but mocked responses (approvals, training outcomes and real comparisons are
#: driven by the tests through the engine's hooks).
TRAINING_PATHS: dict[str, PathCase] = {
    "HappyPath": PathCase({**_DATA, **_DEPLOY_NEW}, "SUCCEEDED"),
    "LambdaThrottled": PathCase({**_DATA, t.EXPORT: "ExportThrottledOnce", **_DEPLOY_NEW}, "SUCCEEDED"),
    "InsufficientData": PathCase(
        {t.PLAN_EXPORT: "ExportSmall", t.EXPORT: "ExportDone", t.PREPROCESS: "NotEnoughData"}, "SUCCEEDED"
    ),
    "ModelRejected": PathCase({**_DATA, t.EVALUATE: "ChallengerLoses"}, "SUCCEEDED"),
    "EndpointRolledBack": PathCase(
        {
            **_DATA,
            t.EVALUATE: "ChallengerWinsOverChampion",
            call_state(t.INSPECT_ENDPOINT): "EndpointServesChampion",
            call_state(t.UPDATE_ENDPOINT): "UpdateAccepted",
            call_state(t.DESCRIBE_ENDPOINT): "EndpointUpdateRolledBack",
        },
        "FAILED",
        t.ERROR_DEPLOYMENT_FAILED,
    ),
}
