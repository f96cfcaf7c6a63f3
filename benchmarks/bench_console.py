"""The customer console in a real browser: a two-tenant demo state, every page, axe, cross-tenant requests.

Builds the state on an embedded AWS with the real pipeline (each tenant trains and deploys a small model,
the first tenant's second run waits at its deployment gate, inbound emails are classified), starts the
console, and drives it with the system's headless Chromium: every page of each tenant at 1280 and 390 px
(load time, axe-core serious/critical violations, sideways overflow), screenshots of the first tenant's pages
into ``--out``, every URL of each tenant requested with the other tenant's session, and the waiting
deployment approved by clicking Approve.

Last line: one JSON object with ``pages_checked``, ``page_load_ms_p95``, ``axe_serious_violations``,
``cross_tenant_requests``, ``cross_tenant_refused``, ``approvals_via_page``, ``rollbacks_via_page``,
``screenshots`` (and the seconds the state took to build).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from convclass_local.browser import check_console, chromium_path
from convclass_local.console import build_demo_state
from convclass_local.runtime import LocalRuntime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/console"), help="where screenshots go")
    parser.add_argument("--emails", type=int, default=600, help="labelled emails per tenant and run")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    if chromium_path() is None:
        print("chromium is not installed: run `make install`", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="convclass-console-") as workdir:
        started = time.perf_counter()
        with LocalRuntime(workdir=Path(workdir), persist=False) as runtime:
            state = build_demo_state(runtime, emails=args.emails, epochs=args.epochs)
            built_s = time.perf_counter() - started
            report = check_console(runtime, state, args.out)
    for failure in report.page_failures + report.cross_tenant_leaks + report.overflow_at_390:
        print("problem:", failure, file=sys.stderr)
    for visit in sorted(report.visits, key=lambda v: -v.ms)[:5]:
        print(f"slowest: {visit.ms:.0f} ms {visit.url}", file=sys.stderr)
    for violation in report.axe_serious:
        print("axe:", json.dumps(violation), file=sys.stderr)
    summary = {**report.summary(), "state_build_seconds": round(built_s, 1)}
    print(json.dumps(summary), flush=True)
    ok = (
        not report.page_failures
        and not report.axe_serious
        and report.cross_tenant_requests == report.cross_tenant_refused
        and report.approvals_via_page >= 1
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
