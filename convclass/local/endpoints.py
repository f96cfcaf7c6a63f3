"""SageMaker endpoints as local processes: the real serving app, one per tenant endpoint, on localhost.

When an endpoint is invoked, the host looks up what SageMaker would run for it (endpoint → endpoint config →
model → ``ModelDataUrl``), downloads and extracts that ``model.tar.gz`` and starts the serving app on a free
port, as the serving image's ``serve`` command does in a container. An endpoint updated to a new config gets a
new server before the old one stops (blue/green), so no request sees a missing model.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from convclass.artifacts import extract_model_tar
from convclass.layout import parse_s3_uri
from convclass.local.embedded import free_port

ServeCommand = Callable[[Path, int], Sequence[str]]
_STARTUP_TIMEOUT_S = 180.0
_INVOKE_TIMEOUT_S = 60.0  # SageMaker's limit for a response


class EndpointUnavailable(RuntimeError):
    """The endpoint does not exist, has no model, or its serving process did not become healthy."""


def default_serve_command(model_dir: Path, port: int) -> list[str]:
    """The serving image's ``serve`` entrypoint, run with this interpreter against an extracted artifact."""
    return [
        sys.executable,
        "-m",
        "convclass.serving",
        "serve",
        "--model-dir",
        str(model_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


@dataclass
class _Server:
    config_name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path


@dataclass
class LocalEndpointHost:
    """Starts, routes to and stops the serving processes behind local endpoints."""

    workdir: Path
    serve_command: ServeCommand = default_serve_command
    _servers: dict[str, _Server] = field(default_factory=dict, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def invoke(
        self, endpoint: str, body: bytes, content_type: str, accept: str = "application/json"
    ) -> tuple[int, bytes, str]:
        """Forward an InvokeEndpoint request to the endpoint's serving process: (status, body, content
        type)."""
        server = self.ensure(endpoint)
        request = urllib.request.Request(
            f"http://127.0.0.1:{server.port}/invocations",
            data=body,
            headers={
                "Content-Type": content_type or "application/json",
                "Accept": accept or "application/json",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=_INVOKE_TIMEOUT_S) as response:  # noqa: S310
                return (
                    response.status,
                    response.read(),
                    response.headers.get("Content-Type", "application/json"),
                )
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), exc.headers.get("Content-Type", "application/json")

    def ensure(self, endpoint: str) -> _Server:
        """The healthy server for the endpoint's current config, starting it (and retiring the old one) if
        needed."""
        with self._lock:
            config_name, model_data_url = self._describe(endpoint)
            current = self._servers.get(endpoint)
            if current is not None and current.config_name == config_name and current.process.poll() is None:
                return current
            server = self._start(endpoint, config_name, model_data_url)
            self._servers[endpoint] = server
            if current is not None:
                self._terminate(current)
            return server

    def stop_all(self) -> None:
        with self._lock:
            servers = list(self._servers.values())
            self._servers.clear()
        for server in servers:
            self._terminate(server)

    @staticmethod
    def _describe(endpoint: str) -> tuple[str, str]:
        sagemaker = boto3.client("sagemaker")
        try:
            described = sagemaker.describe_endpoint(EndpointName=endpoint)
            config_name = described["EndpointConfigName"]
            config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
            model_name = config["ProductionVariants"][0]["ModelName"]
            model = sagemaker.describe_model(ModelName=model_name)
        except Exception as exc:
            raise EndpointUnavailable(f"endpoint {endpoint!r} cannot be resolved to a model: {exc}") from exc
        container: dict[str, Any] = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
        url = container.get("ModelDataUrl")
        if not url:
            raise EndpointUnavailable(
                f"model {model_name!r} behind endpoint {endpoint!r} has no ModelDataUrl"
            )
        return config_name, str(url)

    def _start(self, endpoint: str, config_name: str, model_data_url: str) -> _Server:
        target = self.workdir / "endpoints" / endpoint / config_name
        model_dir = target / "model"
        if not model_dir.exists():
            bucket, key = parse_s3_uri(model_data_url)
            body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
            extract_model_tar(body, model_dir)
        port = free_port()
        log_path = target / "serve.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                list(self.serve_command(model_dir, port)),
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
            )
        server = _Server(config_name=config_name, port=port, process=process, log_path=log_path)
        try:
            self._wait_healthy(server)
        except EndpointUnavailable:
            self._terminate(server)
            raise
        return server

    @staticmethod
    def _wait_healthy(server: _Server) -> None:
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise EndpointUnavailable(
                    f"serving process exited with status {server.process.returncode}; see {server.log_path}"
                )
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/ping", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise EndpointUnavailable(
            f"serving process not healthy after {_STARTUP_TIMEOUT_S:.0f}s; see {server.log_path}"
        )

    @staticmethod
    def _terminate(server: _Server) -> None:
        if server.process.poll() is None:
            server.process.terminate()
            try:
                server.process.wait(timeout=30)  # SageMaker's grace period before SIGKILL
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()
