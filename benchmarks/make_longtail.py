"""Write a long-tailed copy of a ``train.csv``/``test.csv`` folder (e.g. Banking77) for ``bench_train.py``.

    python benchmarks/make_longtail.py [SOURCE_DIR] [--out DIR] [--most 500] [--fewest 20] [--seed 0]

Labels are put in a random order (``--seed``) and the i-th of k keeps
``most * (fewest / most) ** (i / (k-1))`` training rows — a geometric long tail from ``--most`` down to
``--fewest`` — or all it has when that is fewer (Banking77 has 35 to 187 training rows per label, so its head
is capped well below 500). ``test.csv`` is copied unchanged: a balanced test split shows whether the rare
labels work. The folder is written to a new temporary directory unless ``--out`` is given; it is benchmark
input, never committed. The last line printed is one JSON object naming the folder and the per-label counts.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from convclass_local.generator import BANKING77_DEFAULT_DIR, load_banking77


def long_tail_counts(k: int, most: int, fewest: int) -> list[int]:
    if k == 1:
        return [most]
    return [round(most * (fewest / most) ** (i / (k - 1))) for i in range(k)]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", nargs="?", type=Path, default=BANKING77_DEFAULT_DIR)
    parser.add_argument("--out", type=Path, help="target folder (default: a new temporary directory)")
    parser.add_argument("--most", type=int, default=500)
    parser.add_argument("--fewest", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        rows = load_banking77(args.source, "train")
    except FileNotFoundError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    by_label: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        by_label.setdefault(row.label, []).append(index)
    labels = [sorted(by_label)[i] for i in rng.permutation(len(by_label))]
    kept: list[int] = []
    counts: dict[str, int] = {}
    for label, wanted in zip(labels, long_tail_counts(len(labels), args.most, args.fewest), strict=True):
        members = by_label[label]
        take = min(wanted, len(members))
        kept.extend(members[i] for i in rng.permutation(len(members))[:take])
        counts[label] = take
    out = args.out or Path(tempfile.mkdtemp(prefix="convclass-longtail-"))
    out.mkdir(parents=True, exist_ok=True)
    with (out / "train.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "category"])
        writer.writerows((rows[i].text, rows[i].label) for i in sorted(kept))
    shutil.copyfile(args.source / "test.csv", out / "test.csv")
    values = sorted(counts.values())
    print(
        json.dumps(
            {
                "folder": str(out),
                "train_rows": len(kept),
                "labels": len(counts),
                "rows_per_label_min_median_max": [values[0], values[len(values) // 2], values[-1]],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
