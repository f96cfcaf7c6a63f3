"""Streams export records to S3 as Parquet parts of bounded size.

Records accumulate column-wise until a part reaches ``max_part_bytes`` of text or ``max_part_rows`` rows,
then the part is encoded, uploaded (with an S3-verified SHA-256) and dropped from memory: peak memory is a
few times one part, whatever the export's size.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from convclass.export.manifest import PartInfo
from convclass.records import EXPORT_RECORD_SCHEMA, ExportRecord

DEFAULT_MAX_PART_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_PART_ROWS = 50_000
#: Rows held as Python objects before they are packed into an Arrow record batch (compact UTF-8).
_BATCH_ROWS = 1024


class PartWriter:
    """Buffers records as Arrow record batches and uploads a Parquet part whenever a limit is reached.

    ``max_part_bytes`` bounds the Arrow (UTF-8) size of a part's data; Python strings are packed into
    batches every ``_BATCH_ROWS`` rows, because a Python string of non-Latin text can take four bytes per
    character.
    """

    def __init__(
        self,
        s3: Any,
        bucket: str,
        key_for_part: Callable[[int], str],
        *,
        max_part_bytes: int = DEFAULT_MAX_PART_BYTES,
        max_part_rows: int = DEFAULT_MAX_PART_ROWS,
        kms_key_id: str | None = None,
    ) -> None:
        """``kms_key_id``: when set, parts are encrypted with that key, else by the bucket's default."""
        if max_part_bytes < 1 or max_part_rows < 1:
            raise ValueError("part limits must be positive")
        self._s3 = s3
        self._bucket = bucket
        self._key_for_part = key_for_part
        self._max_bytes = max_part_bytes
        self._max_rows = max_part_rows
        self._kms_key_id = kms_key_id
        self.parts: list[PartInfo] = []
        self._batches: list[pa.RecordBatch] = []
        self._batched_bytes = 0
        self._batched_rows = 0
        self._reset_rows()

    def _reset_rows(self) -> None:
        self._columns: tuple[list[Any], ...] = tuple([] for _ in EXPORT_RECORD_SCHEMA)
        self._row_bytes = 0

    def add(self, record: ExportRecord) -> None:
        values = (
            record.conversation_id,
            record.tenant_id,
            record.created_at,
            record.updated_at,
            record.subject,
            record.body,
            record.body_content_type,
            list(record.labels.items()),
            record.deleted,
        )
        for column, value in zip(self._columns, values, strict=True):
            column.append(value)
        self._row_bytes += len(record.body.encode()) + len((record.subject or "").encode()) + 64
        rows = len(self._columns[0])
        if rows >= _BATCH_ROWS:
            self._seal()
        if (
            self._batched_bytes + self._row_bytes >= self._max_bytes
            or self._batched_rows + rows >= self._max_rows
        ):
            self.flush()

    def _seal(self) -> None:
        """Pack the buffered Python rows into one Arrow record batch."""
        if not self._columns[0]:
            return
        batch = pa.RecordBatch.from_arrays(
            [
                pa.array(values, type=field.type)
                for values, field in zip(self._columns, EXPORT_RECORD_SCHEMA, strict=True)
            ],
            schema=EXPORT_RECORD_SCHEMA,
        )
        self._batches.append(batch)
        self._batched_bytes += batch.nbytes
        self._batched_rows += batch.num_rows
        self._reset_rows()

    def flush(self) -> None:
        """Upload buffered records as the next part (no-op when nothing is buffered)."""
        self._seal()
        if not self._batches:
            return
        table = pa.Table.from_batches(self._batches, schema=EXPORT_RECORD_SCHEMA)
        self._batches, self._batched_bytes, self._batched_rows = [], 0, 0
        records = table.num_rows
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        del table
        data = buffer.getvalue()
        del buffer
        digest = hashlib.sha256(data)
        key = self._key_for_part(len(self.parts))
        extra: dict[str, str] = {}
        if self._kms_key_id:
            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self._kms_key_id}
        self._s3.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=data,
            ContentType="application/vnd.apache.parquet",
            ChecksumSHA256=base64.b64encode(digest.digest()).decode("ascii"),
            **extra,
        )
        self.parts.append(PartInfo(key=key, records=records, bytes=len(data), sha256=digest.hexdigest()))

    def close(self) -> list[PartInfo]:
        self.flush()
        return list(self.parts)
