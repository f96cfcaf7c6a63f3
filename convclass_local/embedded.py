"""An AWS endpoint on localhost: moto in server mode, reachable by every process of a local run.

Server mode (rather than moto's in-process decorator) lets the serving app, the training process and the CLI
talk to the same AWS as the state machine engine through plain boto3 and ``AWS_ENDPOINT_URL``. The server
thread lives in this process, so the engine hooks in :mod:`convclass_local.moto_shims` act on the backends it
serves.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import boto3

LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT_ID = "123456789012"  # moto's default account
_MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": True}}
_NOISY_LOGGERS = ("moto", "werkzeug", "botocore", "urllib3")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def quiet_moto() -> None:
    """moto logs handled failures (a Catch in a workflow) at ERROR with large dumps; keep the console
    readable."""
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)


@contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block and restore the previous values afterwards."""
    previous = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in previous.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


class EmbeddedAws:
    """moto's ThreadedMotoServer on a free localhost port with Step Functions execution switched on.

    moto keeps its backends per process, so one embedded AWS runs at a time in a process; each start begins
    with an empty account. While active, ``AWS_ENDPOINT_URL`` and dummy credentials are set in this process's
    environment so any boto3 client created here, and any child process started here, reaches the embedded AWS
    and never a real account.
    """

    def __init__(self, region: str = LOCAL_REGION) -> None:
        self.region = region
        self.port = 0
        self._server: Any = None
        self._env: Any = None

    @property
    def endpoint_url(self) -> str:
        if not self.port:
            raise RuntimeError("the embedded AWS is not running")
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        """What a process needs to reach this embedded AWS (and nothing else)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": "convclass-local",
            "AWS_SECRET_ACCESS_KEY": "convclass-local",
            "AWS_SESSION_TOKEN": "convclass-local",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            # The engine's own clients (Lambda/SageMaker/EventBridge tasks) call localhost:MOTO_PORT.
            "MOTO_PORT": str(self.port),
            # Environment credentials win over a developer's profile; never ask instance metadata either.
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def start(self) -> EmbeddedAws:
        from moto.server import ThreadedMotoServer

        from convclass_local.moto_shims import redrive

        quiet_moto()
        redrive.install()
        self.port = free_port()
        self._env = patched_environ(self.environment())
        self._env.__enter__()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        # moto's backends are process-wide: start from an empty account even if an earlier run used this
        # process.
        self._post("/moto-api/reset", {})
        self._post("/moto-api/config", _MOTO_CONFIG)
        return self

    def _post(self, path: str, document: Mapping[str, Any]) -> None:
        """moto's documented runtime API (reset; configuration, same effect as ``mock_aws(config=...)``)."""
        request = urllib.request.Request(  # noqa: S310 - fixed http://127.0.0.1 URL
            f"{self.endpoint_url}{path}",
            data=json.dumps(document).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            response.read()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._env is not None:
            self._env.__exit__(None, None, None)
            self._env = None
        self.port = 0

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint_url)

    def __enter__(self) -> EmbeddedAws:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
