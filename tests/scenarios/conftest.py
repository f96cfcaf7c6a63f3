"""The embedded AWS for scenarios: one moto account with the rendered workflows deployed and every pipeline
function running its real handler in process (only SageMaker's training containers are stood in for)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from convclass.local import moto_shims
from convclass.local.workflow_lab import REGION, World, build_world, hooks, run_handler

_SUPPORT = Path(__file__).resolve().parents[1] / "integration" / "statemachine" / "workflow_support.py"


def _load_support() -> None:
    """Make ``workflow_support`` (model archives, the recording training runner) importable by name."""
    if "workflow_support" in sys.modules:
        return
    spec = importlib.util.spec_from_file_location("workflow_support", _SUPPORT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["workflow_support"] = module
    spec.loader.exec_module(module)


_load_support()


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


@pytest.fixture(autouse=True)
def _fresh_hooks() -> Iterator[None]:
    moto_shims.install(real_hooks())
    yield
    moto_shims.install(real_hooks())
