"""One moto account per test module with the rendered workflows deployed; engine hooks reset per test."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from convclass_local import moto_shims


def _load_support() -> None:
    """Make ``workflow_support`` importable by the test modules under any pytest import mode."""
    if "workflow_support" in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(
        "workflow_support", Path(__file__).with_name("workflow_support.py")
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["workflow_support"] = module
    spec.loader.exec_module(module)


_load_support()
from workflow_support import REGION, World, build_world, hooks  # noqa: E402


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
        with mock_aws(config=config), moto_shims.installed(hooks()):
            yield build_world()
    finally:
        mp.undo()


@pytest.fixture(autouse=True)
def _fresh_hooks() -> Iterator[None]:
    """Each test starts from the default path-test hooks, whatever the previous one plugged in."""
    moto_shims.install(hooks())
    yield
    moto_shims.install(hooks())
