"""Bounded retries with capped exponential backoff and full jitter for calls to a conversation store.

Only errors a source classifies as transient are retried; after the last attempt the failure becomes
:class:`~convclass.errors.SourceUnavailable`, the name the state machine retries or reports on.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from convclass.errors import SourceUnavailable

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def delay(self, attempt: int) -> float:
        """Full-jitter backoff (AWS architecture blog): spreads retries of parallel chunks apart."""
        return random.uniform(0.0, min(self.max_delay_s, self.base_delay_s * 2**attempt))  # noqa: S311


class Attempts:
    """Counts failures of one logical operation (a whole paged read), so resumptions share one budget."""

    def __init__(self, policy: RetryPolicy, what: str) -> None:
        self.policy = policy
        self.what = what
        self.failures = 0

    def failed(self, error: BaseException) -> None:
        """Record a transient failure: sleep before the next attempt, or raise ``SourceUnavailable``."""
        self.failures += 1
        if self.failures >= self.policy.attempts:
            # The message names the error class only: driver messages can echo hosts or credentials.
            raise SourceUnavailable(
                f"{self.what} failed {self.failures} times; last error {type(error).__name__}"
            ) from error
        self.policy.sleep(self.policy.delay(self.failures))


def call_with_retries(
    func: Callable[[], T], *, policy: RetryPolicy, transient: Callable[[BaseException], bool], what: str
) -> T:
    attempts = Attempts(policy, what)
    while True:
        try:
            return func()
        except Exception as error:
            if not transient(error):
                raise
            attempts.failed(error)
