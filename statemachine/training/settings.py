"""Deployment-wide knobs of the training pipeline: one description read by the Pulumi program (the stack
config's ``pipeline`` block, camelCased) and by the local run (:meth:`PipelineSettings.for_local_run`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

#: The local run polls its endpoints this often (they start in seconds, not minutes).
LOCAL_ENDPOINT_POLL_SECONDS = 1

#: AWS runs at most this many inline Map iterations concurrently.
_INLINE_MAP_MAX_CONCURRENCY = 40


@dataclass(frozen=True)
class PipelineSettings:
    """Deployment-wide knobs of the training pipeline (stack config); per-run choices live in RunOptions."""

    #: A pending approval fails the run as ApprovalTimedOut after this long (no heartbeat is required).
    approval_timeout_seconds: int = 7 * 24 * 3600
    endpoint_poll_seconds: int = 60
    #: Bound of the endpoint wait loop: polls × poll interval is the longest a deployment may take.
    endpoint_max_polls: int = 45
    #: Blue/green UpdateEndpoint with auto-rollback on the endpoint's alarms (off: plain rolling update).
    blue_green: bool = True
    #: Baking period of blue/green updates: alarms are watched this long before the old fleet goes away.
    blue_green_bake_seconds: int = 600
    #: State timeout of the training task: above RunOptions' largest max_wait_seconds (5 days) plus upload.
    training_timeout_seconds: int = 5 * 24 * 3600 + 3600
    #: Lambda state timeouts sit just above the functions' own 15-minute limit.
    lambda_timeout_seconds: int = 930
    #: How a big tenant's export chunks run: ``distributed`` (a Distributed Map: every chunk a child
    #: execution, up to 10,000 in parallel, its own history) on AWS; ``inline`` (an inline Map, at most 40
    #: iterations at once, in the run's own history) where the engine has no Distributed Map (moto's).
    export_map: Literal["distributed", "inline"] = "distributed"
    #: Chunks exported at once (bounded so a source store is not overrun by one tenant's export).
    export_max_concurrency: int = 10
    #: The most chunks a plan cuts a window into (chunks widen evenly beyond it; at most MAX_CHUNKS).
    export_max_chunks: int = 100

    def __post_init__(self) -> None:
        if (
            min(
                self.approval_timeout_seconds,
                self.endpoint_poll_seconds,
                self.endpoint_max_polls,
                self.lambda_timeout_seconds,
                self.export_max_concurrency,
                self.export_max_chunks,
            )
            < 1
        ):
            raise ValueError("poll interval, poll bound, timeouts and export concurrency must be positive")
        if self.export_map not in ("distributed", "inline"):
            raise ValueError("export_map must be 'distributed' or 'inline'")
        if self.export_map == "inline" and self.export_max_concurrency > _INLINE_MAP_MAX_CONCURRENCY:
            raise ValueError(f"an inline Map runs at most {_INLINE_MAP_MAX_CONCURRENCY} iterations at once")

    def for_local_run(self, *, endpoint_poll_seconds: int = LOCAL_ENDPOINT_POLL_SECONDS) -> PipelineSettings:
        """These settings as the local run (``convclass-local``, the scenario tests) renders them.

        Only two differ, and only these: endpoints are polled every ``endpoint_poll_seconds`` (the local
        endpoint host starts one in seconds) and export chunks run in an ``inline`` Map (moto's engine has no
        Distributed Map). ``docs/local-and-cli.md`` lists them; ``tests/infra/test_local_parity.py`` checks
        that the local definitions differ from the deployed ones in nothing else but names and ARNs.
        """
        return replace(self, endpoint_poll_seconds=endpoint_poll_seconds, export_map="inline")
