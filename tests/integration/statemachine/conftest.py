"""One moto account per test module with the rendered workflows deployed; engine hooks reset per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws
from workflow_support import REGION, World, build_world, hooks

from convclass.local import moto_shims


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
def _fresh_hooks(world: World) -> Iterator[None]:
    moto_shims.install(hooks())
    yield
    moto_shims.install(hooks())
