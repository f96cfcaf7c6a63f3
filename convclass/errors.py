"""Named errors that cross process boundaries.

Step Functions sees a Lambda exception by its class name (``errorType``), so each class name here is
part of the state machine's contract: ``Catch`` clauses match on ``InsufficientData``, ``InvalidInput``
and so on. Messages never contain customer text.
"""

from __future__ import annotations


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
