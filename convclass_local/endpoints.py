"""SageMaker endpoints as local processes: the real serving app, one per tenant endpoint, on localhost.

When an endpoint is invoked, the host looks up what SageMaker would run for it (endpoint → endpoint config →
model → ``ModelDataUrl``), downloads and extracts that ``model.tar.gz`` and starts the serving app on a free
port, as the serving image's ``serve`` command does in a container. An endpoint updated to a new config gets a
new server before the old one stops (blue/green), so no request sees a missing model.

A model in ``MultiModel`` mode (the shared endpoint) starts the serving app in multi-model mode instead, and
the host plays SageMaker's part: a request's ``TargetModel`` is downloaded from ``ModelDataUrl`` + the target
key, extracted, loaded with ``POST /models`` under an opaque name (a digest of the target, as SageMaker's
names are) and invoked at ``/models/{name}/invoke``; a 507 unloads the least recently loaded model and tries
again. A request without ``TargetModel`` (or one with it on a single-model endpoint), and a target that does
not exist, are refused as SageMaker refuses them (``ValidationError``).
"""

from __future__ import annotations

import hashlib
import json
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
from convclass_local.embedded import free_port

ServeCommand = Callable[[Path, int], Sequence[str]]
_STARTUP_TIMEOUT_S = 180.0
_INVOKE_TIMEOUT_S = 60.0  # SageMaker's limit for a response


class EndpointUnavailable(RuntimeError):
    """The endpoint does not exist, has no model, or its serving process did not become healthy."""


def default_multi_model_serve_command(models_root: Path, port: int) -> list[str]:
    """The serving image's ``serve`` entrypoint in multi-model mode, loading models from ``models_root``."""
    return [
        sys.executable,
        "-m",
        "convclass.serving",
        "serve",
        "--multi-model",
        "--models-root",
        str(models_root),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


def multi_model_name(target_model: str) -> str:
    """The opaque name a target model is loaded under (SageMaker's names are digests of the target)."""
    return hashlib.sha256(target_model.encode()).hexdigest()


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
    #: Multi-model servers only.
    multi_model: _MultiModel | None = None


@dataclass
class _MultiModel:
    #: The S3 prefix ``TargetModel`` keys are relative to (``ModelDataUrl``), and where targets are extracted.
    models_url: str
    models_root: Path
    #: Loaded model names, least recently loaded first.
    loaded: list[str] = field(default_factory=list)


@dataclass
class LocalEndpointHost:
    """Starts, routes to and stops the serving processes behind local endpoints."""

    workdir: Path
    serve_command: ServeCommand = default_serve_command
    multi_model_serve_command: ServeCommand = default_multi_model_serve_command
    _servers: dict[str, _Server] = field(default_factory=dict, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def invoke(
        self,
        endpoint: str,
        body: bytes,
        content_type: str,
        accept: str = "application/json",
        *,
        target_model: str | None = None,
    ) -> tuple[int, bytes, str]:
        """Forward an InvokeEndpoint request to the endpoint's serving process: (status, body, content
        type)."""
        server = self.ensure(endpoint)
        path = "/invocations"
        if server.multi_model is not None:
            if not target_model:
                raise EndpointUnavailable(
                    f"endpoint {endpoint!r} is a multi-model endpoint: name a TargetModel"
                )
            with self._lock:
                name, refused = self._load_target(endpoint, server, server.multi_model, target_model)
            if refused is not None:
                return refused
            path = f"/models/{name}/invoke"
        elif target_model:
            raise EndpointUnavailable(f"endpoint {endpoint!r} is not a multi-model endpoint: no TargetModel")
        return self._post(
            server, path, body, content_type or "application/json", accept or "application/json"
        )

    @staticmethod
    def _post(
        server: _Server, path: str, body: bytes, content_type: str, accept: str = "application/json"
    ) -> tuple[int, bytes, str]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{server.port}{path}",
            data=body,
            headers={"Content-Type": content_type, "Accept": accept},
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

    def _load_target(
        self, endpoint: str, server: _Server, models: _MultiModel, target_model: str
    ) -> tuple[str, tuple[int, bytes, str] | None]:
        """Load ``target_model`` into the multi-model server (as SageMaker does on first use): its name, and
        the container's answer if it refused the model."""
        name = multi_model_name(target_model)
        if name in models.loaded:
            return name, None
        model_dir = models.models_root / name / "model"
        if not model_dir.exists():
            bucket, key = parse_s3_uri(models.models_url + target_model)
            try:
                archive = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
            except Exception as exc:
                raise EndpointUnavailable(
                    f"endpoint {endpoint!r} could not download its TargetModel {target_model!r}"
                ) from exc
            extract_model_tar(archive, model_dir)
        document = json.dumps({"model_name": name, "url": str(model_dir)}).encode()
        while True:
            status, answer, content_type = self._post(server, "/models", document, "application/json")
            if status == 507 and models.loaded:  # out of memory: evict the least recently loaded, retry
                evicted = models.loaded.pop(0)
                delete = urllib.request.Request(
                    f"http://127.0.0.1:{server.port}/models/{evicted}", method="DELETE"
                )
                with urllib.request.urlopen(delete, timeout=_INVOKE_TIMEOUT_S):  # noqa: S310
                    pass
                continue
            break
        if status in (200, 409):
            models.loaded.append(name)
            return name, None
        return name, (status, answer, content_type)

    def ensure(self, endpoint: str) -> _Server:
        """The healthy server for the endpoint's current config, starting it (and retiring the old one) if
        needed."""
        with self._lock:
            config_name, model_data_url, multi_model = self._describe(endpoint)
            current = self._servers.get(endpoint)
            if current is not None and current.config_name == config_name and current.process.poll() is None:
                return current
            server = self._start(endpoint, config_name, model_data_url, multi_model)
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
    def _describe(endpoint: str) -> tuple[str, str, bool]:
        """(config name, ModelDataUrl, whether the model is in MultiModel mode) behind ``endpoint``."""
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
        return config_name, str(url), container.get("Mode") == "MultiModel"

    def _start(self, endpoint: str, config_name: str, model_data_url: str, multi_model: bool) -> _Server:
        target = self.workdir / "endpoints" / endpoint / config_name
        if multi_model:
            models_root = target / "models"
            models_root.mkdir(parents=True, exist_ok=True)
            port = free_port()
            command = self.multi_model_serve_command(models_root, port)
        else:
            model_dir = target / "model"
            if not model_dir.exists():
                bucket, key = parse_s3_uri(model_data_url)
                body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
                extract_model_tar(body, model_dir)
            port = free_port()
            command = self.serve_command(model_dir, port)
        log_path = target / "serve.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                list(command),
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
            )
        server = _Server(config_name=config_name, port=port, process=process, log_path=log_path)
        if multi_model:
            prefix = model_data_url if model_data_url.endswith("/") else model_data_url + "/"
            server.multi_model = _MultiModel(models_url=prefix, models_root=models_root)
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
