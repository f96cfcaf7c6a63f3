"""The outcome section: how a run ends once it has a result.

Deployed: ``HistoryToCommit`` → ``CommitHistory`` (the watermark and the training history this run built: the
last step before success, so a run that fails anywhere leaves the next incremental export where it was) →
``PublishSucceeded`` → ``Succeeded``. Rejected: the history is committed too (the run read and trained on its
data) before ``ModelRejected`` publishes ``Training Run Succeeded`` with outcome ``rejected`` →
``EndedRejected``. Failed: ``PublishFailure`` → ``Failed`` with ``$.failure``'s named error.
"""

from __future__ import annotations

from convclass import events
from statemachine.asl import State
from statemachine.resources import TrainingPipelineResources
from statemachine.training.common import export_action, publish_outcome
from statemachine.training.names import (
    COMMIT_HISTORY,
    COMMIT_REJECTED_RUN_HISTORY,
    ENDED_REJECTED,
    FAILED,
    HISTORY_TO_COMMIT,
    MODEL_REJECTED,
    PUBLISH_FAILURE,
    PUBLISH_SUCCEEDED,
    REJECTED_RUN_HISTORY_TO_COMMIT,
    SUCCEEDED,
)
from statemachine.training.settings import PipelineSettings


def _commit_history(
    r: TrainingPipelineResources, s: PipelineSettings, choice: str, commit: str, *, then: str
) -> dict[str, State]:
    """``choice`` → ``commit``: the export function commits the watermark and the training history this run
    built, then ``then``. A roll back read no data: it has no history to commit and goes straight on."""
    return {
        choice: {
            "Type": "Choice",
            "Choices": [{"Variable": "$.plan.redeploy_only", "BooleanEquals": True, "Next": then}],
            "Default": commit,
        },
        commit: export_action(r, s, "commit", {}, result_path="$.commit", next_state=then),
    }


def rejected_states(r: TrainingPipelineResources, s: PipelineSettings) -> dict[str, State]:
    """A challenger the comparison rejected: commit the run's history, publish, end cleanly."""
    return {
        # The run read and trained on its data: the next run continues from this history either way.
        **_commit_history(
            r, s, REJECTED_RUN_HISTORY_TO_COMMIT, COMMIT_REJECTED_RUN_HISTORY, then=MODEL_REJECTED
        ),
        # A rejected challenger is a normal outcome: the champion keeps serving, nobody is paged.
        MODEL_REJECTED: publish_outcome(
            r,
            events.RUN_SUCCEEDED,
            "rejected",
            {"metrics.$": "$.evaluation.result.challenger", "evaluation.$": "$.evaluation.result"},
            then=ENDED_REJECTED,
        ),
        ENDED_REJECTED: {"Type": "Succeed"},
    }


def final_states(r: TrainingPipelineResources, s: PipelineSettings) -> dict[str, State]:
    """A deployed model's run commits its history and succeeds; every failure that ends a run goes through
    PublishFailure to Failed."""
    return {
        **_commit_history(r, s, HISTORY_TO_COMMIT, COMMIT_HISTORY, then=PUBLISH_SUCCEEDED),
        PUBLISH_SUCCEEDED: publish_outcome(
            r,
            events.RUN_SUCCEEDED,
            "deployed",
            {
                "endpoint.$": "$.plan.serving_endpoint",
                "metrics.$": "$.evaluation.result.challenger",
                "evaluation.$": "$.evaluation.result",
            },
            then=SUCCEEDED,
        ),
        SUCCEEDED: {"Type": "Succeed"},
        PUBLISH_FAILURE: publish_outcome(
            r,
            events.RUN_FAILED,
            "failed",
            {"error.$": "$.failure.Error", "cause.$": "$.failure.Cause"},
            then=FAILED,
        ),
        FAILED: {"Type": "Fail", "ErrorPath": "$.failure.Error", "CausePath": "$.failure.Cause"},
    }
