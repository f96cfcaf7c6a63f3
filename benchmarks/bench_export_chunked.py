"""Chunked export on the embedded AWS: the export part of the training pipeline, real export handler.

    python benchmarks/bench_export_chunked.py [--conversations 1000000] [--slice 100000] [--chunks 8]
        [--concurrency 4] [--data /work/shared/datasets/banking77]

The state machine is the export section cut from the rendered training pipeline (``PlanExport`` →
``ExportSize`` → ``Export`` | ``ExportChunks`` → ``FinalizeExport``; the inline-Map rendering moto's engine
runs), with ``Preprocess`` replaced by a Succeed state. The export function is the real handler, run in
process by the engine's Lambda shim; its source is a files drop (JSON Lines on moto S3) of generated
conversations (Banking77 texts when the folder exists, else the generator's templates; ``POOL`` distinct
emails repeated under new conversation ids) whose change times are spread evenly from 1971 to 2025, so the
plan's even time chunks hold similar numbers of records.

1. Chunked: ``--conversations`` records with the export function's default size rule (the plan counts the
   window's records at the source, here an estimate from the drop's bytes, and a window over
   ``DEFAULT_MAP_MIN_RECORDS`` goes to the Map); ``--chunks`` chunks run by the Map at ``--concurrency``.
2. Single task, same run: ``--slice`` records through the same machine with the size rule set out of reach
   (one ``Export`` task), and the chunked path on another drop of the same size (size rule 0).

What it measures locally, honestly: the engine runs Map iterations as threads of this one process, and the
files source reads the whole drop for every chunk (it filters rows by change time; a database source asks
its index for the chunk's window), so ``speedup_vs_single_task`` here is the cost of the chunked path on one
process, not the speedup of parallel Lambdas on AWS. ``peak_rss_mb_per_chunk``: the process's peak
resident set during the chunked export (sampled every 50 ms) minus before it (after freed memory is
handed back to the OS; moto's in-memory S3 holding
the parts included), divided by the iterations that ran at once. ``transitions``: states entered by the
export's execution (Map iterations included; on AWS a Distributed Map bills its child executions'
transitions the same way). Last line: JSON.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import resource
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
import pyarrow as pa  # noqa: E402
from moto import mock_aws  # noqa: E402

from convclass import layout  # noqa: E402
from convclass.export.consent import ConsentRecord, record_consent  # noqa: E402
from convclass.export.manifest import ExportManifest  # noqa: E402
from convclass.export.run import DEFAULT_MAP_MIN_RECORDS  # noqa: E402
from convclass.steps.plan import plan_run  # noqa: E402
from convclass_local import moto_shims  # noqa: E402
from convclass_local.generator import BANKING77_DEFAULT_DIR, iter_emails, load_banking77  # noqa: E402
from convclass_local.workflow_lab import BUCKET, REGION, build_world, hooks, request, run_handler  # noqa: E402
from statemachine import PipelineSettings, render_training_pipeline  # noqa: E402
from statemachine.history import ExecutionRecord, wait_for  # noqa: E402
from statemachine.training import names as t  # noqa: E402

EXPORT_STATES = (t.PLAN_EXPORT, t.EXPORT_SIZE, t.EXPORT, t.EXPORT_CHUNKS, t.FINALIZE_EXPORT)
DONE, STOPPED = "Exported", "ExportStopped"
FIRST, LAST = datetime(1971, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)
ROWS_PER_FILE = 50_000
#: Distinct generated emails; a bigger drop repeats them under new conversation ids and change times (what an
#: export does per record does not depend on the text, and Banking77 has 10,003 training texts anyway).
POOL = 20_000


def rss_mb() -> float:
    """The process's current resident set (Linux /proc)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() / 2**20


class PeakRss:
    """Samples the resident set every 50 ms while running; ``growth``: the peak above the start."""

    def __init__(self) -> None:
        # Hand memory freed earlier (generating the drop) back to the OS, so the start is what is live.
        gc.collect()
        pa.default_memory_pool().release_unused()
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        self.start = self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_mb())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())

    @property
    def growth(self) -> float:
        return self.peak - self.start


def export_machine(settings: PipelineSettings, resources: Any) -> dict[str, Any]:
    """The export section of the rendered training pipeline; Preprocess and every catcher end it."""
    states = render_training_pipeline(resources, settings)["States"]
    section = {name: json.loads(json.dumps(states[name])) for name in EXPORT_STATES}
    for state in section.values():
        if state.get("Next") == t.PREPROCESS:
            state["Next"] = DONE
        for rule in state.get("Catch", []):
            rule["Next"] = STOPPED
    section[DONE] = {"Type": "Succeed"}
    section[STOPPED] = {"Type": "Fail", "Error": "ExportStopped"}
    return {"StartAt": t.PLAN_EXPORT, "States": section}


def drop(tenant: str, n: int, data: Path) -> None:
    """``n`` conversations as JSON Lines files under the tenant's drop, change times spread evenly."""
    try:
        examples = load_banking77(data)
    except FileNotFoundError as missing:
        print(f"{missing}; using the generator's templates", file=sys.stderr)
        examples = None
    s3 = boto3.client("s3", region_name=REGION)
    step = (LAST - FIRST) / max(n, 1)
    lines: list[str] = []
    pool = list(
        iter_emails(
            min(n, POOL), seed=77, examples=examples, tenant_id=tenant, label_field="intent", duplicate_rate=0
        )
    )
    for index in range(n):
        email = {
            **pool[index % len(pool)],
            "conversation_id": f"{tenant}-{index:07d}",
            "updated_at": (FIRST + step * index).isoformat(),
        }
        lines.append(json.dumps(email, default=str))
        if len(lines) == ROWS_PER_FILE or index == n - 1:
            key = f"drop/{tenant}/part-{index // ROWS_PER_FILE:05d}.jsonl"
            s3.put_object(Bucket=BUCKET, Key=key, Body=("\n".join(lines) + "\n").encode())
            lines = []
    record = ConsentRecord(approved=True, approved_by="bench", approved_at=datetime.now(UTC))
    record_consent(s3, BUCKET, layout.ClassifierLayout(tenant, "support"), record, kms_key_arn=None)


def export_environment(size_rule: str) -> None:
    lam = boto3.client("lambda", region_name=REGION)
    current = lam.get_function_configuration(FunctionName="convclass-export")["Environment"]["Variables"]
    changed = {
        **current,
        "CONVCLASS_EXPORT_SETTLE_SECONDS": "0",
        "CONVCLASS_EXPORT_MAP_MIN_RECORDS": size_rule,
    }
    lam.update_function_configuration(FunctionName="convclass-export", Environment={"Variables": changed})


def run(arn: str, tenant: str, timeout_s: float) -> tuple[ExecutionRecord, float, ExportManifest]:
    name = f"{tenant}-support-1"
    plan = plan_run(request(tenant), execution_name=name, bucket=BUCKET)
    sfn = boto3.client("stepfunctions", region_name=REGION)
    started = time.perf_counter()
    execution = sfn.start_execution(
        stateMachineArn=arn, name=name, input=json.dumps({"plan": plan.model_dump(mode="json")})
    )["executionArn"]
    record = wait_for(sfn, execution, timeout_s=timeout_s, poll_s=0.5)
    seconds = time.perf_counter() - started
    if record.status != "SUCCEEDED":
        raise SystemExit(f"{tenant}: export ended {record.status}: {record.error} {record.cause}")
    body = boto3.client("s3", region_name=REGION).get_object(Bucket=BUCKET, Key=plan.export.manifest_key)
    return record, seconds, ExportManifest.model_validate_json(body["Body"].read())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=1_000_000)
    parser.add_argument("--slice", type=int, default=100_000, help="records of the single-task comparison")
    parser.add_argument("--chunks", type=int, default=8, help="the plan's max_chunks")
    parser.add_argument("--concurrency", type=int, default=4, help="the Map's MaxConcurrency")
    parser.add_argument("--data", type=Path, default=BANKING77_DEFAULT_DIR)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds one export may take")
    parser.add_argument(
        "--size-rule",
        type=int,
        default=DEFAULT_MAP_MIN_RECORDS,
        help="the export function's CONVCLASS_EXPORT_MAP_MIN_RECORDS for the big drop (default: the stack's)",
    )
    args = parser.parse_args()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "b",
        "AWS_SECRET_ACCESS_KEY": "b",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        os.environ.setdefault(name, value)
    settings = PipelineSettings(
        export_map="inline", export_max_concurrency=args.concurrency, export_max_chunks=args.chunks
    )
    config = {"stepfunctions": {"execute_state_machine": True}}
    with mock_aws(config=config), moto_shims.installed(hooks(lambda_dispatch=run_handler)):
        world = build_world()
        sfn = boto3.client("stepfunctions", region_name=REGION)
        role = sfn.describe_state_machine(stateMachineArn=world.training_arn)["roleArn"]
        arn = sfn.create_state_machine(
            name="convclass-export-bench",
            definition=json.dumps(export_machine(settings, world.resources)),
            roleArn=role,
        )["stateMachineArn"]
        slice_n = min(args.slice, args.conversations)
        drop("bench-big", args.conversations, args.data)
        drop("bench-slice-chunked", slice_n, args.data)
        drop("bench-slice-single", slice_n, args.data)

        export_environment(str(args.size_rule))
        with PeakRss() as memory:
            chunked, chunked_s, manifest = run(arn, "bench-big", args.timeout)
        export_environment("0")
        slice_chunked, slice_chunked_s, _ = run(arn, "bench-slice-chunked", args.timeout)
        export_environment(str(10**12))
        single, single_s, single_manifest = run(arn, "bench-slice-single", args.timeout)

    iterations = chunked.entered.count(t.EXPORT_CHUNK)
    if t.EXPORT in chunked.entered or t.EXPORT_CHUNKS in single.entered or t.EXPORT not in single.entered:
        raise SystemExit("the size rule did not pick the expected paths")
    result = {
        "records": manifest.counts.exported,
        "size_rule_records": args.size_rule,
        "conversations": args.conversations,
        "chunks": manifest.chunks,
        "map_iterations": iterations,
        "concurrency": args.concurrency,
        "peak_rss_mb_per_chunk": round(memory.growth / max(1, min(args.concurrency, iterations)), 1),
        "records_per_s": round(manifest.counts.exported / chunked_s, 1),
        "seconds": round(chunked_s, 2),
        "transitions": chunked.transitions,
        "slice_records": single_manifest.counts.exported,
        "slice_single_task_s": round(single_s, 2),
        "slice_chunked_s": round(slice_chunked_s, 2),
        "slice_single_task_transitions": single.transitions,
        "slice_chunked_transitions": slice_chunked.transitions,
        "speedup_vs_single_task": round(single_s / slice_chunked_s, 3),
        "engine": "moto inline Map (threads of one process)",
    }
    print(json.dumps(result))
    return 0 if manifest.counts.exported == args.conversations else 1


if __name__ == "__main__":
    raise SystemExit(main())
