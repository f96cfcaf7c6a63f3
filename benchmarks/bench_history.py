"""Training-history compaction: memory stays flat in the email text as the history grows.

    python benchmarks/bench_history.py [--records 200000] [--data /work/shared/datasets/banking77]

For a history of N and of 4N conversations (Banking77 texts wrapped as HTML emails by the generator, or its
built-in templates when the folder is missing) plus an incremental export of N/10 changes (half relabelled
conversations, a tenth deletions, the rest new), each measured in a fresh process:

- ``compact``: what preprocess runs (``convclass.dataset.history.compact``), peak RSS (VmHWM, reset through
  ``/proc/self/clear_refs``) above the process's RSS after imports;
- baseline, same run: reading the same parts whole with ``pyarrow.parquet.read_table`` (what merging in
  memory would cost before any deduplication), measured the same way.

Floors: the merged history holds exactly the expected conversations; from N to 4N, compaction's extra memory
grows by less than half as much as the baseline's (text stays on disk; per-record keys stay in memory). The
last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from convclass_local.generator import BANKING77_DEFAULT_DIR, iter_emails, load_banking77, write_parquet  # noqa: E402

PART_ROWS = 50_000


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024.0  # kB
    raise RuntimeError(f"/proc/self/status has no {field}")


def reset_peak_mb() -> float:
    """Reset the process's peak RSS to its current RSS (Linux ≥ 4.0) and return that RSS."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mb("VmRSS")


def _write(rows: list[dict[str, Any]], folder: Path, prefix: str) -> list[Path]:
    paths = []
    for start in range(0, len(rows), PART_ROWS):
        path = folder / f"{prefix}-{start // PART_ROWS:05d}.parquet"
        write_parquet(rows[start : start + PART_ROWS], path)
        paths.append(path)
    return paths


def make_inputs(n: int, data: Path, folder: Path) -> tuple[list[Path], list[Path], int]:
    """Base parts of ``n`` conversations and an export of n/10 changes; returns the expected history size."""
    try:
        examples = load_banking77(data)
    except FileNotFoundError as missing:
        print(f"{missing}; using the generator's templates", file=sys.stderr)
        examples = None
    base = list(iter_emails(n, seed=5, examples=examples, tenant_id="bench", label_field="intent"))
    for index, row in enumerate(base):
        row["conversation_id"] = f"c{index:09d}"
    later = datetime(2100, 1, 1, tzinfo=UTC)
    changes = n // 10
    relabelled = [
        {**base[i], "updated_at": later, "labels": {"intent": "relabelled"}} for i in range(changes // 2)
    ]
    deleted = [
        {**base[i], "updated_at": later, "body": "", "labels": {}, "deleted": True}
        for i in range(changes // 2, changes // 2 + changes // 10)
    ]
    new = [
        {**base[i], "conversation_id": f"n{i:09d}", "updated_at": later + timedelta(seconds=1)}
        for i in range(changes - len(relabelled) - len(deleted))
    ]
    base_files = _write(base, folder, "base")
    export_files = _write([*relabelled, *deleted, *new], folder, "export")
    return base_files, export_files, n - len(deleted) + len(new)


def _measure(kind: str, base: list[Path], exported: list[Path], out: Path, answer: Any) -> None:
    import pyarrow.parquet as pq

    from convclass.dataset.history import compact

    before = reset_peak_mb()
    started = time.perf_counter()
    if kind == "compact":
        merged = compact(base, exported, out)
        records = merged.counts.kept
    else:
        tables = [pq.read_table(str(path)) for path in [*base, *exported]]
        records = sum(table.num_rows for table in tables)
    answer.send(
        {
            "extra_mb": _status_mb("VmHWM") - before,
            "seconds": time.perf_counter() - started,
            "records": records,
        }
    )


def measured(kind: str, base: list[Path], exported: list[Path], out: Path) -> dict[str, Any]:
    receive, send = multiprocessing.Pipe(duplex=False)
    process = multiprocessing.get_context("spawn").Process(
        target=_measure, args=(kind, base, exported, out, send)
    )
    process.start()
    result: dict[str, Any] = receive.recv()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000, help="N: the smaller history")
    parser.add_argument("--data", type=Path, default=BANKING77_DEFAULT_DIR, help="the Banking77 folder")
    args = parser.parse_args()
    figures: dict[str, Any] = {"benchmark": "history", "records": args.records}
    for label, n in (("small", args.records), ("large", 4 * args.records)):
        with tempfile.TemporaryDirectory(prefix="convclass-bench-history-") as scratch:
            folder = Path(scratch)
            base, exported, expected = make_inputs(n, args.data, folder)
            input_mb = sum(p.stat().st_size for p in [*base, *exported]) / 2**20
            compacted = measured("compact", base, exported, folder / "out")
            baseline = measured("read_table", base, exported, folder / "baseline")
            assert compacted["records"] == expected, (compacted["records"], expected)
            figures[label] = {
                "history": n,
                "input_parquet_mb": round(input_mb, 1),
                "compact_extra_rss_mb": round(compacted["extra_mb"], 1),
                "compact_seconds": round(compacted["seconds"], 2),
                "baseline_extra_rss_mb": round(baseline["extra_mb"], 1),
                "kept": compacted["records"],
            }
    small, large = figures["small"], figures["large"]
    compact_growth = large["compact_extra_rss_mb"] - small["compact_extra_rss_mb"]
    baseline_growth = large["baseline_extra_rss_mb"] - small["baseline_extra_rss_mb"]
    figures["compact_growth_mb"] = round(compact_growth, 1)
    figures["baseline_growth_mb"] = round(baseline_growth, 1)
    figures["growth_ratio_to_baseline"] = (
        round(compact_growth / baseline_growth, 3) if baseline_growth else None
    )
    figures["flat"] = baseline_growth > 0 and compact_growth < 0.5 * baseline_growth
    print(json.dumps(figures))
    if not figures["flat"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
