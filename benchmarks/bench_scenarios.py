"""The scenario suite (tests/scenarios) against the embedded AWS, with what it sent and saw, as figures.

Every scenario runs the real state machines, Lambda handlers, training entrypoint and serving app; each adds
the emails it sent, saw classified, saw land in a DLQ or never saw again, the duplicate events it received
and the answers that crossed tenants. Last line: one JSON object with ``scenarios``, ``scenarios_passed``,
those counts and ``seconds``. ``emails_lost``, ``duplicate_events`` and ``cross_tenant_leaks`` must be 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPORT_ENV = "CONVCLASS_SCENARIO_REPORT"


class _Outcomes:
    """Counts test outcomes (a test is one scenario)."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when == "call" and report.passed:
            self.passed += 1
        elif report.failed:
            self.failed.append(report.nodeid)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default=None, help="only scenarios matching this pytest expression")
    args = parser.parse_args()
    outcomes = _Outcomes()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "counts.json"
        os.environ[REPORT_ENV] = str(report)
        started = time.perf_counter()
        argv = ["-q", "-p", "no:xdist", "-p", "no:cacheprovider", str(ROOT / "tests" / "scenarios")]
        if args.k:
            argv += ["-k", args.k]
        code = pytest.main(argv, plugins=[outcomes])
        seconds = time.perf_counter() - started
        counts = json.loads(report.read_text()) if report.is_file() else {}
    summary = {
        "scenarios": outcomes.passed + len(outcomes.failed),
        "scenarios_passed": outcomes.passed,
        **counts,
        "failed": outcomes.failed,
        "seconds": round(seconds, 1),
    }
    print(json.dumps(summary))
    ok = code == 0 and all(
        counts.get(k, 0) == 0 for k in ("emails_lost", "duplicate_events", "cross_tenant_leaks")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
