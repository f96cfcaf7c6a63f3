"""Split an export window into time-range chunks that a Step Functions Distributed Map exports in parallel.

Pure and deterministic: the same window and limits always give the same chunks, so a redriven execution
re-exports exactly the chunk that failed. Chunks are contiguous, half-open and cover the window exactly once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from convclass.export.window import TimeWindow

#: Upper bound on chunks per export: keeps the Map's item list far below the 256 KB state payload limit.
MAX_CHUNKS = 500
#: The size rule of a plan: a window shorter than this many chunks is exported by one task (no Map).
MIN_MAP_CHUNKS = 3
_MICROSECOND = timedelta(microseconds=1)


class ExportChunk(BaseModel):
    """One Map item: the chunk's position in the plan and its part of the window."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int = Field(ge=0)
    count: int = Field(ge=1, le=MAX_CHUNKS)
    start: datetime
    end: datetime

    @property
    def window(self) -> TimeWindow:
        return TimeWindow(start=self.start, end=self.end)


def plan_chunks(
    window: TimeWindow, *, chunk_duration: timedelta, max_chunks: int = MAX_CHUNKS
) -> list[ExportChunk]:
    """Cut ``window`` into chunks of ``chunk_duration`` (the last may be shorter).

    When that would exceed ``max_chunks``, the chunks widen evenly instead, so a long history of a large
    tenant still fits one Map run.
    """
    if chunk_duration <= timedelta(0):
        raise ValueError("chunk_duration must be positive")
    if not 1 <= max_chunks <= MAX_CHUNKS:
        raise ValueError(f"max_chunks must be between 1 and {MAX_CHUNKS}")
    total_us = window.duration // _MICROSECOND
    step_us = max(chunk_duration // _MICROSECOND, 1)
    count = -(-total_us // step_us)
    if count > max_chunks:
        step_us = -(-total_us // max_chunks)
        count = -(-total_us // step_us)
    bounds = [window.start + timedelta(microseconds=i * step_us) for i in range(count)] + [window.end]
    return [ExportChunk(index=i, count=count, start=bounds[i], end=bounds[i + 1]) for i in range(count)]
