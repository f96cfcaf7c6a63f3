"""The ``head`` architecture: a per-tenant classification head over the frozen, shared MiniLM encoder.

Training embeds every email once with the pretrained encoder (mean pooling over real tokens, then L2
normalisation, as all-MiniLM-L6-v2 was trained to be used) and fits a multinomial logistic regression on the
embeddings. The artifact is the head only (``head.npz``: a ``dim x n_labels`` kernel and a bias, a few hundred
KB) plus the encoder's identity (name, sha256 of its weights, width) in artifact.json (convclass.artifacts).

Serving loads the encoder once (``export_encoder`` writes it as a SavedModel with an ``embeddings`` output)
and every tenant's head as a model of the multi-model server, so a head load is a file read and the encoder
pass is shared by all tenants. Compared with fine-tuning (``minilm``) it trades some accuracy for a smaller,
faster-to-train and cheaper-to-host model (docs/training.md has the measured figures).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops
from scipy import sparse

from convclass.artifacts import (
    ARTIFACT_FILE,
    ATTENTION_MASK,
    EMBEDDINGS_OUTPUT,
    ENCODER_FILE,
    HEAD_ARCHITECTURE,
    HEAD_FILE,
    INPUT_IDS,
    LABELS_FILE,
    METRICS_FILE,
    REPORT_DIR,
    SIGNATURE_NAME,
    ArtifactInfo,
    EncoderManifest,
    EncoderRef,
    LabelMap,
    ModelMetrics,
    saved_model_path,
    write_json_model,
)
from convclass.errors import InsufficientData, InvalidInput
from convclass.tokenization import Truncation, encode_texts, load_base_tokenizer, save_tokenizer
from convclass.training.bert import BertConfig, BertEncoder
from convclass.training.config import TrainingConfig
from convclass.training.data import TrainingData
from convclass.training.models import MaskedMeanPooling, predict_probabilities

logger = logging.getLogger("convclass.training")

WEIGHTS_FILE = "model.safetensors"
#: Optional directory where embeddings are kept between runs on the same texts (benchmarks, repeated local
#: runs): keyed by the encoder's digest, ``max_length`` and the texts; stored as ``.npy`` (no pickle).
EMBEDDING_CACHE_ENV = "CONVCLASS_EMBEDDING_CACHE"
#: Rows per encoder call when embedding a training set.
EMBED_BATCH = 128
HEAD_MAX_ITER = 1000


class L2Normalize(keras.layers.Layer):  # type: ignore[misc]  # keras ships no type stubs
    def call(self, x: Any) -> Any:
        return x / ops.maximum(ops.sqrt(ops.sum(x * x, axis=-1, keepdims=True)), 1e-12)


def encoder_ref(base_model_dir: Path, name: str) -> EncoderRef:
    """The encoder's identity: its name and the sha256 of its weights (a head is served on that one only)."""
    digest = hashlib.sha256()
    try:
        with (base_model_dir / WEIGHTS_FILE).open("rb") as weights:
            for block in iter(lambda: weights.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise InvalidInput(f"base model weights {base_model_dir / WEIGHTS_FILE} cannot be read") from exc
    return EncoderRef(
        name=name, digest=digest.hexdigest(), dim=BertConfig.from_dir(base_model_dir).hidden_size
    )


def build_encoder(base_model_dir: Path) -> keras.Model:
    """input_ids, attention_mask → L2-normalised mean-pooled embedding, pretrained weights loaded."""
    config = BertConfig.from_dir(base_model_dir)
    input_ids = keras.Input(shape=(None,), dtype="int32", name=INPUT_IDS)
    attention_mask = keras.Input(shape=(None,), dtype="int32", name=ATTENTION_MASK)
    encoder = BertEncoder(config, 0.0, name="encoder")
    pooled = MaskedMeanPooling(name="mean_pooling")(encoder(input_ids, attention_mask), attention_mask)
    embeddings = L2Normalize(name=EMBEDDINGS_OUTPUT)(pooled)
    model = keras.Model({INPUT_IDS: input_ids, ATTENTION_MASK: attention_mask}, embeddings, name="encoder")
    encoder.load_safetensors(base_model_dir / WEIGHTS_FILE)
    return model


def export_encoder(
    base_model_dir: Path, out_dir: Path, *, name: str, max_length: int = 128
) -> EncoderManifest:
    """Write the shared encoder directory a multi-model server opens (``--encoder-dir``)."""
    model = build_encoder(base_model_dir)
    archive = keras.export.ExportArchive()

    def serve(input_ids: Any, attention_mask: Any) -> dict[str, Any]:
        embeddings = model({INPUT_IDS: input_ids, ATTENTION_MASK: attention_mask}, training=False)
        return {EMBEDDINGS_OUTPUT: tf.cast(embeddings, tf.float32)}

    archive.add_endpoint(
        name=SIGNATURE_NAME,
        fn=serve,
        input_signature=[
            tf.TensorSpec([None, None], tf.int32, name=INPUT_IDS),
            tf.TensorSpec([None, None], tf.int32, name=ATTENTION_MASK),
        ],
    )
    manifest = EncoderManifest(encoder=encoder_ref(base_model_dir, name), max_length=max_length)
    path = saved_model_path(out_dir, manifest.model_version)
    path.parent.mkdir(parents=True, exist_ok=True)
    archive.write_out(str(path), verbose=False)
    save_tokenizer(load_base_tokenizer(base_model_dir), out_dir)
    write_json_model(out_dir / ENCODER_FILE, manifest)
    return manifest


def embed(model: keras.Model, encoded: dict[str, np.ndarray]) -> np.ndarray:
    """Embeddings in input order, computed in batches of similar length (little padding to pay for)."""
    order = np.argsort(encoded[ATTENTION_MASK].sum(axis=1), kind="stable")
    by_length = {key: value[order] for key, value in encoded.items()}
    embeddings = predict_probabilities(model, by_length, batch_size=EMBED_BATCH)
    result = np.empty_like(embeddings)
    result[order] = embeddings
    return result


class EmbeddingSource:
    """Embeds texts with the frozen encoder (built on first use); reads and fills the embedding cache.

    The cache (``$CONVCLASS_EMBEDDING_CACHE``) is per text: ``<encoder digest>-<max_length>-<n>.npz`` files
    of ``keys`` (sha256 of each text, ``uint8 [rows, 32]``) and ``embeddings``, read without pickle; a call
    embeds only the texts no file holds and writes them as a new file.
    """

    def __init__(
        self, base_model_dir: Path, ref: EncoderRef, max_length: int, truncation: Truncation = "head"
    ):
        self._base_model_dir = base_model_dir
        self._ref = ref
        self._max_length = max_length
        self._truncation = truncation
        self._encoder: keras.Model | None = None
        self._tokenizer: Any = None
        configured = os.environ.get(EMBEDDING_CACHE_ENV)
        self._cache = Path(configured) if configured else None
        self._prefix = f"{ref.digest[:16]}-{max_length}" + ("" if truncation == "head" else f"-{truncation}")
        self.hits = 0

    def _cached(self) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        if self._cache is None or not self._cache.is_dir():
            return found
        for path in sorted(self._cache.glob(f"{self._prefix}-*.npz")):
            try:
                with np.load(path, allow_pickle=False) as stored:
                    keys, embeddings = stored["keys"], stored["embeddings"]
            except (OSError, ValueError, KeyError):
                continue
            if embeddings.ndim == 2 and embeddings.shape[1] == self._ref.dim and len(keys) == len(embeddings):
                found.update(zip((k.tobytes() for k in keys), embeddings, strict=True))
        return found

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        keys = [hashlib.sha256(text.encode("utf-8", "replace")).digest() for text in texts]
        cached = self._cached()
        missing = sorted({i for i, key in enumerate(keys) if key not in cached}, key=keys.__getitem__)
        unique_missing = list({keys[i]: i for i in missing}.values())
        if unique_missing:
            if self._encoder is None:
                self._tokenizer = load_base_tokenizer(self._base_model_dir)
                self._encoder = build_encoder(self._base_model_dir)
            new = embed(
                self._encoder,
                encode_texts(
                    self._tokenizer, [texts[i] for i in unique_missing], self._max_length, self._truncation
                ),
            )
            cached.update(zip((keys[i] for i in unique_missing), new, strict=True))
            if self._cache is not None:
                self._cache.mkdir(parents=True, exist_ok=True)
                stored_keys = np.frombuffer(b"".join(keys[i] for i in unique_missing), dtype=np.uint8)
                partial = self._cache / f"{self._prefix}-{os.getpid()}-{time.time_ns()}.tmp"
                with partial.open("wb") as handle:
                    np.savez(handle, keys=stored_keys.reshape(-1, 32), embeddings=new)
                partial.replace(partial.with_suffix(".npz"))
        self.hits += len(texts) - len(missing)
        if not texts:
            return np.zeros((0, self._ref.dim), dtype=np.float32)
        return np.stack([cached[key] for key in keys]).astype(np.float32, copy=False)


def fit_head(
    embeddings: np.ndarray | sparse.csr_matrix,
    y: np.ndarray,
    n_labels: int,
    *,
    c: float,
    sample_weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression (L-BFGS, deterministic); returns (kernel [dim, n], bias [n]).

    ``embeddings`` may be sparse (the ``linear`` architecture's TF-IDF features)."""
    from sklearn.linear_model import LogisticRegression

    present = np.unique(y)
    if len(present) < 2:
        raise InsufficientData("the head needs training rows of at least two labels")
    regression = LogisticRegression(C=c, max_iter=HEAD_MAX_ITER, tol=1e-4)
    regression.fit(embeddings, y, sample_weight=sample_weight)
    kernel = np.zeros((embeddings.shape[1], n_labels), dtype=np.float32)
    # Labels without training rows keep a very negative bias: they are never predicted.
    bias = np.full(n_labels, -1e4, dtype=np.float32)
    classes = regression.classes_.astype(int)
    kernel[:, classes] = regression.coef_.T
    bias[classes] = regression.intercept_
    return kernel, bias


def head_probabilities(embeddings: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    logits = embeddings @ kernel + bias
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    result: np.ndarray = (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)
    return result


def train_head_and_export(
    data: TrainingData,
    config: TrainingConfig,
    *,
    model_dir: Path,
    base_model_dir: Path,
    base_model_name: str,
    versions: dict[str, str],
    started: float,
) -> ModelMetrics:
    """Embed, fit the head, evaluate on the held-out split and write the head artifact into ``model_dir``."""
    from convclass.training.evaluation import build_metrics, fit_prior_correction, with_validation_figures
    from convclass.training.report import write_report
    from convclass.training.trainer import class_weights

    held_out = data.test if len(data.test) else data.validation
    evaluated_on = "test" if len(data.test) else "validation"
    max_length = config.max_length or data.max_length or 128
    labels = data.labels
    index = {label: i for i, label in enumerate(labels)}
    ref = encoder_ref(base_model_dir, base_model_name)
    if config.truncation == "auto":
        raise ValueError("truncation=auto is resolved by train_and_export before a head is trained")
    truncation: Truncation = config.truncation
    source = EmbeddingSource(base_model_dir, ref, max_length, truncation)

    embed_started = time.monotonic()
    x_train, x_val, x_test = source(data.train.texts), source(data.validation.texts), source(held_out.texts)
    logger.info(
        "embedded %d rows in %.1f s (%d from the embedding cache)",
        len(x_train) + len(x_val) + len(x_test),
        time.monotonic() - embed_started,
        source.hits,
    )
    y_train = np.array([index[label] for label in data.train.labels], dtype=np.int32)
    y_val = np.array([index[label] for label in data.validation.labels], dtype=np.int32)
    y_test = np.array([index[label] for label in held_out.labels], dtype=np.int32)

    fit_started = time.monotonic()
    kernel, bias = fit_head(
        x_train,
        y_train,
        len(labels),
        c=config.head_c,
        sample_weight=class_weights(y_train, len(labels), config.class_weighting),
    )
    logger.info("head fitted in %.2f s", time.monotonic() - fit_started)
    correction = None
    if config.prior_correction == "validation" and len(y_val):
        train_counts = np.bincount(y_train, minlength=len(labels))
        correction = fit_prior_correction(head_probabilities(x_val, kernel, bias), y_val, train_counts)
        if correction is not None:
            bias = bias + np.asarray(correction.label_bias, dtype=np.float32)
            logger.info("prior correction: strength %s chosen on validation", correction.strength)
    train_probabilities = head_probabilities(x_train, kernel, bias)
    probabilities = head_probabilities(x_test, kernel, bias)
    picked = train_probabilities[np.arange(len(y_train)), y_train]
    history = [
        {
            "epoch": 1,
            "loss": float(-np.log(np.clip(picked, 1e-7, 1.0)).mean()),
            "accuracy": float((train_probabilities.argmax(axis=1) == y_train).mean()),
            "seconds": time.monotonic() - embed_started,
        }
    ]
    metrics = build_metrics(
        probabilities=probabilities,
        y_true=y_test,
        labels=labels,
        data=data.sizes(),
        training_seconds=time.monotonic() - started,
        epochs=1,
        architecture=HEAD_ARCHITECTURE,
        versions=versions,
        evaluated_on=evaluated_on,
    )
    metrics, confidence = with_validation_figures(
        metrics,
        validation=head_probabilities(x_val, kernel, bias),
        y_validation=y_val,
        held_out=probabilities,
        y_held_out=y_test,
        target_precision=config.target_precision,
    )
    metrics = metrics.model_copy(update={"prior_correction": correction})
    info = ArtifactInfo(
        model_version=config.model_version,
        architecture=HEAD_ARCHITECTURE,
        base_model=base_model_name,
        max_length=max_length,
        truncation=truncation,
        max_chars=data.max_chars,
        n_labels=len(labels),
        cleaning_version=data.cleaning_version,
        versions=versions,
        encoder=ref,
        confidence=confidence,
        prior_correction=correction,
    )
    model_dir.mkdir(parents=True, exist_ok=True)
    with (model_dir / HEAD_FILE).open("wb") as head:
        np.savez(head, kernel=kernel, bias=bias)
    write_json_model(model_dir / LABELS_FILE, LabelMap(labels=labels))
    write_json_model(model_dir / ARTIFACT_FILE, info)
    write_json_model(model_dir / METRICS_FILE, metrics)
    write_report(model_dir / REPORT_DIR, history=history, metrics=metrics, info=info)
    return metrics
