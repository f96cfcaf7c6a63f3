"""Drive the console in the system's headless Chromium (Playwright), for the browser tests and the benchmark.

The browser is Debian's ``chromium`` package (``make install`` installs it); nothing is downloaded at run
time. Accessibility is checked with axe-core from the project's npm dependencies.
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convclass.console.auth import TokenVerifier

CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
#: axe-core from the repository's npm dependencies (``make install`` runs ``npm install``).
AXE_SCRIPT = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")
WIDTHS = (1280, 390)


def chromium_path() -> str | None:
    """The system Chromium, if installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless system Chromium under Playwright; closed on exit."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    if executable is None:
        raise RuntimeError("chromium is not installed: `make install` installs it (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Visit:
    url: str
    status: int
    ms: float


@dataclass
class ConsoleBrowser:
    """Sessions of tenants on one console, with timings, axe results and screenshots recorded."""

    browser: Any
    base_url: str
    verifier: TokenVerifier
    axe_script: Path = AXE_SCRIPT
    visits: list[Visit] = field(default_factory=list)

    def session(self, tenant: str, *, width: int = 1280) -> Any:
        """A signed-in page of ``tenant`` (own browser context, so cookies never mix between tenants)."""
        context = self.browser.new_context(
            viewport={"width": width, "height": 900},
            # axe-core is injected as a script; the console's CSP forbids every script of its own.
            bypass_csp=True,
        )
        page = context.new_page()
        token = self.verifier.issue(tenant, f"browser-{tenant}")
        response = page.goto(f"{self.base_url}/login?token={token}")
        if response is None or response.status != 200:
            raise RuntimeError(f"sign-in as {tenant} failed")
        return page

    def visit(self, page: Any, url: str) -> Visit:
        started = time.perf_counter()
        response = page.goto(self.base_url + url, wait_until="load")
        visit = Visit(
            url=url, status=response.status if response else 0, ms=1000 * (time.perf_counter() - started)
        )
        self.visits.append(visit)
        return visit

    def serious_violations(self, page: Any) -> list[dict[str, Any]]:
        """axe-core's serious and critical violations on the page as it is now."""
        page.add_script_tag(path=str(self.axe_script))
        result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
        return [
            {"id": v["id"], "impact": v["impact"], "nodes": len(v["nodes"]), "help": v["help"]}
            for v in result["violations"]
            if v.get("impact") in SERIOUS
        ]

    @staticmethod
    def overflows(page: Any) -> bool:
        """Whether the page scrolls sideways (it must not at 390 px: wide tables scroll in their own box)."""
        return bool(page.evaluate("() => document.scrollingElement.scrollWidth > window.innerWidth + 1"))

    @staticmethod
    def screenshot(page: Any, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
        return path

    def load_ms_p95(self) -> float:
        times = sorted(visit.ms for visit in self.visits)
        if len(times) < 2:
            return times[0] if times else 0.0
        return statistics.quantiles(times, n=20, method="inclusive")[18]


def page_kind(url: str) -> str:
    """``/c/intent/models/r1`` → ``model``: what a screenshot of the page is called."""
    parts = [part for part in url.split("/") if part]
    if not parts:
        return "overview"
    if parts[0] == "runs":
        return "runs" if len(parts) == 1 else "run"
    if parts[0] == "c":
        return {"models": "model"}.get(parts[2], parts[2])
    return parts[0]


@dataclass
class ConsoleReport:
    """What the browser saw; the benchmark prints it, the browser tests assert on it."""

    pages_checked: int = 0
    page_failures: list[str] = field(default_factory=list)
    page_load_ms_p95: float = 0.0
    axe_serious: list[dict[str, Any]] = field(default_factory=list)
    overflow_at_390: list[str] = field(default_factory=list)
    cross_tenant_requests: int = 0
    cross_tenant_refused: int = 0
    cross_tenant_leaks: list[str] = field(default_factory=list)
    approvals_via_page: int = 0
    rollbacks_via_page: int = 0
    screenshots: list[str] = field(default_factory=list)
    visits: list[Visit] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "pages_checked": self.pages_checked,
            "page_failures": len(self.page_failures),
            "page_load_ms_p95": round(self.page_load_ms_p95, 1),
            "axe_serious_violations": len(self.axe_serious),
            "overflow_at_390": len(self.overflow_at_390),
            "cross_tenant_requests": self.cross_tenant_requests,
            "cross_tenant_refused": self.cross_tenant_refused,
            "approvals_via_page": self.approvals_via_page,
            "rollbacks_via_page": self.rollbacks_via_page,
            "screenshots": len(self.screenshots),
        }


def check_console(runtime: Any, state: Any, out_dir: Path, *, deploy_timeout_s: float = 600) -> ConsoleReport:
    """Sign in as each demo tenant at 1280 and 390 px, open every page, run axe, take screenshots, try every
    URL of each tenant with the other's session, then approve the waiting deployment in the page and wait
    until the pipeline deployed it."""
    from itertools import permutations

    from convclass import layout
    from convclass.console.app import GUESSED_FORM, page_urls, scoped_urls
    from convclass.console.auth import CSRF_FIELD
    from convclass.console.data import TenantView, model_run
    from convclass.operator import Operator
    from convclass_local.console import DEMO_TENANTS, ConsoleServer, console_app_for

    operator = Operator(runtime.outputs)
    app, verifier = console_app_for(runtime)
    report = ConsoleReport()
    tenants = [tenant for tenant, _ in DEMO_TENANTS]
    with ConsoleServer(app) as server, chromium() as browser:
        driver = ConsoleBrowser(browser, server.url, verifier)
        for tenant in tenants:
            urls = list(page_urls(TenantView(operator, tenant)))
            for width in WIDTHS:
                page = driver.session(tenant, width=width)
                shot: set[str] = set()
                for url in urls:
                    visit = driver.visit(page, url)
                    report.pages_checked += 1
                    if visit.status != 200:
                        report.page_failures.append(f"{tenant} {url}: {visit.status}")
                        continue
                    report.axe_serious += [{"url": url, **v} for v in driver.serious_violations(page)]
                    if width == min(WIDTHS) and driver.overflows(page):
                        report.overflow_at_390.append(url)
                    kind = page_kind(url)
                    if tenant == tenants[0] and kind not in shot:
                        shot.add(kind)
                        path = driver.screenshot(page, out_dir / f"{kind}-{width}.png")
                        report.screenshots.append(str(path))
                page.context.close()
        for owner, other in permutations(tenants, 2):
            owned = list(scoped_urls(TenantView(operator, owner)))
            page = driver.session(other)
            token = page.context.cookies()[0]["value"]
            csrf = verifier.csrf_token(verifier.verify(token))
            for method, url in owned:
                if method == "POST":
                    form = {CSRF_FIELD: csrf, **GUESSED_FORM}
                    response = page.request.post(server.url + url, form=form, max_redirects=0)
                else:
                    response = page.request.get(server.url + url, max_redirects=0)
                report.cross_tenant_requests += 1
                if response.status == 404:
                    report.cross_tenant_refused += 1
                else:
                    report.cross_tenant_leaks.append(f"{other} → {url}: {response.status}")
            page.context.close()
        page = driver.session(tenants[0])
        driver.visit(page, "/approvals")
        form = page.locator(f'form[action="/runs/{state.waiting}/answer"]')
        form.get_by_label("Reason (optional)").fill("better on our test set")
        form.get_by_role("button", name="Approve").click()
        page.wait_for_load_state()
        approved = "Approved" in page.content()
        page.context.close()
        view = TenantView(operator, tenants[0])
        classifier = view.run(state.waiting).classifier
        if approved and _ended(operator, state.waiting, deploy_timeout_s) == "SUCCEEDED":
            champion = view.champion(classifier)
            if champion and model_run(champion) == layout.run_id_for_execution(state.waiting):
                report.approvals_via_page = 1
        # History now lists two deployments: roll back to the first model from the page.
        for width in WIDTHS:
            page = driver.session(tenants[0], width=width)
            driver.visit(page, f"/c/{classifier}/history")
            driver.screenshot(page, out_dir / f"history-{width}.png")
            if width == max(WIDTHS):
                earlier = layout.run_id_for_execution(state.runs[tenants[0]][0])
                page.get_by_role("button", name=f"Roll back to {earlier}").click()
                page.wait_for_load_state()
                started = "Roll back started" in page.content()
                rollback = next(iter(view.runs(classifier)))[0].name
                if started and _ended(operator, rollback, deploy_timeout_s) == "SUCCEEDED":
                    champion = view.champion(classifier)
                    if champion and model_run(champion) == earlier:
                        report.rollbacks_via_page = 1
            page.context.close()
    report.page_load_ms_p95 = driver.load_ms_p95()
    report.visits = driver.visits
    return report


def _ended(operator: Any, name: str, timeout_s: float) -> str:
    """Wait for a run to end; its final status (RUNNING if it did not end in time)."""
    deadline = time.monotonic() + timeout_s
    status = operator.describe_run(name).summary.status
    while status == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.5)
        status = operator.describe_run(name).summary.status
    return str(status)
