"""The models a multi-model server holds: loaded on demand by name, each within a memory budget.

SageMaker multi-model endpoints (``SAGEMAKER_MULTI_MODEL=true``) download a model into the container, then
ask it to load it (``POST /models`` with ``model_name`` and ``url``, the extracted directory). The container
keeps the models by name, answers 409 for a name it already holds and 507 when the model does not fit;
SageMaker then unloads the least recently used models and tries again. ``ModelRegistry`` is that bookkeeping;
the HTTP routes are in ``convclass.serving.app``.

A model is accepted only after its artifact is verified (format, cleaning version, serving signature, labels,
files; a head's encoder identity and array shapes). ``head`` artifacts run on the server's one shared encoder;
full models (``minilm``, ``cnn``) load their own SavedModel and tokenizer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from convclass.artifacts import SAVED_MODEL_DIR, ModelArtifact
from convclass.errors import ConvclassError, IncompatibleModel, InvalidInput
from convclass.heads import head_nbytes
from convclass.layout import TOKENIZER_FILE
from convclass.serving.classifier import EmailClassifier, SharedEncoder, load_head, open_artifact

logger = logging.getLogger("convclass.serving")

#: Allowance for what a loaded model holds beyond its files (Python objects; for a SavedModel, TensorFlow's
#: graph and functions). ``make bench-hosting`` measured less RSS growth than file size + allowance
#: (0.12 MB per 116 KB head, 4.6 MB per 4.5 MB cnn), so the budget check errs on the safe side.
HEAD_OVERHEAD_BYTES = 64 * 1024
SAVED_MODEL_OVERHEAD_BYTES = 8 * 1024 * 1024
#: Largest page ``GET /models`` returns.
MAX_PAGE_SIZE = 1000


class ModelAlreadyLoaded(ConvclassError):
    """A model of that name is loaded (or loading): HTTP 409."""


class ModelMemoryExhausted(ConvclassError):
    """The model does not fit the memory budget next to the loaded ones: HTTP 507, SageMaker evicts some."""


class ModelNotLoaded(ConvclassError):
    """No model of that name is loaded: HTTP 404."""


@dataclass(frozen=True)
class LoadedModel:
    name: str
    url: str
    classifier: EmailClassifier
    footprint_bytes: int
    architecture: str
    load_ms: float


def estimated_footprint(artifact: ModelArtifact) -> int:
    """Bytes a model will hold once loaded: a head's arrays, or a full model's weights and tokenizer on
    disk, plus a measured overhead."""
    info = artifact.info
    if info.encoder is not None:  # a head: its arrays as read (head.npz is compressed on disk)
        arrays = head_nbytes(info.encoder.dim, info.n_labels, info.token_features, info.hidden_layer)
        return arrays + HEAD_OVERHEAD_BYTES
    files = [artifact.root / TOKENIZER_FILE, *(artifact.root / SAVED_MODEL_DIR).rglob("*")]
    return sum(p.stat().st_size for p in files if p.is_file()) + SAVED_MODEL_OVERHEAD_BYTES


class ModelRegistry:
    """Thread-safe map of model name → classifier, with 409/507/404 semantics as named errors.

    ``load_full`` opens a full model (its own SavedModel); heads run on ``encoder``. ``models_root``, when
    set, is the only directory models may be loaded from (SageMaker puts them under ``/opt/ml/models``).
    """

    def __init__(
        self,
        *,
        memory_budget_bytes: int,
        load_full: Callable[[ModelArtifact], EmailClassifier],
        encoder: SharedEncoder | None = None,
        models_root: Path | None = None,
        model_batch_size: int = 64,
    ):
        if memory_budget_bytes < 1:
            raise ValueError("memory_budget_bytes must be positive")
        self.memory_budget_bytes = memory_budget_bytes
        self.encoder = encoder
        self._load_full = load_full
        self._models_root = models_root.resolve() if models_root is not None else None
        self._model_batch_size = model_batch_size
        self._lock = threading.Lock()
        self._models: dict[str, LoadedModel] = {}
        self._loading: set[str] = set()
        self._reserved = 0

    @property
    def used_bytes(self) -> int:
        with self._lock:
            return sum(m.footprint_bytes for m in self._models.values()) + self._reserved

    def __len__(self) -> int:
        return len(self._models)

    def load(self, name: str, url: str) -> LoadedModel:
        """Verify and load the model at ``url`` as ``name``; raise the named error of each refusal."""
        path = self._resolve(url)
        with self._lock:
            if name in self._models or name in self._loading:
                raise ModelAlreadyLoaded("a model of that name is already loaded")
            self._loading.add(name)
        try:
            return self._load(name, url, path)
        finally:
            with self._lock:
                self._loading.discard(name)

    def _load(self, name: str, url: str, path: Path) -> LoadedModel:
        started = time.perf_counter()
        artifact = open_artifact(path)
        need = estimated_footprint(artifact)
        with self._lock:
            used = sum(m.footprint_bytes for m in self._models.values()) + self._reserved
            if used + need > self.memory_budget_bytes:
                free = (self.memory_budget_bytes - used) // 1024
                raise ModelMemoryExhausted(
                    f"the model needs about {need // 1024} KiB; {free} KiB of the memory budget is free"
                )
            self._reserved += need
        try:
            if artifact.info.is_head:
                classifier = load_head(artifact, self.encoder, model_batch_size=self._model_batch_size)
            else:
                classifier = self._load_full(artifact)
        finally:
            with self._lock:
                self._reserved -= need
        loaded = LoadedModel(
            name=name,
            url=url,
            classifier=classifier,
            footprint_bytes=need,
            architecture=artifact.info.architecture,
            load_ms=(time.perf_counter() - started) * 1000,
        )
        with self._lock:
            self._models[name] = loaded
        logger.info(
            "model loaded name=%s architecture=%s footprint_kib=%d load_ms=%.1f",
            name,
            loaded.architecture,
            need // 1024,
            loaded.load_ms,
        )
        return loaded

    def _resolve(self, url: str) -> Path:
        path = Path(url).resolve()
        if self._models_root is not None and not path.is_relative_to(self._models_root):
            raise InvalidInput("url is outside the directory models are loaded from")
        if not path.is_dir():
            raise IncompatibleModel("url is not an extracted model directory")
        return path

    def get(self, name: str) -> LoadedModel:
        with self._lock:
            loaded = self._models.get(name)
        if loaded is None:
            raise ModelNotLoaded("no model of that name is loaded")
        return loaded

    def unload(self, name: str) -> None:
        with self._lock:
            loaded = self._models.pop(name, None)
        if loaded is None:
            raise ModelNotLoaded("no model of that name is loaded")
        loaded.classifier.close()
        logger.info("model unloaded name=%s", name)

    def page(self, token: str | None, size: int) -> tuple[list[LoadedModel], str | None]:
        """One page of the loaded models in name order; the token is the offset of the next page."""
        if token is not None and not token.isdigit():
            raise InvalidInput("next_page_token is not one this server issued")
        start = int(token) if token else 0
        size = max(1, min(size, MAX_PAGE_SIZE))
        with self._lock:
            names = sorted(self._models)
            models = [self._models[n] for n in names[start : start + size]]
        following = str(start + size) if start + size < len(names) else None
        return models, following

    def close(self) -> None:
        with self._lock:
            models = list(self._models.values())
            self._models.clear()
        for loaded in models:
            loaded.classifier.close()
