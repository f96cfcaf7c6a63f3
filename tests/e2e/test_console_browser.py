"""The customer console in the system's headless Chromium, against real runs of the real pipeline.

One two-tenant state is built for the module (each tenant trains and deploys a model; the first tenant's
second run waits at its deployment gate), then the browser signs in as each tenant at 1280 and 390 px, opens
every page, runs axe-core, takes screenshots, requests every URL of each tenant with the other tenant's
session, and approves the waiting deployment by clicking Approve.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from convclass import layout
from convclass.console.data import TenantView, model_run
from convclass.operator import Operator
from convclass_local.browser import ConsoleReport, check_console, chromium_path
from convclass_local.console import DEMO_TENANTS, DemoState, build_demo_state
from convclass_local.runtime import LocalRuntime
from statemachine.history import entered_states
from statemachine.training import names as sm

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        chromium_path() is None, reason="Debian's chromium is not installed (`make install` installs it)"
    ),
]


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ConsoleReport, DemoState, Any, Path]]:
    workdir = tmp_path_factory.mktemp("console-work")
    shots = tmp_path_factory.mktemp("console-shots")
    with LocalRuntime(workdir=workdir, persist=False) as runtime:
        state = build_demo_state(runtime, emails=400, epochs=2, inbound=6)
        report = check_console(runtime, state, shots)
        yield report, state, runtime, shots


def test_every_page_renders_for_both_tenants_at_both_widths(checked: Any) -> None:
    report, _, runtime, _ = checked
    assert report.page_failures == []
    # overview, runs, approvals, each run, inference + history + each model card, for 2 tenants × 2 widths
    assert report.pages_checked >= 2 * 2 * 7
    assert report.overflow_at_390 == []
    view = TenantView(Operator(runtime.outputs), DEMO_TENANTS[0][0])
    assert len(view.models(DEMO_TENANTS[0][1])) == 2  # a real model from each of the tenant's runs


def test_no_serious_or_critical_accessibility_violations(checked: Any) -> None:
    report = checked[0]
    assert report.axe_serious == []


def test_the_other_tenants_session_gets_404_for_every_url(checked: Any) -> None:
    report = checked[0]
    assert report.cross_tenant_leaks == []
    assert report.cross_tenant_requests == report.cross_tenant_refused
    assert report.cross_tenant_requests >= 10


def test_approve_in_the_page_deploys_the_waiting_model(checked: Any) -> None:
    report, state, runtime, _ = checked
    # check_console saw the approved model serving before it rolled back (next test).
    assert report.approvals_via_page == 1
    assert Operator(runtime.outputs).describe_run(state.waiting).summary.status == "SUCCEEDED"


def test_roll_back_in_the_page_redeploys_the_earlier_model_through_the_pipeline(checked: Any) -> None:
    report, state, runtime, _ = checked
    assert report.rollbacks_via_page == 1
    operator = Operator(runtime.outputs)
    tenant, classifier = DEMO_TENANTS[0]
    view = TenantView(operator, tenant)
    champion = view.champion(classifier)
    assert champion is not None
    first = layout.run_id_for_execution(state.runs[tenant][0])
    assert model_run(champion) == first  # the earlier model serves again …
    rollback = view.run(champion.execution.rsplit(":", 1)[-1])
    assert rollback.request.redeploy is not None  # … deployed by a roll back run of the same state machine
    assert rollback.detail.summary.status == "SUCCEEDED"
    assert sm.TRAIN not in entered_states(operator.history(rollback.detail.summary.arn))
    assert sm.USE_EARLIER_MODEL in entered_states(operator.history(rollback.detail.summary.arn))
    endpoint = operator.endpoint(tenant, classifier)
    assert endpoint.status == "InService"
    assert endpoint.config_name == champion.endpoint_config_name


def test_screenshots_at_1280_and_390_px(checked: Any) -> None:
    report, _, _, shots = checked
    kinds = {"overview", "runs", "run", "approvals", "model", "inference", "history", "feedback"}
    for width in (1280, 390):
        for kind in kinds:
            path = shots / f"{kind}-{width}.png"
            assert str(path) in report.screenshots
            header = path.read_bytes()[:24]
            assert header[:8] == b"\x89PNG\r\n\x1a\n"
            assert struct.unpack(">I", header[16:20])[0] == width
