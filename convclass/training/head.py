"""The ``head`` architecture: a per-tenant classification head over the frozen, shared MiniLM encoder.

Training embeds every email once with the pretrained encoder (mean pooling over real tokens, then L2
normalisation, as all-MiniLM-L6-v2 was trained to be used) and fits a multinomial logistic regression on the
embeddings; with ``head_tokens=validation`` (the default) a second one on TF-IDF features of the encoder's
token ids, whose logits are added with a weight chosen on validation (convclass.heads defines the logits and
the file); with ``head_refit`` (the default) both are then fitted again on train + validation with that
weight. The artifact is the head only (``head.npz``: a ``dim x n_labels`` kernel and a bias, and the token
vocabulary, idf and weights, a few hundred KB) plus the encoder's identity (name, sha256 of its weights,
width) and the token settings in artifact.json (convclass.artifacts).

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
from dataclasses import dataclass
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
    HiddenLayerFeatures,
    LabelMap,
    ModelMetrics,
    PriorCorrection,
    TokenFeatures,
    saved_model_path,
    write_json_model,
)
from convclass.errors import InsufficientData, InvalidInput
from convclass.heads import (
    Head,
    HiddenLayerHead,
    TokenHead,
    head_logits,
    head_probabilities,
    hidden_layer_logits,
    ngram_keys,
    stored,
    tfidf_entries,
    token_logits,
    write_head,
)
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


#: Weights of the token TF-IDF logits tried on validation (``head_tokens=validation``); 0 drops them.
TOKEN_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)


def special_token_ids(tokenizer: Any) -> set[int]:
    """Ids of the tokenizer's special tokens ([CLS], [SEP], [PAD], …): in every text, no use as features."""
    return {int(i) for i, token in tokenizer.get_added_tokens_decoder().items() if token.special}


def fit_token_vocabulary(
    encoded: dict[str, np.ndarray],
    *,
    vocab_size: int,
    max_n: int,
    max_features: int,
    min_df: int,
    exclude_ids: set[int],
) -> tuple[np.ndarray, np.ndarray]:
    """The kept n-gram keys (sorted) and their smoothed idf ``ln((1 + n) / (1 + df)) + 1``."""
    grams, valid = ngram_keys(encoded[INPUT_IDS], encoded[ATTENTION_MASK], vocab_size, max_n)
    n = len(grams)
    per_text = [np.unique(row[ok]) for row, ok in zip(grams, valid, strict=True)]
    if not per_text:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    found, df = np.unique(np.concatenate(per_text), return_counts=True)
    keep = (df >= min_df) & ~np.isin(found, np.fromiter(exclude_ids, dtype=np.int64, count=len(exclude_ids)))
    found, df = found[keep], df[keep]
    order = np.lexsort((found, -df))[:max_features]  # most frequent first, ties by key: deterministic
    found, df = found[order], df[order]
    by_key = np.argsort(found)
    idf = np.log((1.0 + n) / (1.0 + df[by_key])) + 1.0
    return found[by_key].astype(np.int64), idf.astype(np.float32)


def token_matrix(
    encoded: dict[str, np.ndarray], settings: TokenFeatures, keys: np.ndarray, idf: np.ndarray
) -> sparse.csr_matrix:
    """The features ``convclass.heads`` computes when serving, as the sparse matrix the regression reads."""
    row, feature, values = tfidf_entries(encoded[INPUT_IDS], encoded[ATTENTION_MASK], settings, keys, idf)
    return sparse.csr_matrix((values, (row, feature)), shape=(len(encoded[INPUT_IDS]), len(keys)))


def fit_token_head(
    config: TrainingConfig,
    encoded: dict[str, np.ndarray],
    y: np.ndarray,
    n_labels: int,
    *,
    vocab_size: int,
    exclude_ids: set[int],
    sample_weight: np.ndarray,
) -> tuple[TokenHead, np.ndarray] | None:
    """Vocabulary, idf and a class-weighted regression on the token TF-IDF features (weight 1 until
    validation chooses it); returns the token head as stored (weights rounded, what serving will read) and
    the regression's bias, or None when no token n-gram is frequent enough."""
    keys, idf = fit_token_vocabulary(
        encoded,
        vocab_size=vocab_size,
        max_n=config.head_token_max_ngram,
        max_features=config.head_token_max_features,
        min_df=config.head_token_min_df,
        exclude_ids=exclude_ids,
    )
    if not len(keys):
        return None
    settings = TokenFeatures(
        vocab_size=vocab_size, max_ngram=config.head_token_max_ngram, n_features=len(keys), weight=1.0
    )
    features = token_matrix(encoded, settings, keys, idf)
    kernel, bias = fit_head(features, y, n_labels, c=config.head_token_c, sample_weight=sample_weight)
    return TokenHead(settings, keys, idf, kernel).as_stored(), bias


def log_loss(logits: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels under ``softmax(logits)``."""
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(y)), y].mean())


#: Blend weights (linear kernel, hidden-layer bag) tried on validation (``head_hidden=validation``);
#: (1, 0) is the linear head alone.
HIDDEN_BLENDS = ((1.0, 0.0), (0.0, 0.5), (0.0, 1.0), (0.5, 0.5), (1.0, 0.5), (0.5, 1.0), (1.0, 1.0))
#: The networks read the L2-normalised embedding times this (unit-length inputs train slowly); the factor is
#: folded into ``mlp_kernel_1``.
HIDDEN_INPUT_SCALE = 10.0
HIDDEN_BATCH = 64
#: The Keras activation of each ``head_hidden_activation`` (``convclass.heads`` computes the same in numpy).
HIDDEN_ACTIVATIONS = {"relu": "relu", "gelu_tanh": lambda x: keras.activations.gelu(x, approximate=True)}
HIDDEN_LEARNING_RATE = 2e-3


@dataclass(frozen=True)
class HiddenLayerFit:
    """A trained bag at unit weight: ``networks`` (output kernels already divided by the bag's size) and the
    mean output bias, which blending folds into the head's bias."""

    networks: HiddenLayerHead
    bias: np.ndarray


def fit_hidden_layer(
    config: TrainingConfig, x: np.ndarray, y: np.ndarray, n_labels: int, *, sample_weight: np.ndarray
) -> HiddenLayerFit:
    """Train ``head_hidden_members`` one-hidden-layer networks (``head_hidden_activation``) on the embeddings
    (AdamW, cosine decay, dropout; each from its own seed, so the bag averages their errors out)."""
    members, units = config.head_hidden_members, config.head_hidden_units
    kernel_1 = np.zeros((members, x.shape[1], units), dtype=np.float32)
    bias_1 = np.zeros((members, units), dtype=np.float32)
    kernel_2 = np.zeros((members, units, n_labels), dtype=np.float32)
    output_bias = np.zeros(n_labels, dtype=np.float32)
    steps = config.head_hidden_epochs * -(-len(x) // HIDDEN_BATCH)
    for member in range(members):
        keras.utils.set_random_seed(config.seed + member)
        hidden = keras.layers.Dense(units, activation=HIDDEN_ACTIVATIONS[config.head_hidden_activation])
        output = keras.layers.Dense(n_labels)
        model = keras.Sequential(
            [
                keras.Input((x.shape[1],)),
                hidden,
                keras.layers.Dropout(config.head_hidden_dropout),
                output,
            ]
        )
        model.compile(
            optimizer=keras.optimizers.AdamW(
                keras.optimizers.schedules.CosineDecay(HIDDEN_LEARNING_RATE, steps), weight_decay=1e-2
            ),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        model.fit(
            x * HIDDEN_INPUT_SCALE,
            y,
            sample_weight=sample_weight,
            epochs=config.head_hidden_epochs,
            batch_size=HIDDEN_BATCH,
            verbose=0,
        )
        w1, b1 = hidden.get_weights()
        w2, b2 = output.get_weights()
        kernel_1[member], bias_1[member] = w1 * HIDDEN_INPUT_SCALE, b1
        kernel_2[member] = w2 / members
        output_bias += b2 / members
    # Labels without training rows are never predicted, as with the linear head.
    output_bias[np.bincount(y, minlength=n_labels) == 0] = -1e4
    settings = HiddenLayerFeatures(
        activation=config.head_hidden_activation, members=members, hidden=units, weight=1.0, linear_weight=1.0
    )
    return HiddenLayerFit(HiddenLayerHead(settings, kernel_1, bias_1, kernel_2), output_bias)


def choose_blend(
    linear_logits: np.ndarray,
    hidden_logits: np.ndarray | None,
    token_logits_: np.ndarray | None,
    y: np.ndarray,
    *,
    hidden_required: bool = False,
) -> tuple[tuple[float, float, float], dict[tuple[float, float, float], float]]:
    """``(linear, hidden, token)`` weights with the lowest validation log-loss, and every blend's loss.

    Ties go to the cheaper blend: no networks, then smaller token weights. Without networks (or tokens) only
    blends without them are tried; ``hidden_required`` tries only blends with them. Log-loss rather than
    macro-F1: on a validation split of a dozen rows per label macro-F1 moves by whole rows, and on splits of
    Banking77 it picked token weights from 0 to 1.5 where the log-loss picked 0.25-0.5, which scored better
    on rows neither had seen (docs/training.md)."""
    blends: tuple[tuple[float, float], ...] = (
        HIDDEN_BLENDS if hidden_logits is not None else HIDDEN_BLENDS[:1]
    )
    if hidden_required and hidden_logits is not None:
        blends = tuple(blend for blend in blends if blend[1])
    token_weights = TOKEN_WEIGHTS if token_logits_ is not None else (0.0,)
    scores: dict[tuple[float, float, float], float] = {}
    for linear, hidden in blends:
        for token in token_weights:
            logits = linear * linear_logits
            if hidden_logits is not None and hidden:
                logits = logits + hidden * hidden_logits
            if token_logits_ is not None and token:
                logits = logits + token * token_logits_
            scores[(linear, hidden, token)] = log_loss(logits, y)
    best = min(scores, key=lambda blend: (scores[blend], blend[1], blend[2], -blend[0]))
    return best, scores


def blended(
    kernel: np.ndarray,
    bias: np.ndarray,
    tokens: tuple[TokenHead, np.ndarray] | None,
    hidden: HiddenLayerFit | None,
    blend: tuple[float, float, float],
) -> Head:
    """The head whose logits are ``linear * linear logits + hidden * bag logits + token * token logits``,
    every weight folded into the stored arrays."""
    linear, hidden_weight, token_weight = blend
    head = with_tokens(kernel * np.float32(linear), bias * np.float32(linear), tokens, token_weight)
    if hidden is None or not hidden_weight:
        return head
    networks = hidden.networks
    settings = networks.settings.model_copy(update={"weight": hidden_weight, "linear_weight": linear})
    scaled = HiddenLayerHead(
        settings, networks.kernel_1, networks.bias_1, networks.kernel_2 * np.float32(hidden_weight)
    )
    output_bias = np.where(hidden.bias <= -1e4, hidden.bias, hidden.bias * np.float32(hidden_weight))
    return Head(head.kernel, (head.bias + output_bias).astype(np.float32), head.tokens, scaled)


def with_tokens(
    kernel: np.ndarray, bias: np.ndarray, fitted: tuple[TokenHead, np.ndarray] | None, weight: float
) -> Head:
    """The embedding head plus ``weight`` times the fitted token head (its bias folded into ``bias``)."""
    if fitted is None or weight == 0.0:
        return Head(kernel, bias)
    tokens, token_bias = fitted
    settings = tokens.settings.model_copy(update={"weight": weight})
    return Head(
        kernel,
        (bias + np.float32(weight) * token_bias).astype(np.float32),
        TokenHead(settings, tokens.keys, tokens.idf, tokens.kernel),
    )


def with_prior_correction(head: Head, correction: PriorCorrection) -> Head:
    """``head`` with the prior correction's per-label logit adjustment added to its bias."""
    bias = head.bias + np.asarray(correction.label_bias, dtype=np.float32)
    return Head(head.kernel, bias, head.tokens, head.hidden)


def refit_head(
    config: TrainingConfig,
    head: Head,
    correction: PriorCorrection | None,
    x: np.ndarray,
    encoded: dict[str, np.ndarray] | None,
    y: np.ndarray,
    *,
    exclude_ids: set[int],
) -> Head:
    """``head`` fitted again on more rows (train + validation) with what validation chose for it: the same
    C, token settings, hidden-layer bag and blend weights, and the same prior correction; returned as
    stored.

    Validation has done its job once the weight and the correction are chosen; its rows then add 10 % more
    examples of every label, which the rare labels need most (docs/training.md has the measured gain).
    ``encoded`` (the rows' token ids) is needed exactly when ``head`` has token features; ``exclude_ids``
    are the ids its vocabulary leaves out (``special_token_ids``)."""
    from convclass.training.trainer import class_weights

    n_labels = head.kernel.shape[1]
    sample_weight = class_weights(y, n_labels, config.class_weighting)
    kernel, bias = fit_head(x, y, n_labels, c=config.head_c, sample_weight=sample_weight)
    fitted = None
    if head.tokens is not None:
        if encoded is None:
            raise ValueError("this head reads token features: pass the rows' token ids")
        fitted = fit_token_head(
            config,
            encoded,
            y,
            n_labels,
            vocab_size=head.tokens.settings.vocab_size,
            exclude_ids=exclude_ids,
            sample_weight=sample_weight,
        )
    hidden = head.hidden.settings if head.hidden else None
    refitted = blended(
        kernel,
        bias,
        fitted,
        fit_hidden_layer(config, x, y, n_labels, sample_weight=sample_weight) if hidden else None,
        (
            hidden.linear_weight if hidden else 1.0,
            hidden.weight if hidden else 0.0,
            head.tokens.settings.weight if head.tokens else 0.0,
        ),
    )
    if correction is not None:
        refitted = with_prior_correction(refitted, correction)
    return stored(refitted)


def train_head_and_export(
    data: TrainingData,
    config: TrainingConfig,
    *,
    model_dir: Path,
    base_model_dir: Path,
    base_model_name: str,
    versions: dict[str, str],
    started: float,
    champion: Path | None = None,
) -> ModelMetrics:
    """Embed, fit the head, evaluate on the held-out split and write the head artifact into ``model_dir``.

    ``champion``: the deployed model's archive, scored on the same held-out split (metrics.champion)."""
    from convclass.training.champion import with_champion_score
    from convclass.training.evaluation import build_metrics, fit_prior_correction, with_validation_figures
    from convclass.training.report import write_report
    from convclass.training.trainer import class_weights

    held_out, evaluated_on = data.held_out, data.evaluated_on
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

    sample_weight = class_weights(y_train, len(labels), config.class_weighting)
    fit_started = time.monotonic()
    kernel, bias = fit_head(x_train, y_train, len(labels), c=config.head_c, sample_weight=sample_weight)
    logger.info("head fitted in %.2f s", time.monotonic() - fit_started)
    head = Head(kernel, bias)
    ids: dict[str, dict[str, np.ndarray] | None] = {"train": None, "validation": None, "held_out": None}
    exclude_ids: set[int] = set()
    fitted: tuple[TokenHead, np.ndarray] | None = None
    validation_token_logits = None
    if config.head_tokens == "validation" and len(y_val):
        tokenizer = load_base_tokenizer(base_model_dir)
        for name, split in (("train", data.train), ("validation", data.validation), ("held_out", held_out)):
            ids[name] = encode_texts(tokenizer, list(split.texts), max_length, truncation)
        e_train, e_val = ids["train"], ids["validation"]
        assert e_train is not None
        assert e_val is not None
        exclude_ids = special_token_ids(tokenizer)
        fit_started = time.monotonic()
        fitted = fit_token_head(
            config,
            e_train,
            y_train,
            len(labels),
            vocab_size=tokenizer.get_vocab_size(),
            exclude_ids=exclude_ids,
            sample_weight=sample_weight,
        )
        if fitted is not None:
            tokens, token_bias = fitted
            validation_token_logits = (
                token_logits(tokens, e_val[INPUT_IDS], e_val[ATTENTION_MASK]) + token_bias
            )
            logger.info(
                "token features: %d n-grams fitted in %.2f s",
                tokens.settings.n_features,
                time.monotonic() - fit_started,
            )
    hidden = None
    if config.head_hidden != "off" and len(y_val):
        fit_started = time.monotonic()
        hidden = fit_hidden_layer(config, x_train, y_train, len(labels), sample_weight=sample_weight)
        logger.info(
            "hidden layer: %d networks of %d units fitted in %.2f s",
            config.head_hidden_members,
            config.head_hidden_units,
            time.monotonic() - fit_started,
        )
    if len(y_val) and (hidden is not None or validation_token_logits is not None):
        linear_logits = head_logits(head, x_val)
        blend, scores = choose_blend(
            linear_logits,
            None if hidden is None else hidden_layer_logits(hidden.networks, x_val) + hidden.bias,
            validation_token_logits,
            y_val,
            hidden_required=config.head_hidden == "on",
        )
        logger.info(
            "blend (linear, hidden layer, tokens) %s chosen on validation (log-loss %.4f; linear head alone "
            "%.4f)",
            blend,
            scores[blend],
            log_loss(linear_logits, y_val),
        )
        head = blended(kernel, bias, fitted, hidden, blend)
    if head.tokens is None:
        ids = dict.fromkeys(ids)

    def probabilities_of(x: np.ndarray, encoded: dict[str, np.ndarray] | None) -> np.ndarray:
        if encoded is None:
            return head_probabilities(head, x)
        return head_probabilities(head, x, encoded[INPUT_IDS], encoded[ATTENTION_MASK])

    correction = None
    if config.prior_correction == "validation" and len(y_val):
        train_counts = np.bincount(y_train, minlength=len(labels))
        correction = fit_prior_correction(probabilities_of(x_val, ids["validation"]), y_val, train_counts)
        if correction is not None:
            head = with_prior_correction(head, correction)
            logger.info("prior correction: strength %s chosen on validation", correction.strength)
    head = stored(head)
    validation_probabilities = probabilities_of(x_val, ids["validation"])
    if config.head_refit and evaluated_on == "test" and len(y_val):
        fit_started = time.monotonic()
        e_train, e_val = ids["train"], ids["validation"]
        head = refit_head(
            config,
            head,
            correction,
            np.concatenate([x_train, x_val]),
            None
            if e_train is None or e_val is None
            else {k: np.concatenate([e_train[k], e_val[k]]) for k in e_train},
            np.concatenate([y_train, y_val]),
            exclude_ids=exclude_ids,
        )
        logger.info("head refitted on train + validation in %.2f s", time.monotonic() - fit_started)
    train_probabilities = probabilities_of(x_train, ids["train"])
    probabilities = probabilities_of(x_test, ids["held_out"])
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
        validation=validation_probabilities,
        y_validation=y_val,
        held_out=probabilities,
        y_held_out=y_test,
        target_precision=config.target_precision,
    )
    metrics = metrics.model_copy(update={"prior_correction": correction})
    metrics = with_champion_score(metrics, champion, data, base_model_dir=base_model_dir)
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
        token_features=head.tokens.settings if head.tokens else None,
        hidden_layer=head.hidden.settings if head.hidden else None,
        confidence=confidence,
        prior_correction=correction,
    )
    model_dir.mkdir(parents=True, exist_ok=True)
    write_head(model_dir / HEAD_FILE, head)
    write_json_model(model_dir / LABELS_FILE, LabelMap(labels=labels))
    write_json_model(model_dir / ARTIFACT_FILE, info)
    write_json_model(model_dir / METRICS_FILE, metrics)
    write_report(model_dir / REPORT_DIR, history=history, metrics=metrics, info=info)
    return metrics
