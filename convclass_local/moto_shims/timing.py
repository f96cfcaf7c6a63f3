"""Time: Wait states and retry back-off sleep ``time_scale`` × their seconds; ``.sync`` polls every
``sync_poll_seconds``.

Executions that wait hours on AWS finish in moments locally. ``WaitFunction._wait_interval`` is hooked for
Wait states; moto's retrier only calls ``time.sleep`` between attempts, so its module's ``time`` is replaced
by a scaled clock; the ``.sync`` poll interval is a module constant of moto's callback task service
(``_DELAY_SECONDS_SYNC_CONDITION_CHECK``), set each time hooks are installed.
"""

from __future__ import annotations

import time
from typing import Any

from convclass_local.moto_shims.hooks import current
from convclass_local.moto_shims.internals import SERVICE, SFN, moto, pinned

WaitFunction = moto(f"{SFN}.asl.component.state.wait.wait_function.wait_function", "WaitFunction")
retrier_decl = moto(f"{SFN}.asl.component.common.retry.retrier_decl")
state_task_service_callback = moto(f"{SERVICE}.state_task_service_callback")

#: Parameters of the moto function this shim replaces, as moto 5.2.5 defines them.
PINNED = {"WaitFunction._wait_interval": ["self", "env", "wait_seconds"]}


def poll_sync_every(seconds: float) -> None:
    """How often a ``.sync`` task checks whether its job has ended."""
    state_task_service_callback._DELAY_SECONDS_SYNC_CONDITION_CHECK = seconds


def patch() -> None:
    name = "WaitFunction._wait_interval"
    original_wait = pinned(name, WaitFunction._wait_interval, PINNED[name])

    def wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        if current().time_scale == 1.0:
            original_wait(self, env, wait_seconds)
        elif wait_seconds > 0:
            env.program_state_event.wait(wait_seconds * current().time_scale)

    WaitFunction._wait_interval = wait_interval
    retrier_decl.time = _ScaledClock()


class _ScaledClock:
    """Stands in for the ``time`` module inside moto's retrier, which only sleeps between attempts."""

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(seconds * current().time_scale)
