"""Models loaded into ``tensorflow_model_server`` at run time, through its model config file.

In the serving image the API process has no TensorFlow: TF Serving runs every SavedModel. On a multi-model
endpoint TF Serving starts with ``--model_config_file`` (written by ``python -m convclass.serving
tfserving-config``: the shared encoder, if any) and ``--model_config_file_poll_wait_seconds``; to load a full
model (``minilm``, ``cnn``) the API adds it to that file, and TF Serving, which re-reads the file on every
poll, loads what was added and unloads what was removed. ``TFServingModels`` owns the file: it rewrites it
whole and atomically (a rename, so TF Serving never reads half a file) and waits for TF Serving to report the
model version ``AVAILABLE`` (REST ``GET /v1/models/{name}``) before the load is accepted.

Each model gets a TF Serving name of its own (``tenant-<n>``), never the name SageMaker chose or the path, and
its version is pinned (``specific``), so the model that answers is the one whose tokenizer, labels and
cleaning version were verified. A load costs up to one poll interval on top of TF Serving's own load time.
"""

from __future__ import annotations

import itertools
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from convclass.artifacts import SAVED_MODEL_DIR, ModelArtifact, read_encoder_manifest
from convclass.errors import InvalidInput, ModelFailure
from convclass.serving.backends import TFServingRestBackend
from convclass.serving.classifier import ENCODER_MODEL_NAME, EmailClassifier

logger = logging.getLogger("convclass.serving")

#: How often TF Serving re-reads the config file (``--model_config_file_poll_wait_seconds``; whole seconds).
CONFIG_POLL_SECONDS = 1
#: How long an unload waits for TF Serving to let go of the model (its memory) after the config changed.
UNLOAD_WAIT_S = 3 * CONFIG_POLL_SECONDS + 2
#: Prefix of the names models get inside TF Serving.
MODEL_NAME_PREFIX = "tenant-"


@dataclass(frozen=True)
class ServedModel:
    """One ``config`` entry of TF Serving's ``ModelServerConfig``; ``version`` None serves the latest."""

    name: str
    base_path: Path
    version: int | None = None


def _quoted(value: str) -> str:
    """A protobuf text-format string literal (UTF-8 as is; backslash and quote escaped)."""
    if any(ord(char) < 0x20 or char == "\x7f" for char in value):
        raise InvalidInput("a TF Serving model name or path may not hold control characters")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_model_config(models: list[ServedModel]) -> str:
    """TF Serving's ``ModelServerConfig`` in protobuf text format: a ``model_config_list`` of ``models``."""
    lines = ["model_config_list {"]
    for model in models:
        lines += [
            "  config {",
            f"    name: {_quoted(model.name)}",
            f"    base_path: {_quoted(str(model.base_path))}",
            '    model_platform: "tensorflow"',
        ]
        if model.version is not None:
            lines.append(f"    model_version_policy {{ specific {{ versions: {model.version} }} }}")
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def encoder_entries(encoder_dir: Path | None) -> list[ServedModel]:
    """The shared encoder's entry (verified: manifest, tokenizer, SavedModel), or none without an encoder."""
    if encoder_dir is None:
        return []
    manifest = read_encoder_manifest(encoder_dir)
    return [ServedModel(ENCODER_MODEL_NAME, encoder_dir / SAVED_MODEL_DIR, manifest.model_version)]


def write_model_config(path: Path, models: list[ServedModel]) -> None:
    """Replace ``path`` atomically: TF Serving sees the old file or the new one, never a partial write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(render_model_config(models))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class TFServingModels:
    """The full models TF Serving holds for a multi-model server, beside the fixed entries (the encoder).

    ``load`` is the ``ModelRegistry``'s ``load_full`` in the serving image: it adds the model to the config
    file, waits until TF Serving serves it, and returns a classifier whose ``close`` removes it again.
    """

    def __init__(
        self,
        config_file: Path,
        base_url: str,
        *,
        fixed: list[ServedModel],
        wait_s: float = 120.0,
        poll_s: float = 0.05,
        model_batch_size: int = 64,
    ):
        self.config_file = config_file
        self.base_url = base_url
        self._fixed = list(fixed)
        self._wait_s = wait_s
        self.poll_s = poll_s
        self._model_batch_size = model_batch_size
        self._lock = threading.Lock()
        self._served: dict[str, ServedModel] = {}
        self._numbers = itertools.count(1)
        with self._lock:
            self._write(self._served)

    def _write(self, served: dict[str, ServedModel]) -> None:
        write_model_config(self.config_file, [*self._fixed, *served.values()])

    def load(self, artifact: ModelArtifact) -> EmailClassifier:
        """Serve ``artifact``'s SavedModel from TF Serving; ``ModelFailure`` if TF Serving cannot load it."""
        with self._lock:
            name = f"{MODEL_NAME_PREFIX}{next(self._numbers)}"
            served = {
                **self._served,
                name: ServedModel(name, artifact.root / SAVED_MODEL_DIR, artifact.info.model_version),
            }
            self._write(served)
            self._served = served
        backend = _ConfiguredBackend(self, name, artifact.info.model_version)
        try:
            backend.wait_until_available(self._wait_s, poll_s=self.poll_s)
            classifier = EmailClassifier.from_artifact(
                artifact, backend, model_batch_size=self._model_batch_size
            )
            classifier.warm_up()
        except BaseException:
            backend.close()
            raise
        return classifier

    def remove(self, name: str) -> bool:
        """Drop ``name`` from the config file; False if it was not there."""
        with self._lock:
            if name not in self._served:
                return False
            served = {key: model for key, model in self._served.items() if key != name}
            self._write(served)
            self._served = served
        return True


class _ConfiguredBackend(TFServingRestBackend):
    """A model TF Serving loaded from the config file; closing it takes the model out of the file."""

    def __init__(self, models: TFServingModels, name: str, version: int):
        super().__init__(models.base_url, name, version)
        self._models = models
        self._name = name

    def wait_until_available(self, timeout_s: float, *, poll_s: float = 0.5) -> None:
        """Until the pinned version is AVAILABLE; a version TF Serving gave up on (END) fails at once."""
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.state()
            if state == "AVAILABLE":
                return
            if state == "END":
                raise ModelFailure("TF Serving could not load the model (its version ended)")
            if time.monotonic() >= deadline:
                raise ModelFailure("TF Serving did not load the model from its config file in time")
            time.sleep(poll_s)

    def close(self) -> None:
        """Take the model out of the config and wait (bounded) until TF Serving has unloaded it."""
        if self._models.remove(self._name):
            deadline = time.monotonic() + UNLOAD_WAIT_S
            while time.monotonic() < deadline and self.state() in ("LOADING", "AVAILABLE", "UNLOADING"):
                time.sleep(self._models.poll_s)
            logger.info("tf serving model removed name=%s", self._name)
        super().close()
