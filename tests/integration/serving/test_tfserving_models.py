"""Full models on a multi-model server whose SavedModels run in TF Serving, as in the serving image.

No ``tensorflow_model_server`` binary here: the model server is a stand-in process that speaks TF Serving's
REST API and honours ``--model_config_file`` / ``--model_config_file_poll_wait_seconds`` as TF Serving does
(re-read the file, load added models, unload removed ones; a version it cannot load ends in state ``END``).
It parses the config file with its own reader (``serving_support.parse_model_config``). Everything else is
real: the encoder directory comes from ``python -m convclass.serving export-encoder`` (as the image build
writes it), the config file TF Serving starts with from ``python -m convclass.serving tfserving-config``, and
the API is ``python -m convclass.serving serve --multi-model --backend tfserving`` in its own process.
"""

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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "support"))
from head_models import MAX_LENGTH, tiny_base_model, train_head
from serving_support import MODEL_VERSION, build_artifact, parse_model_config

from convclass.artifacts import ARTIFACT_FILE, ArtifactInfo, read_encoder_manifest, write_json_model
from convclass.serving.multimodel import SAVED_MODEL_OVERHEAD_BYTES

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
SUPPORT = Path(__file__).parent
MODEL_SERVER = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); "
    "from serving_support import run_as_model_server; run_as_model_server(sys.argv[1:])"
)
EMAIL = {"subject": "Card declined", "body": "<p>My card payment was declined at the shop today.</p>"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Image:
    """The two processes of the image's multi-model mode and the files they share."""

    api: httpx.Client
    tf_serving: httpx.Client
    config_file: Path
    models_root: Path
    encoder_dir: Path

    def served(self) -> dict[str, tuple[Path, int | None]]:
        return parse_model_config(self.config_file.read_text(encoding="utf-8"))

    def tenants(self) -> dict[str, tuple[Path, int | None]]:
        return {name: entry for name, entry in self.served().items() if name != "encoder"}

    def load(self, name: str, model: str) -> httpx.Response:
        return self.api.post(
            "/models", json={"model_name": name, "url": str(self.models_root / model / "model")}
        )

    def invoke(self, name: str) -> httpx.Response:
        return self.api.post(f"/models/{name}/invoke", json=EMAIL)


def _environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}


def _wait_ready(client: httpx.Client, process: subprocess.Popen[bytes], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "the API process exited during start-up"
        with contextlib.suppress(httpx.HTTPError):
            if client.get("/ping").status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError("the API never answered /ping with 200")


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Image]:
    work = tmp_path_factory.mktemp("image")
    models_root = work / "opt_ml_models"
    base = tiny_base_model(work / "base")
    train_head(base, models_root / "acme" / "model", "acme", seed=1)
    build_artifact(models_root / "full" / "model")
    stale = models_root / "stale" / "model"
    shutil.copytree(models_root / "full" / "model", stale)
    info = ArtifactInfo.model_validate_json((stale / ARTIFACT_FILE).read_bytes())
    write_json_model(stale / ARTIFACT_FILE, info.model_copy(update={"cleaning_version": "1999.1"}))
    broken = models_root / "broken" / "model"
    shutil.copytree(models_root / "full" / "model", broken)
    (broken / "model" / str(MODEL_VERSION) / "saved_model.pb").write_bytes(b"not a SavedModel")
    # The encoder as the image build writes it (same CLI), from the weights the heads were trained on.
    encoder_dir = work / "encoder"
    env = _environment()
    exported = subprocess.run(
        [sys.executable, "-m", "convclass.serving", "export-encoder", "--base-model-dir", str(base),
         "--out", str(encoder_dir), "--max-length", str(MAX_LENGTH)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr

    config_file = work / "tfs" / "models.config"
    written = subprocess.run(
        [sys.executable, "-m", "convclass.serving", "tfserving-config", "--out", str(config_file),
         "--encoder-dir", str(encoder_dir)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert written.returncode == 0, written.stderr
    rest_port, api_port = free_port(), free_port()
    tf_serving = subprocess.Popen(
        [sys.executable, "-c", MODEL_SERVER, str(SUPPORT), f"--rest_api_port={rest_port}",
         f"--model_config_file={config_file}", "--model_config_file_poll_wait_seconds=1"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    # One full model fits the budget beside heads, a second does not.
    budget_mb = (SAVED_MODEL_OVERHEAD_BYTES * 3 // 2) // 2**20
    api = subprocess.Popen(
        [sys.executable, "-m", "convclass.serving", "serve", "--multi-model", "--backend", "tfserving",
         "--tfserving-url", f"http://127.0.0.1:{rest_port}", "--tfserving-config", str(config_file),
         "--tfserving-wait-s", "60", "--encoder-dir", str(encoder_dir), "--models-root", str(models_root),
         "--memory-budget-mb", str(budget_mb), "--port", str(api_port), "--host", "127.0.0.1"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    api_client = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=60)
    tfs_client = httpx.Client(base_url=f"http://127.0.0.1:{rest_port}", timeout=10)
    try:
        _wait_ready(api_client, api)
        yield Image(api_client, tfs_client, config_file, models_root, encoder_dir)
    finally:
        api_client.close()
        tfs_client.close()
        for process in (api, tf_serving):
            process.send_signal(signal.SIGTERM)
        for process in (api, tf_serving):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_tf_serving_starts_with_the_shared_encoder_alone(image: Image) -> None:
    manifest = read_encoder_manifest(image.encoder_dir)
    assert image.served() == {"encoder": (image.encoder_dir / "model", manifest.model_version)}


def test_a_full_model_is_loaded_into_tf_serving_and_answers_beside_a_head(image: Image) -> None:
    loaded = image.load("cnn-a", "full")
    assert loaded.status_code == 200, loaded.text
    ((tfs_name, entry),) = image.tenants().items()
    assert entry == (image.models_root / "full" / "model" / "model", MODEL_VERSION)
    # TF Serving's name is the server's own, never SageMaker's name or the path.
    assert "full" not in tfs_name
    assert "cnn-a" not in tfs_name
    status = image.tf_serving.get(f"/v1/models/{tfs_name}").json()["model_version_status"]
    assert [(s["version"], s["state"]) for s in status] == [(str(MODEL_VERSION), "AVAILABLE")]

    answer = image.invoke("cnn-a")
    assert answer.status_code == 200, answer.text
    (prediction,) = answer.json()["predictions"]
    assert prediction["model_version"] == str(MODEL_VERSION)
    labels = set(json.loads((image.models_root / "full" / "model" / "labels.json").read_text())["labels"])
    assert {score["label"] for score in prediction["labels"]} <= labels

    # A head runs on the encoder TF Serving already holds: it adds nothing to TF Serving's models.
    assert image.load("acme-1", "acme").status_code == 200
    head = image.invoke("acme-1").json()["predictions"][0]["labels"]
    assert all(score["label"].startswith("acme.") for score in head)
    assert list(image.tenants()) == [tfs_name]

    assert image.api.delete("/models/cnn-a").status_code == 200
    assert image.tenants() == {}
    assert image.tf_serving.get(f"/v1/models/{tfs_name}").status_code == 404  # unloaded by TF Serving
    assert image.invoke("cnn-a").status_code == 404
    assert image.invoke("acme-1").status_code == 200
    assert image.api.delete("/models/acme-1").status_code == 200


def test_a_model_cleaned_differently_is_refused_before_tf_serving_sees_it(image: Image) -> None:
    refused = image.load("stale-1", "stale")
    assert refused.status_code == 400
    assert refused.json()["error"] == "IncompatibleModel"
    assert "cleaning" in refused.json()["message"]
    assert image.tenants() == {}


def test_a_full_model_over_the_memory_budget_is_507_and_never_reaches_tf_serving(image: Image) -> None:
    assert image.load("cnn-a", "full").status_code == 200
    refused = image.load("cnn-b", "full")
    assert refused.status_code == 507
    assert refused.json()["error"] == "InsufficientMemory"
    assert len(image.tenants()) == 1
    assert image.api.delete("/models/cnn-a").status_code == 200
    assert image.load("cnn-b", "full").status_code == 200  # SageMaker's retry after unloading
    assert len(image.tenants()) == 1
    assert image.api.delete("/models/cnn-b").status_code == 200
    assert image.tenants() == {}


def test_a_saved_model_tf_serving_cannot_load_fails_the_load_and_leaves_the_config(image: Image) -> None:
    started = time.monotonic()
    failed = image.load("broken-1", "broken")
    assert failed.status_code == 500
    assert failed.json()["error"] == "ModelLoadFailed"
    assert time.monotonic() - started < 30  # TF Serving's END ends the wait, not the 60 s timeout
    assert image.tenants() == {}
    assert image.api.get("/models/broken-1").status_code == 404
