"""The Pulumi program runs once per test process under mocks (Pulumi's mock settings are process-wide)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from pulumi_policy.proxy import unknown_checking_proxy

from infra.mocks import REPO_ROOT, RecordedResource, Recording, run_program, stack_config
from infra.policies import policy_resource

DEV_STACK = REPO_ROOT / "Pulumi.dev.yaml"


@pytest.fixture(scope="session")
def dev_config() -> dict[str, str]:
    return stack_config(DEV_STACK)


@pytest.fixture(scope="session")
def recording(dev_config: dict[str, str]) -> Recording:
    return run_program(dev_config)


@pytest.fixture(scope="session")
def settings() -> dict[str, Any]:
    """The example stack's convclass:* settings as written in Pulumi.dev.yaml (what tests compare with)."""
    config = yaml.safe_load(DEV_STACK.read_text(encoding="utf-8"))["config"]
    return {key.split(":", 1)[1]: value for key, value in config.items() if key.startswith("convclass:")}


def only(recording: Recording, type_token: str, name: str) -> RecordedResource:
    matches = [r for r in recording.of_type(type_token) if r.name == name]
    assert len(matches) == 1, f"expected one {type_token} named {name}, found {len(matches)}"
    return matches[0]


def as_policy_resources(resources: list[RecordedResource], *, proxied: bool = False) -> list[Any]:
    """Recorded resources as CrossGuard policy resources; ``proxied`` wraps props the way the CLI's
    analyzer does (read-only Mapping/Sequence proxies that raise on unknown values)."""
    return [
        policy_resource(r.type, r.name, unknown_checking_proxy(r.outputs) if proxied else r.outputs)
        for r in resources
    ]


def pytest_configure(config: pytest.Config) -> None:
    # pulumi_aws warns about its own deprecated aliases at import time; nothing convclass declares.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pulumi_aws.*")
