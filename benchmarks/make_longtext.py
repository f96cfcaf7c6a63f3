"""Write a long-email copy of a ``train.csv``/``test.csv`` folder (e.g. Banking77) for ``bench_train.py``.

    python benchmarks/make_longtext.py [SOURCE_DIR] [--out DIR] [--context 12] [--at-end 0.5] [--seed 0]

Each text becomes a long email: the original request plus ``--context`` sentences of label-neutral
background (who the customer is, what they tried, courtesy) drawn from a fixed pool, so that most emails run
past 128 tokens. The request sits at the end of the email for a share ``--at-end`` of the rows and at the
start for the others. Where the request sits decides which truncation wins — head-only sees only requests at
the start — so the figures this folder gives are about this mix, not about every tenant's mail; that is why
the training job chooses the truncation per tenant on validation (``truncation=auto``). The folder is
benchmark input, never committed. The last line printed is one JSON object naming the folder.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from convclass_local.generator import BANKING77_DEFAULT_DIR, load_banking77

CONTEXT = (
    "I have been a customer of yours for a number of years and have always been happy with the service.",
    "I am writing from my work computer because my phone is being repaired at the moment.",
    "I tried to call the help line yesterday afternoon but the waiting time was over an hour.",
    "My partner suggested I send an email instead, since it is easier to explain everything in writing.",
    "I looked through the frequently asked questions on your website before writing to you.",
    "Please excuse the long message, I want to make sure you have all the details you need.",
    "I am travelling for most of next month, so a quick answer would be much appreciated.",
    "I also spoke to one of your colleagues in the branch last week, who was very friendly.",
    "For what it is worth, the app has otherwise been working well for me.",
    "I have attached nothing to this email, but I can send documents if you need them.",
    "My details should all be up to date in your system, I checked them recently.",
    "I am not very good with technology, so please keep the explanation simple.",
    "Thank you in advance for taking the time to read this and for your help.",
    "I would prefer to be contacted by email rather than by phone, if that is possible.",
    "This is the first time I have had to contact you about anything like this.",
    "I am usually available in the mornings if someone needs to reach me.",
    "I also have a savings account with you, in case that matters.",
    "A friend of mine had something similar happen a while ago, and it was sorted out quickly.",
    "I would appreciate a reference number for this conversation so I can follow up.",
    "Sorry if this is the wrong address for this kind of question.",
)


def long_email(text: str, rng: np.random.Generator, context: int, at_end: float) -> str:
    background = [CONTEXT[i] for i in rng.choice(len(CONTEXT), size=context, replace=False)]
    parts = [*background, text] if rng.random() < at_end else [text, *background]
    return " ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", nargs="?", type=Path, default=BANKING77_DEFAULT_DIR)
    parser.add_argument("--out", type=Path, help="target folder (default: a new temporary directory)")
    parser.add_argument("--context", type=int, default=12, help="background sentences per email")
    parser.add_argument("--at-end", type=float, default=0.5, help="share of emails with the request last")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not 0 < args.context <= len(CONTEXT) or not 0 <= args.at_end <= 1:
        print(f"--context must be 1-{len(CONTEXT)} and --at-end 0-1", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="convclass-longtext-"))
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    lengths = []
    for split in ("train", "test"):
        try:
            rows = load_banking77(args.source, split)
        except FileNotFoundError as exc:
            print(str(exc), file=sys.stderr)
            return 2
        with (out / f"{split}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "category"])
            for row in rows:
                text = long_email(row.text, rng, args.context, args.at_end)
                lengths.append(len(text))
                writer.writerow((text, row.label))
    print(
        json.dumps(
            {
                "folder": str(out),
                "chars_min_median_max": [min(lengths), int(np.median(lengths)), max(lengths)],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
