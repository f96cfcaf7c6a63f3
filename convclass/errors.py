"""Named errors that cross process boundaries.

Step Functions sees a Lambda exception by its class name (``errorType``), so each class name here is
part of the state machine's contract: ``Catch`` clauses match on ``InsufficientData``, ``InvalidInput``
and so on. Messages never contain customer text.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

M = TypeVar("M")


class ConvclassError(Exception):
    """Base class: a failure with a stable name that the orchestration can branch on."""


class InvalidInput(ConvclassError):
    """An event, request or configuration that does not match its schema."""


class InsufficientData(ConvclassError):
    """Too few labels or examples remain to train a classifier worth deploying."""


class ExportNotApproved(ConvclassError):
    """The tenant has not approved the use of their conversations for training."""


class SourceUnavailable(ConvclassError):
    """The conversation store (MongoDB, OpenSearch, files) could not be reached after retries."""


class UnknownTenant(ConvclassError):
    """No configuration or endpoint exists for the tenant/classifier asked for."""


class IncompatibleModel(ConvclassError):
    """A model artifact was produced with a cleaning or artifact version this code cannot serve."""


class ModelFailure(ConvclassError):
    """The model (in process or behind TF Serving) did not answer a prediction; the caller may retry."""


class ExportIncomplete(ConvclassError):
    """Chunks of a parallel export lack a manifest (failed or still running): never read it as complete."""


class SageMakerTransient(ConvclassError):
    """A SageMaker call was throttled or hit an internal error: the state machine retries it by this name."""


class SageMakerTaskFailed(ConvclassError):
    """A SageMaker job ended Failed or Stopped (its description is the cause): the state machine's name."""


# Outcomes the training pipeline names itself (Fail states and "Training Run Failed" events). They are never
# raised in Python; the state machine and the operator take their names from these classes.


class ValidationFailed(ConvclassError):
    """The request could not be validated (the plan step itself failed)."""


class ApprovalRejected(ConvclassError):
    """A reviewer rejected an approval gate (SendTaskFailure with this error)."""


class ApprovalTimedOut(ConvclassError):
    """An approval gate got no answer within its timeout."""


class TrainingFailed(ConvclassError):
    """The SageMaker training job failed."""


class TrainingStopped(ConvclassError):
    """The SageMaker training job was stopped before it finished."""


class DeploymentFailed(ConvclassError):
    """The endpoint did not reach InService on the new model."""


class EmailTooLarge(InvalidInput):
    """An inbound email over the inbound queue's message size (``events.inbound_max_message_bytes``)."""


#: Errors a pipeline step raises when what it was given is wrong, not the moment: the run ends with them (and
#: a "Training Run Failed" event). Any other error, once retries are spent, leaves the run FAILED at the step
#: that raised it, where ``convclass redrive`` resumes it.
FINAL_STEP_ERRORS: tuple[type[ConvclassError], ...] = (
    InvalidInput,
    ExportNotApproved,
    UnknownTenant,
    IncompatibleModel,
)


def validated(schema: type[M] | TypeAdapter[M], raw: Any, *, what: str, from_json: bool = False) -> M:
    """``raw`` (Python data, or JSON text with ``from_json``) validated against ``schema``; ``InvalidInput``
    names the fields at fault and what is wrong with them, never their values."""
    adapter = schema if isinstance(schema, TypeAdapter) else TypeAdapter(schema)
    try:
        return adapter.validate_json(raw) if from_json else adapter.validate_python(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or '<root>'}: {item['msg']}"
            for item in error.errors(include_input=False, include_url=False)
        )
        raise InvalidInput(f"{what} is invalid: {problems}") from None
