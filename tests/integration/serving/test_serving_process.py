"""`python -m convclass.serving serve` as a process: ping before/after load, answers, SIGTERM, refusals."""

from __future__ import annotations

import contextlib
import json
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
