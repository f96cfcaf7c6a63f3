"""Fixtures every kind of test shares, and the Hypothesis profiles.

Property tests are deterministic unless asked otherwise: the ``ci`` profile (the default, and always when
``CI`` is set) derandomizes Hypothesis and keeps no example database, so a fresh clone gives the same verdict
on every run. ``CONVCLASS_HYPOTHESIS_PROFILE=explore`` runs many more random examples locally; every
counterexample it finds belongs in the test as an ``@example``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import cast

import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from hypothesis import HealthCheck, settings

from convclass_local.cleaning_build import cleaning_build

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile(
    "explore",
    derandomize=False,
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
HYPOTHESIS_PROFILE = "ci" if os.environ.get("CI") else os.environ.get("CONVCLASS_HYPOTHESIS_PROFILE", "ci")
settings.load_profile(HYPOTHESIS_PROFILE)


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to test a cleaning build older than its source: Python would import the old build."""
    build = cleaning_build()
    if not build.fresh:
        pytest.exit(
            "compiled cleaning is missing or older than its source "
            f"(missing: {', '.join(build.missing) or 'none'}; stale: {', '.join(build.stale) or 'none'}): "
            "run `make install`",
            returncode=2,
        )


#: Credentials moto accepts; set so no test can ever reach a real account through the default chain.
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture
def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)


@dataclass
class _LambdaContext:
    """The attributes Powertools reads from Lambda's context object."""

    function_name: str = "convclass-test"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:convclass-test"
    aws_request_id: str = "req-1"


@pytest.fixture
def lambda_context() -> LambdaContext:
    """A Lambda context for calling real handlers in process."""
    return cast(LambdaContext, _LambdaContext())
