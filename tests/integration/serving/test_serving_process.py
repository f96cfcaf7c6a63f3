"""`python -m convclass.serving serve` as a process: ping before/after load, answers, SIGTERM, refusals."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from convclass.artifacts import ARTIFACT_FILE


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def serve(model_dir: Path, port: int) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "convclass.serving", "serve", "--model-dir", str(model_dir)]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_server_pings_503_while_loading_then_200_and_stops_on_sigterm(artifact_dir: Path) -> None:
    port = free_port()
    process = serve(artifact_dir, port)
    seen: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not seen or seen[-1] != 200):
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            with contextlib.suppress(urllib.error.URLError, ConnectionError):  # not listening yet
                seen.append(get(f"http://127.0.0.1:{port}/ping"))
            time.sleep(0.02)
        assert seen[-1] == 200
        assert 503 in seen  # the port was open before the model had loaded and answered
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps({"emails": [{"body": "<p>Where is my parcel?</p>", "id": "a"}]}).encode(),
            headers={"Content-Type": "application/json", "X-Request-Id": "proc-1"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["x-request-id"] == "proc-1"
            assert json.loads(response.read())["predictions"][0]["id"] == "a"
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status says why it stopped.
    assert process.returncode == -signal.SIGTERM
    assert "Application shutdown complete" in output
    assert "request_id=proc-1 status=200" in output
    assert "parcel" not in output  # email text never reaches the log


def test_server_refuses_to_start_on_an_incompatible_model(artifact_dir: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(artifact_dir, tmp_path / "artifact")
    info = json.loads((copy / ARTIFACT_FILE).read_text())
    info["cleaning_version"] = "1999.1"
    (copy / ARTIFACT_FILE).write_text(json.dumps(info))
    process = serve(copy, free_port())
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "IncompatibleModel" in output
    assert "1999.1" in output


def test_server_refuses_to_start_without_a_model(tmp_path: Path) -> None:
    process = serve(tmp_path, free_port())
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "IncompatibleModel: model artifact lacks artifact.json" in output


def test_sagemaker_multi_model_env_starts_the_models_api(artifact_dir: Path, tmp_path: Path) -> None:
    models_root = tmp_path / "models"
    shutil.copytree(artifact_dir, models_root / "abc123" / "model")
    port = free_port()
    command = [sys.executable, "-m", "convclass.serving", "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--models-root", str(models_root), "--memory-budget-mb", "256"]
    env = {**os.environ, "SAGEMAKER_MULTI_MODEL": "true"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        status = 0
        while time.monotonic() < deadline and status != 200:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            with contextlib.suppress(urllib.error.URLError, ConnectionError):
                status = get(f"http://127.0.0.1:{port}/ping")
            time.sleep(0.05)
        load = urllib.request.Request(
            f"http://127.0.0.1:{port}/models",
            data=json.dumps({"model_name": "abc123", "url": str(models_root / "abc123" / "model")}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(load, timeout=60) as response:
            assert json.loads(response.read())["modelName"] == "abc123"
        invoke = urllib.request.Request(
            f"http://127.0.0.1:{port}/models/abc123/invoke",
            data=json.dumps({"body": "<p>Where is my parcel?</p>", "id": "a"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(invoke, timeout=10) as response:
            assert json.loads(response.read())["predictions"][0]["id"] == "a"
        assert get(f"http://127.0.0.1:{port}/models/other") == 404
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
