"""Chunked reading of export files (Parquet or JSON Lines) into raw record dicts.

Only one chunk is in memory at a time. A line that is not JSON (or not an object) comes back as ``None`` so
the builder can count it as invalid instead of losing it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from convclass.errors import InvalidInput

RawRecord = dict[str, Any] | None
PARQUET_MAGIC = b"PAR1"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_parquet(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == PARQUET_MAGIC


def iter_chunks(path: Path, chunk_size: int) -> Iterator[list[RawRecord]]:
    """Yield lists of at most ``chunk_size`` raw records from one Parquet or JSON Lines file."""
    if is_parquet(path):
        yield from _parquet_chunks(path, chunk_size)
    else:
        yield from _jsonl_chunks(path, chunk_size)


def _parquet_chunks(path: Path, chunk_size: int) -> Iterator[list[RawRecord]]:
    try:
        parquet = pq.ParquetFile(str(path))
        for batch in parquet.iter_batches(batch_size=chunk_size):
            yield list(batch.to_pylist())
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInput(f"{path.name} is not a readable Parquet file: {type(exc).__name__}") from exc


def _jsonl_chunks(path: Path, chunk_size: int) -> Iterator[list[RawRecord]]:
    chunk: list[RawRecord] = []
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.strip():
                continue
            chunk.append(_parse_line(raw))
            if len(chunk) >= chunk_size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _parse_line(raw: bytes) -> RawRecord:
    # Invalid UTF-8 is replaced (U+FFFD), so cleaning flags the record as broken encoding instead of losing
    # it.
    try:
        value = json.loads(raw.decode("utf-8", errors="replace"))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
