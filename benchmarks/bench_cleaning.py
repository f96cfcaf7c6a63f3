"""Cleaning quality on the fixture corpus: the customer's words kept, boilerplate left, PII values masked.

The corpus (tests/fixtures/cleaning: hand-written emails plus seeded generated ones) lists, for each email,
the words that must survive, the boilerplate words that must not, and the planted PII values:

- ``core_recall``: share of the customers' words found in the cleaned text;
- ``leak_rate``: share of emails whose cleaned text still holds any boilerplate word;
- ``pii_masked``: share of planted PII values with no part left (beyond what the message itself says).

The same figures for BeautifulSoup ``get_text()`` (HTML) or the raw body (plain text) show what cleaning adds.
``emails_per_s`` is cleaning throughput on the corpus in CPU time (best of ``--rounds``). Removals per kind
(``CleanedEmail.removed``) are summed over the corpus. The last line printed is one JSON object.

    python benchmarks/bench_cleaning.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "cleaning"))

from bs4 import BeautifulSoup  # noqa: E402
from cleaning_corpus import load_corpus, score  # noqa: E402

from convclass.cleaning import clean_email  # noqa: E402
from convclass_local.cleaning_build import cleaning_build  # noqa: E402

FLOOR_CORE_RECALL = 0.98
CEILING_LEAK_RATE = 0.05
FLOOR_PII_MASKED = 0.99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    emails = load_corpus()
    cleaned = [clean_email(e.subject, e.body, e.content_type) for e in emails]
    figures = score(emails, [c.text for c in cleaned])
    removed: Counter[str] = Counter()
    for result in cleaned:
        removed.update(result.removed)
    peer = score(
        emails,
        [
            BeautifulSoup(e.body, "html.parser").get_text(" ") if "html" in e.content_type else e.body
            for e in emails
        ],
    )
    best = float("inf")
    for _ in range(args.rounds):
        start = time.process_time()
        for e in emails:
            clean_email(e.subject, e.body, e.content_type)
        best = min(best, time.process_time() - start)
    result = {
        **figures,
        "emails_per_s": round(len(emails) / best, 1),
        # Whether these are figures of the compiled cleaning that ships (setup.py), built from this source.
        "cleaning_compiled": cleaning_build().fresh,
        "removed": dict(sorted(removed.items())),
        "bs4_core_recall": peer["core_recall"],
        "bs4_leak_rate": peer["leak_rate"],
        "bs4_pii_masked": peer["pii_masked"],
        "floor_core_recall": FLOOR_CORE_RECALL,
        "ceiling_leak_rate": CEILING_LEAK_RATE,
        "floor_pii_masked": FLOOR_PII_MASKED,
        "meets_floors": figures["core_recall"] >= FLOOR_CORE_RECALL
        and figures["leak_rate"] <= CEILING_LEAK_RATE
        and figures["pii_masked"] >= FLOOR_PII_MASKED,
    }
    print(
        f"{result['emails']} emails: recall {result['core_recall']}, leak rate {result['leak_rate']}, "
        f"PII masked {result['pii_masked']} (BeautifulSoup text: {peer['core_recall']}, {peer['leak_rate']}, "
        f"{peer['pii_masked']}); {result['emails_per_s']} emails/s"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
