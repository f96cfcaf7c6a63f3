"""The training → deployment pipeline (Standard workflow), rendered from the deployed world's names.

Happy path, with the optional gates in brackets::

    ValidateInput → ExportApprovalGate → [RequestExportApproval → RecordExportConsent] → PlanExport
      → ExportSize → Export (small tenants) | ExportChunks (Map) → FinalizeExport (big ones) → Preprocess
      → FindChampion → Train → Evaluate → DeployDecision → [RequestDeployApproval] → CreateModel
      → CreateEndpointConfig → InspectEndpoint → CreateOrUpdateEndpoint → CreateEndpoint | UpdateEndpoint
        (Failed: DeleteFailedEndpoint → WaitForDeletion → InspectEndpoint …, bounded → CreateEndpoint)
      → WaitForEndpoint → DescribeEndpoint → CheckEndpoint (→ CountPoll → WaitForEndpoint …, bounded)
      → WriteChampion → CommitHistory → PublishSucceeded → Succeeded

A ``shared`` run (``RunOptions.hosting``) leaves the dedicated branch at ``HostingChoice`` for the shared
multi-model endpoint (:mod:`statemachine.training.shared`).

A rejected export gate records the tenant's refusal (``RecordExportRefusal``) before the run fails as
``ApprovalRejected``; ``CommitHistory`` — the watermark and the training history this run built — is the last
step before success, so a run that fails anywhere leaves the next incremental export where it was.

A run ends through its ``Failed`` state — ``$.failure`` = {Error, Cause} with a named error, a published
``Training Run Failed`` — only for an outcome a retry would not change: an error of
``errors.FINAL_STEP_ERRORS``, a rejected or unanswered gate, a failed or stopped training job, a permanent
SageMaker error (``RequestRejected`` when the input itself was invalid: no plan exists to name the
tenant). Any other error that outlives its retries (a crashed function, an exhausted transient SageMaker
error, a timeout) fails the execution at the step that raised it, so ``convclass redrive``
(RedriveExecution) resumes the run there; the stack's execution-failure alarm reports it.
``InsufficientData`` ends cleanly (``EndedWithoutTraining``) after a ``Training Run Succeeded`` event whose
outcome says no model was trained; a challenger the comparison rejects ends cleanly too
(``ModelRejected`` publishes ``Training Run Succeeded`` with outcome ``rejected``, then ``EndedRejected``):
the champion keeps serving and no execution-failure alarm fires. The state document only ever holds the run
plan (names and S3 keys), small function results and SageMaker summaries: never data.

The definition is composed of sections, each a pure function of the resources and settings returning its
states (read one section in one sitting): :mod:`~statemachine.training.gates` (validation, export and
deployment approvals), :mod:`~statemachine.training.data` (export, preprocess),
:mod:`~statemachine.training.train` (champion, training job, evaluation, decision),
:mod:`~statemachine.training.deployment` (the dedicated endpoint), :mod:`~statemachine.training.shared` (the
shared endpoint) and :mod:`~statemachine.training.outcome` (history commit, published outcome, end states).
State and error names live in :mod:`~statemachine.training.names`; deployment-wide knobs in
:mod:`~statemachine.training.settings`.
"""

from __future__ import annotations

from typing import Any

from statemachine.asl import State
from statemachine.resources import TrainingPipelineResources
from statemachine.training.data import data_states
from statemachine.training.deployment import dedicated_states
from statemachine.training.gates import deploy_gate_states, export_gate_states, request_states
from statemachine.training.names import CREATE_MODEL, HOSTING_CHOICE, VALIDATE_INPUT
from statemachine.training.outcome import final_states, rejected_states
from statemachine.training.settings import PipelineSettings
from statemachine.training.shared import shared_states
from statemachine.training.train import training_states

__all__ = ["PipelineSettings", "render_training_pipeline"]


def render_training_pipeline(
    resources: TrainingPipelineResources, settings: PipelineSettings | None = None
) -> dict[str, Any]:
    """The Standard workflow's ASL definition (a JSON-ready dict), section by section in execution order."""
    r, s = resources, settings or PipelineSettings()
    # Without a shared endpoint the plan refuses ``shared`` runs: every approved model goes to CreateModel.
    deploy = CREATE_MODEL if r.shared_endpoint_name is None else HOSTING_CHOICE
    states: dict[str, State] = {
        **request_states(r),
        **export_gate_states(r, s),
        **data_states(r, s),
        **training_states(r, s, deploy),
        **rejected_states(r, s),
        **deploy_gate_states(r, s, deploy),
        **dedicated_states(r, s),
        **final_states(r, s),
    }
    if r.shared_endpoint_name is not None:
        states.update(shared_states(r, r.shared_endpoint_name))
    return {
        "Comment": "convclass training pipeline: export, preprocess, train, evaluate, deploy a classifier",
        "QueryLanguage": "JSONPath",
        "StartAt": VALIDATE_INPUT,
        "States": states,
    }
