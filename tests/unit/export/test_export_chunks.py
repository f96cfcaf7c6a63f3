"""The chunk planner: contiguous, exact, bounded and deterministic."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from convclass.export.chunks import MAX_CHUNKS, plan_chunks
from convclass.export.window import TimeWindow

START = datetime(2020, 1, 1, tzinfo=UTC)


@given(
    length=st.integers(min_value=1, max_value=10**14),  # microseconds: up to ~3 years
    step=st.integers(min_value=1, max_value=10**13),
    limit=st.integers(min_value=1, max_value=MAX_CHUNKS),
)
def test_chunks_tile_the_window_exactly(length: int, step: int, limit: int) -> None:
    window = TimeWindow(start=START, end=START + timedelta(microseconds=length))
    chunks = plan_chunks(window, chunk_duration=timedelta(microseconds=step), max_chunks=limit)
    assert 1 <= len(chunks) <= limit
    assert chunks[0].start == window.start
    assert chunks[-1].end == window.end
    for index, chunk in enumerate(chunks):
        assert chunk.index == index
        assert chunk.count == len(chunks)
        assert chunk.start < chunk.end  # never an empty chunk
    for left, right in itertools.pairwise(chunks):
        assert left.end == right.start  # contiguous, no overlap


def test_chunk_length_is_kept_when_it_fits() -> None:
    window = TimeWindow(start=START, end=START + timedelta(days=10, hours=12))
    chunks = plan_chunks(window, chunk_duration=timedelta(days=1))
    assert len(chunks) == 11
    assert all(c.end - c.start == timedelta(days=1) for c in chunks[:-1])
    assert chunks[-1].end - chunks[-1].start == timedelta(hours=12)


def test_long_history_widens_chunks_to_the_limit() -> None:
    window = TimeWindow(start=datetime(1970, 1, 1, tzinfo=UTC), end=datetime(2026, 1, 1, tzinfo=UTC))
    chunks = plan_chunks(window, chunk_duration=timedelta(hours=1), max_chunks=100)
    assert len(chunks) == 100
    assert plan_chunks(window, chunk_duration=timedelta(hours=1), max_chunks=100) == chunks  # deterministic


@pytest.mark.parametrize(
    ("step", "limit"), [(timedelta(0), 10), (timedelta(hours=-1), 10), (timedelta(hours=1), 0)]
)
def test_rejects_nonsense_limits(step: timedelta, limit: int) -> None:
    window = TimeWindow(start=START, end=START + timedelta(days=1))
    with pytest.raises(ValueError, match="must"):
        plan_chunks(window, chunk_duration=step, max_chunks=limit)


def test_empty_or_reversed_window_is_rejected() -> None:
    with pytest.raises(ValueError, match="before"):
        TimeWindow(start=START, end=START)
