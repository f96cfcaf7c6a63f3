"""The shape every pipeline step has: an event model in, a result model out, AWS clients handed in.

A :class:`Step` bundles what a Lambda adapter needs to run one state of the training pipeline without knowing
which: the event's schema (parsed by :func:`convclass.errors.validated`, whose errors name fields, never
values, so no customer text reaches an error message or a log), which buckets the event makes it touch
(checked against the bucket the function is deployed with), which ids to log, the work itself and the counts
to log afterwards. ``functions/adapter.py`` wraps one in a Lambda handler; tests call :meth:`Step.prepare`
and :attr:`Step.run` with moto clients.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, TypeAdapter

from convclass.deployment import DATA_BUCKET_ENV
from convclass.errors import InvalidInput, validated

E = TypeVar("E")
R = TypeVar("R", bound=BaseModel)


def require_deployed_bucket(buckets: Iterable[str], environ: Mapping[str, str], *, step: str) -> None:
    """A deployed function touches only the data bucket it is deployed with, whatever its event names."""
    deployed = environ.get(DATA_BUCKET_ENV)
    if deployed and set(buckets) - {deployed}:
        raise InvalidInput(f"{step} may only use the data bucket it is deployed with")


@dataclass(frozen=True)
class StepEnvironment:
    """What a step is handed instead of reaching for globals: settings and a client factory."""

    environ: Mapping[str, str]
    #: ``boto3.client`` on AWS; moto-backed clients in tests and local runs.
    client: Callable[[str], Any]


def _no_keys(_: Any) -> dict[str, Any]:
    return {}


class _RunIds(Protocol):
    @property
    def tenant(self) -> str: ...
    @property
    def classifier(self) -> str: ...
    @property
    def run_id(self) -> str: ...


def run_ids(ids: _RunIds) -> dict[str, str]:
    """The ids every log line of a run's step carries."""
    return {"tenant": ids.tenant, "classifier": ids.classifier, "run_id": ids.run_id}


@dataclass(frozen=True)
class Step(Generic[E, R]):
    """One state of the training pipeline, as a Lambda adapter runs it."""

    #: Short name: the function's log service is ``convclass-<name>``; errors say "<name> event is invalid".
    name: str
    schema: TypeAdapter[E]
    run: Callable[[E, StepEnvironment], R]
    #: The buckets the event makes the step read or write.
    buckets: Callable[[E], Iterable[str]]
    #: Ids to put on every log line of the invocation (tenant, classifier, run; never text).
    log_keys: Callable[[E], Mapping[str, Any]] = _no_keys
    #: Counts and ids of the result to log when the step is done.
    summary: Callable[[R], Mapping[str, Any]] = _no_keys

    def prepare(self, raw: Any, environ: Mapping[str, str]) -> E:
        """The validated event, once it is known to touch only the deployed data bucket."""
        event = validated(self.schema, raw, what=f"{self.name} event")
        require_deployed_bucket(self.buckets(event), environ, step=self.name)
        return event
