"""The one place that reaches into moto's internals, so convclass's real workflows run on its engine.

moto 5.2.5 executes Step Functions definitions but leaves gaps that matter here; each shim closes one, in a
module of its own whose docstring names the moto internal it hooks, through the narrowest hook found, and
defers to moto whenever its hook is unset:

* :mod:`~convclass_local.moto_shims.lambda_invoke` — Lambda in process, through
  ``EngineHooks.lambda_dispatch`` instead of Docker.
* :mod:`~convclass_local.moto_shims.task_services` — Task states get convclass's ``sagemaker`` integration
  (:mod:`~convclass_local.moto_shims.sagemaker_tasks`: request-response and ``createTrainingJob.sync``, which
  moto rejects) and an ``aws-sdk`` integration (:mod:`~convclass_local.moto_shims.aws_sdk`) whose responses
  are JSON (timestamps as ISO text) and which sends a JSON ``Body`` as text, as Step Functions does.
* :mod:`~convclass_local.moto_shims.training_jobs` — training jobs run by ``EngineHooks.training_runner``
  (default: moto's, Completed at once).
* :mod:`~convclass_local.moto_shims.endpoints` — ``UpdateEndpoint`` (not implemented by moto);
  ``aws-sdk:sagemakerruntime`` resolves to boto3's ``sagemaker-runtime`` and InvokeEndpoint requests go to
  ``EngineHooks.invoke_endpoint`` (default: moto's canned answer).
* :mod:`~convclass_local.moto_shims.mock_config` — mocked service responses in the Step Functions Local
  mock-config format, on executions started on ``stateMachineArn#TestCase``.
* :mod:`~convclass_local.moto_shims.callbacks` — ``SendTaskFailure``'s ``cause`` reaches the failed task,
  and an answer that arrives before moto arms the heartbeat wait still wakes the task.
* :mod:`~convclass_local.moto_shims.timing` — Wait states and retry back-off sleep ``time_scale`` × their
  seconds; ``.sync`` polls every ``sync_poll_seconds``.

RedriveExecution, which moto lacks altogether, is :mod:`convclass_local.moto_shims.redrive`.
``install()`` patches once per process and swaps hooks atomically; ``tests/integration/test_moto_contract.py``
fails loudly when a hooked internal moves in another moto release.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from convclass_local.moto_shims import (
    aws_sdk,
    callbacks,
    endpoints,
    lambda_invoke,
    mock_config,
    redrive,
    task_services,
    timing,
    training_jobs,
)
from convclass_local.moto_shims.hooks import (
    EndpointError,
    EndpointInvoker,
    EndpointReply,
    EndpointRequest,
    EngineHooks,
    LambdaDispatch,
    LambdaInvocation,
    TrainingOutcomeLike,
    TrainingRunner,
    activate,
    container_answer,
    current,
)
from convclass_local.moto_shims.internals import originals
from convclass_local.moto_shims.mock_config import MockConfig
from convclass_local.moto_shims.training_jobs import join_training_jobs

#: Parameters of every moto function the shims replace, as moto 5.2.5 defines them.
PINNED_SIGNATURES: dict[str, list[str]] = {
    **lambda_invoke.PINNED,
    **task_services.PINNED,
    **training_jobs.PINNED,
    **endpoints.PINNED,
    **mock_config.PINNED,
    **callbacks.PINNED,
    **timing.PINNED,
}

_PATCHES = (
    lambda_invoke.patch,
    task_services.patch,
    aws_sdk.patch,
    training_jobs.patch,
    endpoints.patch,
    mock_config.patch,
    callbacks.patch,
    timing.patch,
)
_installed = False
_install_lock = threading.Lock()


def install(hooks: EngineHooks) -> None:
    """Patch moto (once per process) and make ``hooks`` the active ones."""
    global _installed
    with _install_lock:
        activate(hooks)
        if not _installed:
            redrive.install()
            for patch in _PATCHES:
                patch()
            _installed = True
        timing.poll_sync_every(hooks.sync_poll_seconds)


@contextlib.contextmanager
def installed(hooks: EngineHooks) -> Iterator[EngineHooks]:
    """``install(hooks)`` for a block; the previous hooks come back afterwards."""
    previous = current()
    install(hooks)
    try:
        yield hooks
    finally:
        install(previous)


def update(**changes: Any) -> EngineHooks:
    """Replace some hooks of the active set (e.g. plug the serving app in once it runs)."""
    hooks = replace(current(), **changes)
    install(hooks)
    return hooks


__all__ = [
    "PINNED_SIGNATURES",
    "EndpointError",
    "EndpointInvoker",
    "EndpointReply",
    "EndpointRequest",
    "EngineHooks",
    "LambdaDispatch",
    "LambdaInvocation",
    "MockConfig",
    "TrainingOutcomeLike",
    "TrainingRunner",
    "container_answer",
    "current",
    "install",
    "installed",
    "join_training_jobs",
    "originals",
    "update",
]
