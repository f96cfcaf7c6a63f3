"""Compaction of the training history: one record per conversation, latest change wins, tombstones remove."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convclass.dataset.history import compact
from convclass.errors import InvalidInput
from convclass.records import EXPORT_RECORD_SCHEMA

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def row(
    cid: str, hour: int, label: str = "a", *, deleted: bool = False, updated: bool = True
) -> dict[str, Any]:
    moment = T0 + timedelta(hours=hour)
    return {
        "conversation_id": cid,
        "tenant_id": "acme",
        "created_at": T0 if updated else moment,
        "updated_at": moment if updated else None,
        "subject": None,
        "body": "" if deleted else f"body of {cid} at {hour}",
        "body_content_type": "text/plain",
        "labels": [] if deleted else [("intent", label)],
        "deleted": deleted,
    }


def part(path: Path, rows: list[dict[str, Any]], schema: pa.Schema = EXPORT_RECORD_SCHEMA) -> Path:
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), str(path))
    return path


def read(files: list[Path]) -> dict[str, dict[str, Any]]:
    rows = [r for f in files for r in pq.read_table(str(f)).to_pylist()]
    by_id = {r["conversation_id"]: r for r in rows}
    assert len(by_id) == len(rows), "one record per conversation"
    return by_id


def test_latest_change_wins_tombstones_remove_and_every_record_is_counted(tmp_path: Path) -> None:
    base = part(
        tmp_path / "base.parquet", [row("c1", 1, "a"), row("c2", 1, "a"), row("c3", 5, "a"), row("c4", 1)]
    )
    delta = part(
        tmp_path / "delta.parquet",
        [
            row("c1", 3, "b"),  # relabelled later: wins
            row("c2", 1, "z"),  # same change time: the export's record wins
            row("c3", 2, "old"),  # an older state than the history's: loses
            row("c4", 4, deleted=True),  # deleted at the source
            row("c5", 4, "new"),  # a new conversation
        ],
    )
    merged = compact([base], [delta], tmp_path / "out")
    rows = read(merged.files)

    assert {cid: dict(r["labels"]).get("intent") for cid, r in rows.items()} == {
        "c1": "b",
        "c2": "z",
        "c3": "a",
        "c5": "new",
    }
    counts = merged.counts
    assert (counts.base, counts.exported, counts.kept, counts.superseded, counts.deleted) == (4, 5, 4, 4, 1)
    assert counts.base + counts.exported == counts.kept + counts.superseded + counts.deleted


def test_parts_roll_and_older_parts_without_the_deleted_column_are_read(tmp_path: Path) -> None:
    legacy = EXPORT_RECORD_SCHEMA.remove(EXPORT_RECORD_SCHEMA.get_field_index("deleted"))
    rows = [
        {k: v for k, v in row(f"c{i}", i, updated=i % 2 == 0).items() if k != "deleted"} for i in range(7)
    ]
    base = part(tmp_path / "legacy.parquet", rows, legacy)
    merged = compact([base], [], tmp_path / "out", part_rows=3)
    assert len(merged.files) == 3
    assert set(read(merged.files)) == {f"c{i}" for i in range(7)}
    assert all(pq.read_schema(str(f)).equals(EXPORT_RECORD_SCHEMA) for f in merged.files)


def test_an_unreadable_input_is_a_named_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    with pytest.raises(InvalidInput):
        compact([], [broken], tmp_path / "out")


changes = st.lists(
    st.tuples(st.integers(0, 9), st.integers(0, 50), st.booleans(), st.sampled_from("abc")), max_size=40
)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(base_changes=changes, delta_changes=changes)
def test_the_history_is_the_latest_state_of_each_conversation(
    tmp_path_factory: pytest.TempPathFactory, base_changes: list[Any], delta_changes: list[Any]
) -> None:
    folder = tmp_path_factory.mktemp("history")
    base_rows = [row(f"c{i}", h, label, deleted=gone) for i, h, gone, label in base_changes]
    delta_rows = [row(f"c{i}", h, label, deleted=gone) for i, h, gone, label in delta_changes]
    merged = compact(
        [part(folder / "base.parquet", base_rows)],
        [part(folder / "delta.parquet", delta_rows)],
        folder / "out",
    )
    # The model: apply every change in order of (change time, position), later positions winning ties.
    latest: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}
    for position, r in enumerate([*base_rows, *delta_rows]):
        rank = (int(r["updated_at"].timestamp()), position)
        if r["conversation_id"] not in latest or rank > latest[r["conversation_id"]][0]:
            latest[r["conversation_id"]] = (rank, r)
    expected = {cid: r["body"] for cid, (_, r) in latest.items() if not r["deleted"]}
    assert {cid: r["body"] for cid, r in read(merged.files).items()} == expected
