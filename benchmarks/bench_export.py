"""Export throughput and memory: N conversations, MongoDB path (mongomock) → Parquet parts on moto S3.

    python benchmarks/bench_export.py [--conversations 100000] [--data /work/shared/datasets/banking77]

1. A separate process plays the database server: it seeds mongomock with N conversations in convclass's
   default document model (first inbound email + an agent reply per thread), wrapping Banking77 texts
   (public, CC BY 4.0, from github.com/PolyAI-LDN/task-specific-datasets ``banking_data/``) or, when the
   folder is missing, the generator's built-in templates. It answers ``find`` / ``getMore`` with BSON-encoded
   batches over a pipe, as a MongoDB server answers pymongo, so the exporting process holds only what it
   reads (a real deployment never holds the database in the Lambda either).
2. Baseline, same run: a bare read of the same query, projection and sort through the same server (what the
   source costs without convclass).
3. The export (consent check, MongoSource, normalization, Parquet parts, manifest) into a moto S3
   bucket in the exporting process, then every part is read back and its rows counted.

``peak_rss_mb`` is the exporting process's peak resident set (getrusage ru_maxrss; it includes moto's
in-memory S3 holding every part); ``store_peak_rss_mb`` is the database process's. Floors: peak_rss_mb ≤ 400
and exactly N records exported and read back. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import logging
import multiprocessing
import os
import resource
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
import bson  # noqa: E402
import mongomock  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from moto import mock_aws  # noqa: E402

from convclass.export.consent import ConsentRecord, record_consent  # noqa: E402
from convclass.export.mapping import DocumentMapping, conversation_document  # noqa: E402
from convclass.export.mongo import MongoSource  # noqa: E402
from convclass.export.request import ExportRequest, ExportSummary  # noqa: E402
from convclass.export.run import ExportTarget, execute  # noqa: E402
from convclass.export.source import ExportQuery  # noqa: E402
from convclass.export.window import EPOCH, TimeWindow  # noqa: E402
from convclass.layout import ClassifierLayout  # noqa: E402
from convclass_local.generator import BANKING77_DEFAULT_DIR, iter_emails, load_banking77  # noqa: E402

FLOOR_PEAK_RSS_MB = 400.0
BUCKET = "convclass-bench"
TENANT, CLASSIFIER, LABEL = "bench-bank", "intents", "intent"
NOW = datetime(2100, 1, 1, tzinfo=UTC)  # after every generated conversation
CODEC = bson.CodecOptions(tz_aware=True)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def seed(collection: Any, n: int, data: Path, batch: int = 5000) -> str:
    examples = None
    corpus = "built-in templates"
    try:
        examples = load_banking77(data)
        corpus = f"banking77 ({len(examples)} texts)"
    except FileNotFoundError as missing:
        print(f"{missing}; using the generator's templates", file=sys.stderr)
    emails = iter_emails(
        n, seed=77, examples=examples, tenant_id=TENANT, label_field=LABEL, duplicate_rate=0.0
    )
    pending: list[dict[str, Any]] = []
    for email in emails:
        pending.append(conversation_document(email, agent_reply="Thanks, we are looking into it."))
        if len(pending) == batch:
            collection.insert_many(pending)
            pending = []
    if pending:
        collection.insert_many(pending)
    return corpus


def serve_store(conn: Connection, n: int, data: Path) -> None:
    """The database process: owns the mongomock store and serves find/getMore in BSON batches."""
    collection = mongomock.MongoClient(tz_aware=True)["support"]["conversations"]
    corpus = seed(collection, n, data)
    conn.send_bytes(bson.encode({"corpus": corpus}))
    cursor: Iterator[dict[str, Any]] = iter(())
    batch = 0
    while True:
        message = bson.decode(conn.recv_bytes(), CODEC)
        if message["op"] == "find":
            sort = [tuple(pair) for pair in message["sort"]]
            cursor = iter(collection.find(message["filter"], message["projection"], sort=sort))
            batch = message["batch_size"]
        if message["op"] in {"find", "getMore"}:
            conn.send_bytes(b"".join(bson.encode(d) for d in itertools.islice(cursor, batch)))
        elif message["op"] == "stats":
            conn.send_bytes(bson.encode({"peak_rss_mb": rss_mb()}))
        elif message["op"] == "close":
            return


class RemoteCollection:
    """The exporting side: a collection whose cursors fetch BSON batches on demand, like pymongo's."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def send(self, message: dict[str, Any]) -> None:
        self._conn.send_bytes(bson.encode(message))

    def find(
        self, condition: dict[str, Any], projection: dict[str, Any], *, sort: list[tuple[str, int]],
        batch_size: int, **_: Any,
    ) -> Iterator[dict[str, Any]]:  # fmt: skip
        self.send({"op": "find", "filter": condition, "projection": projection,
                   "sort": [list(pair) for pair in sort], "batch_size": batch_size})  # fmt: skip

        def documents() -> Iterator[dict[str, Any]]:
            while data := self._conn.recv_bytes():
                yield from bson.decode_all(data, CODEC)
                self.send({"op": "getMore"})

        return documents()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--data", type=Path, default=BANKING77_DEFAULT_DIR, help="Banking77 folder")
    parser.add_argument("--batch-size", type=int, default=1000, help="MongoDB cursor batch size")
    args = parser.parse_args()
    logging.getLogger("botocore").setLevel(logging.WARNING)
    for name, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
        os.environ.setdefault(name, value)

    parent, child = multiprocessing.get_context("fork").Pipe()
    server = multiprocessing.get_context("fork").Process(
        target=serve_store, args=(child, args.conversations, args.data), daemon=True
    )
    started = time.perf_counter()
    server.start()
    ready = bson.decode(parent.recv_bytes(), CODEC)
    seed_s = time.perf_counter() - started
    collection = RemoteCollection(parent)
    mapping = DocumentMapping()

    def source() -> MongoSource:
        return MongoSource(collection, mapping, description="mongomock server", batch_size=args.batch_size)

    # Baseline: the same query through the same server, no normalization and no writing.
    query = ExportQuery(tenant=TENANT, label_field=LABEL, window=TimeWindow(start=EPOCH, end=NOW))
    baseline = source()
    started = time.perf_counter()
    read_only = sum(
        1
        for _ in collection.find(
            baseline.query_filter(query),
            baseline.projection(query),
            sort=[(mapping.time_field, 1), ("_id", 1)],
            batch_size=args.batch_size,
        )
    )
    read_s = time.perf_counter() - started

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        where = ClassifierLayout(TENANT, CLASSIFIER)
        record_consent(
            s3,
            BUCKET,
            where,
            ConsentRecord(approved=True, approved_by="bench", approved_at=NOW),
            kms_key_arn=None,
        )
        run = "bench-1"
        request = ExportRequest.model_validate(
            {
                "tenant": TENANT, "classifier": CLASSIFIER, "label_field": LABEL, "run_id": run,
                "data_source": {"kind": "mongodb"}, "full_export": True, "bucket": BUCKET,
                "output_prefix": where.export_prefix(run), "manifest_key": where.export_manifest_key(run),
                "consent_key": where.consent_key, "watermark_key": where.watermark_key,
                "window": {"end": NOW.isoformat()},
            }
        )  # fmt: skip
        started = time.perf_counter()
        result = execute(request, ExportTarget(s3=s3, bucket=BUCKET, clock=lambda: NOW), source)
        export_s = time.perf_counter() - started
        assert isinstance(result, ExportSummary)

        manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=where.export_manifest_key(run))["Body"].read())
        read_back = 0
        for part in manifest["parts"]:
            data = s3.get_object(Bucket=BUCKET, Key=part["key"])["Body"].read()
            read_back += pq.ParquetFile(io.BytesIO(data)).metadata.num_rows
        largest_part = max((p["bytes"] for p in manifest["parts"]), default=0)

    peak = rss_mb()
    collection.send({"op": "stats"})
    store_peak = bson.decode(parent.recv_bytes(), CODEC)["peak_rss_mb"]
    collection.send({"op": "close"})
    server.join(timeout=30)
    exact = result.records == read_back == args.conversations and result.read == args.conversations
    figures = {
        "records": result.records,
        "records_read_back": read_back,
        "skipped": result.skipped,
        "parts": result.parts,
        "largest_part_mb": round(largest_part / 2**20, 2),
        "seconds": round(export_s, 2),
        "records_per_s": round(result.records / export_s, 1),
        "baseline_read_only_records_per_s": round(read_only / read_s, 1),
        "export_vs_read_only_time_ratio": round(export_s / read_s, 2),
        "peak_rss_mb": round(peak, 1),
        "store_peak_rss_mb": round(store_peak, 1),
        "seed_seconds": round(seed_s, 1),
        "corpus": ready["corpus"],
        "load_average_1m": round(os.getloadavg()[0], 2),
        "floor_peak_rss_mb": FLOOR_PEAK_RSS_MB,
        "floors_met": exact and peak <= FLOOR_PEAK_RSS_MB,
    }
    print(json.dumps(figures))
    return 0 if figures["floors_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
