"""Files source: export-record-shaped rows in JSON Lines or Parquet, on a local path or under ``s3://``.

Used by the local demo and by tenants that drop data instead of connecting a store. Rows carry the fields
of :class:`convclass.records.ExportRecord` (``labels`` as an object of label field → value). Reading streams:
JSON Lines in 1 MiB chunks with a cap per line (an oversized document is counted, not loaded), Parquet in
record batches; so memory stays flat whatever the drop's size.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pyarrow.parquet as pq
from botocore.exceptions import BotoCoreError, ClientError

from convclass.errors import SourceUnavailable
from convclass.export.mapping import (
    FilterReason,
    Normalized,
    Repair,
    Skipped,
    SkipReason,
    normalize_record_row,
)
from convclass.export.source import ExportQuery, SourceKind
from convclass.export.window import parse_timestamp
from convclass.layout import parse_s3_uri

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")
PARQUET_SUFFIXES = (".parquet",)
DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024
_READ_CHUNK = 1024 * 1024
#: What :meth:`FilesSource.count` assumes one record takes: a JSON line of a first inbound email (about a KB),
#: and a quarter of that compressed (gzip, Parquet). Only the export plan's size rule uses the estimate.
ESTIMATED_RECORD_BYTES = 1024
ESTIMATED_COMPRESSION = 4
_PARQUET_BATCH_ROWS = 1000
_RECORD_COLUMNS = (
    "conversation_id",
    "tenant_id",
    "created_at",
    "updated_at",
    "subject",
    "body",
    "body_content_type",
    "labels",
)


def _supported(name: str) -> bool:
    return name.lower().endswith(JSONL_SUFFIXES + PARQUET_SUFFIXES)


def read_lines(stream: IO[bytes], max_line_bytes: int) -> Iterator[bytes | None]:
    """Lines of ``stream`` without their newline; ``None`` in place of a line longer than the cap."""
    pending = bytearray()
    discarding = False
    while chunk := stream.read(_READ_CHUNK):
        start = 0
        while (newline := chunk.find(b"\n", start)) >= 0:
            if discarding or len(pending) + newline - start > max_line_bytes:
                yield None
            else:
                pending += chunk[start:newline]
                if pending.strip():
                    yield bytes(pending)
            pending.clear()
            discarding = False
            start = newline + 1
        if not discarding:
            pending += chunk[start:]
            if len(pending) > max_line_bytes:
                discarding = True
                pending.clear()
    if discarding:
        yield None
    elif pending.strip():
        yield bytes(pending)


class FilesSource:
    kind: SourceKind = "files"

    def __init__(
        self,
        uri: str,
        *,
        s3: Any = None,
        max_body_chars: int = 1_000_000,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        """``uri``: a local file or directory, or ``s3://bucket/prefix`` (``s3``: a boto3 S3 client)."""
        self._uri = uri
        self._s3 = s3
        self._max_body_chars = max_body_chars
        self._max_line_bytes = max_line_bytes
        self._unreadable: list[str] = []

    def describe(self) -> str:
        return f"files:{self._uri}"

    def unreadable_locations(self) -> list[str]:
        return list(self._unreadable)

    def close(self) -> None:
        """Nothing to release: each file is closed as soon as it has been read."""

    def count(self, query: ExportQuery) -> int | None:
        """An estimate from the sizes of the dropped files (reading them is the only exact count, and a drop
        holds one tenant's conversations, so the window is not applied)."""
        total = 0
        for name, size in self._listing():
            compressed = name.lower().endswith((".gz", *PARQUET_SUFFIXES))
            total += size * (ESTIMATED_COMPRESSION if compressed else 1)
        return total // ESTIMATED_RECORD_BYTES

    def conversations(self, query: ExportQuery) -> Iterator[Normalized | Skipped]:
        for name, _ in self._listing():
            for item in self._file_items(name, query):
                if isinstance(item, Normalized) and not query.window.contains(item.changed_at):
                    yield Skipped(FilterReason.OUT_OF_WINDOW)
                else:
                    yield item

    def _file_items(self, name: str, query: ExportQuery) -> Iterator[Normalized | Skipped]:
        try:
            if name.lower().endswith(PARQUET_SUFFIXES):
                yield from self._parquet_items(name, query)
            else:
                yield from self._jsonl_items(name, query)
        except (OSError, ValueError, EOFError, ClientError) as error:
            # Corrupt Parquet/gzip, a file deleted between listing and reading, a truncated upload.
            if isinstance(error, ClientError) and not _is_missing_object(error):
                raise SourceUnavailable(f"S3 refused reading a dropped file ({_code(error)})") from None
            self._unreadable.append(name)
            yield Skipped(SkipReason.UNREADABLE_FILE)

    # -- listing ---------------------------------------------------------------------------------------------
    def _listing(self) -> Iterator[tuple[str, int]]:
        """Every supported file of the drop with its size in bytes, in a stable order."""
        if self._uri.startswith("s3://"):
            yield from self._s3_listing()
            return
        root = Path(self._uri)
        if root.is_file():
            yield str(root), root.stat().st_size
        elif root.is_dir():
            files = sorted(p for p in root.rglob("*") if p.is_file() and _supported(p.name))
            yield from ((str(p), p.stat().st_size) for p in files)
        else:
            raise SourceUnavailable("dropped-files location does not exist")

    def _s3_listing(self) -> Iterator[tuple[str, int]]:
        bucket, prefix = parse_s3_uri(self._uri)
        try:
            pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for page in pages:
                for item in page.get("Contents", []):
                    if _supported(item["Key"]):
                        yield f"s3://{bucket}/{item['Key']}", int(item["Size"])
        except ClientError as error:
            raise SourceUnavailable(f"cannot list dropped files ({_code(error)})") from None
        except BotoCoreError as error:
            raise SourceUnavailable(f"cannot list dropped files ({type(error).__name__})") from None

    # -- reading ---------------------------------------------------------------------------------------------
    def _open(self, name: str) -> IO[bytes]:
        if name.startswith("s3://"):
            bucket, key = parse_s3_uri(name)
            body: IO[bytes] = self._s3.get_object(Bucket=bucket, Key=key)["Body"]
            return body
        return open(name, "rb")

    def _jsonl_items(self, name: str, query: ExportQuery) -> Iterator[Normalized | Skipped]:
        raw = self._open(name)
        try:
            stream: IO[bytes] = raw
            if name.lower().endswith(".gz"):
                stream = gzip.GzipFile(fileobj=raw)  # type: ignore[assignment]
            for line in read_lines(stream, self._max_line_bytes):
                yield self._line_item(line, query)
        finally:
            raw.close()

    def _line_item(self, line: bytes | None, query: ExportQuery) -> Normalized | Skipped:
        if line is None:
            return Skipped(SkipReason.DOCUMENT_TOO_LARGE)
        repaired = False
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            text, repaired = line.decode("cp1252", errors="replace"), True
        try:
            row = json.loads(text)
        except ValueError:
            return Skipped(SkipReason.MALFORMED_JSON)
        item = self._row_item(row, query)
        if repaired and isinstance(item, Normalized):
            return dataclasses.replace(item, repairs=(*item.repairs, Repair.CHARSET_FALLBACK))
        return item

    def _row_item(self, row: object, query: ExportQuery) -> Normalized | Skipped:
        if not isinstance(row, dict):
            return Skipped(SkipReason.MALFORMED_DOCUMENT)
        # A drop has no index: every chunk of a chunked export reads all of it. A row dated outside the
        # window is passed over before it is validated, so each chunk counts only its own rows' problems
        # (and skips the cost of normalizing everyone else's).
        changed = parse_timestamp(row.get("updated_at") or row.get("created_at"))
        if changed is not None and not query.window.contains(changed):
            return Skipped(FilterReason.OUT_OF_WINDOW)
        return normalize_record_row(
            row, tenant=query.tenant, label_field=query.label_field, max_body_chars=self._max_body_chars
        )

    def _parquet_items(self, name: str, query: ExportQuery) -> Iterator[Normalized | Skipped]:
        with tempfile.TemporaryDirectory(prefix="convclass-export-") as scratch:
            path = name
            if name.startswith("s3://"):
                # Parquet needs random access (footer first): spool to local disk, never to memory.
                bucket, key = parse_s3_uri(name)
                path = str(Path(scratch) / "part.parquet")
                self._s3.download_file(bucket, key, path)
            parquet = pq.ParquetFile(path)
            columns = [c for c in _RECORD_COLUMNS if c in parquet.schema_arrow.names]
            for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS, columns=columns):
                for row in batch.to_pylist():
                    yield self._row_item(row, query)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "unknown"))


def _is_missing_object(error: ClientError) -> bool:
    return _code(error) in {"NoSuchKey", "404", "NotFound"}
