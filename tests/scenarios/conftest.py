"""Scenario suite: the real state machines, handlers, training entrypoint and serving app on the embedded AWS.

When CONVCLASS_SCENARIO_REPORT names a file, the session writes the scenarios' counts there (see
benchmarks/bench_scenarios.py).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


def _load_support() -> None:
    """Make ``scenario_support`` importable by the scenario modules under any pytest import mode."""
    if "scenario_support" in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(
        "scenario_support", Path(__file__).with_name("scenario_support.py")
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["scenario_support"] = module
    spec.loader.exec_module(module)


_load_support()
from scenario_support import ScenarioCounts  # noqa: E402

_COUNTS = ScenarioCounts()
REPORT_ENV = "CONVCLASS_SCENARIO_REPORT"


@pytest.fixture
def counts() -> ScenarioCounts:
    return _COUNTS


@pytest.fixture(scope="session", autouse=True)
def _write_counts() -> Iterator[None]:
    yield
    target = os.environ.get(REPORT_ENV)
    if target:
        Path(target).write_text(json.dumps(_COUNTS.as_dict()))
