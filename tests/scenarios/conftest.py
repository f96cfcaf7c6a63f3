"""Scenario suite: the real state machines and handlers on the embedded AWS.

Two kinds of deployment serve the scenarios: ``world`` (one in-process moto account with the rendered
workflows and every pipeline function running its real handler; only SageMaker's training containers are
stood in for) and, in the modules that need the real training entrypoint and serving app,
``convclass_local.runtime.LocalRuntime``. When CONVCLASS_SCENARIO_REPORT names a file, the session writes the
scenarios' counts there (see benchmarks/bench_scenarios.py).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from convclass_local import moto_shims
from convclass_local.workflow_lab import REGION, World, build_world, hooks, run_handler

_HERE = Path(__file__).resolve().parent
_SUPPORT = {
    "workflow_support": _HERE.parent / "integration" / "statemachine" / "workflow_support.py",
    "scenario_support": _HERE / "scenario_support.py",
    "inference_scenarios": _HERE / "inference_scenarios.py",
    "pipeline_data": _HERE / "pipeline_data.py",
}
REPORT_ENV = "CONVCLASS_SCENARIO_REPORT"


def _load_support() -> None:
    """Make the support modules importable by name under any pytest import mode."""
    for name, path in _SUPPORT.items():
        if name in sys.modules:
            continue
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)


_load_support()
from scenario_support import ScenarioCounts  # noqa: E402

_COUNTS = ScenarioCounts()


@pytest.fixture
def totals() -> ScenarioCounts:
    return _COUNTS


@pytest.fixture(scope="session", autouse=True)
def _write_counts() -> Iterator[None]:
    yield
    target = os.environ.get(REPORT_ENV)
    if target:
        Path(target).write_text(json.dumps(_COUNTS.as_dict()))


def real_hooks() -> moto_shims.EngineHooks:
    """Every function runs its real handler, with its deployed environment; training jobs complete at once
    with a model archive whose metrics.json the real evaluate function reads."""
    from workflow_support import RecordingRunner

    return hooks(lambda_dispatch=run_handler, training_runner=RecordingRunner())


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    mp = pytest.MonkeyPatch()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        mp.setenv(name, value)
    config = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": True}}
    try:
        with mock_aws(config=config), moto_shims.installed(real_hooks()):
            built = build_world()
            # Scenarios write conversations "now": the export must not hold back the last minutes.
            lam = boto3.client("lambda", region_name=REGION)
            for function in ("convclass-export", "convclass-preprocess"):
                current = lam.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
                lam.update_function_configuration(
                    FunctionName=function,
                    Environment={"Variables": {**current, "CONVCLASS_EXPORT_SETTLE_SECONDS": "0"}},
                )
            yield built
    finally:
        mp.undo()


@pytest.fixture
def real_engine_hooks(world: World) -> Iterator[None]:
    """Scenarios on ``world`` start and end with the real-handler hooks."""
    moto_shims.install(real_hooks())
    yield
    moto_shims.install(real_hooks())
