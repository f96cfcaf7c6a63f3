"""The ``linear`` architecture: class-weighted logistic regression on TF-IDF token n-grams, as a Keras model.

It reads ``input_ids``/``attention_mask`` of the tenant's own WordPiece tokenizer, like ``cnn``, and outputs
``probabilities``, so it is exported, stored and served exactly like the other SavedModel architectures.

Features (``TfidfFeatures``): every run of 1 to ``linear_max_ngram`` consecutive real tokens is an n-gram,
keyed by one int64 (``ngram_keys``); the vocabulary is the ``linear_max_features`` n-grams found in the most
training texts (at least ``linear_min_df``), held sorted in the layer's ``keys`` weight and looked up with a
binary search. A text's feature is ``(1 + log count) * idf`` (sublinear term frequency, smoothed idf
``ln((1 + n) / (1 + df)) + 1`` in the ``idf`` weight), L2-normalised — scikit-learn's ``TfidfVectorizer``
with ``sublinear_tf=True``, over token n-grams instead of words. Vocabulary and idf are weights of the
SavedModel (no pickle, nothing beside it to keep in step).

Training fits a multinomial logistic regression (``linear_c``, class-balanced sample weights, L-BFGS to
convergence: ``convclass.training.head.fit_head``) on the features the layer itself computes, then loads the
coefficients into the softmax ``Dense`` layer: the served model is the fitted one by construction.
"""

from __future__ import annotations

import logging
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from scipy import sparse

from convclass.artifacts import ATTENTION_MASK, INPUT_IDS, OUTPUT_NAME
from convclass.errors import InsufficientData
from convclass.training.config import TrainingConfig
from convclass.training.models import trim_batch

logger = logging.getLogger("convclass.training")

#: Rows per call when computing training features (dense [rows, features] float32 per call).
FEATURE_BATCH = 256


def ngram_keys(input_ids: Any, attention_mask: Any, vocab_size: int, max_n: int) -> tuple[Any, Any]:
    """All n-grams (n = 1..max_n) of each row as int64 keys [batch, positions], and which ones are real.

    Unigrams are their token id; an n-gram of ids ``t_1..t_n`` is ``offset_n + sum(t_i * V ** (n - i))``
    with ``offset_n`` the number of keys of shorter n-grams, so keys of different lengths never collide.
    An n-gram is real when all its tokens are (padding is trailing, masked by ``attention_mask``).
    """
    ids = tf.cast(input_ids, tf.int64)
    mask = tf.cast(attention_mask, tf.bool)
    vocab = tf.constant(vocab_size, tf.int64)
    keys, valid = [ids], [mask]
    offset = tf.constant(0, tf.int64)
    span = tf.constant(1, tf.int64)
    gram, gram_valid = ids, mask
    for n in range(2, max_n + 1):
        offset += span * vocab
        span *= vocab
        gram = gram[:, :-1] * vocab + ids[:, n - 1 :]
        gram_valid = tf.logical_and(gram_valid[:, :-1], mask[:, n - 1 :])
        keys.append(gram + offset)
        valid.append(gram_valid)
    return tf.concat(keys, axis=1), tf.concat(valid, axis=1)


class TfidfFeatures(keras.layers.Layer):  # type: ignore[misc]  # keras ships no type stubs
    """input_ids, attention_mask → L2-normalised TF-IDF vector over the vocabulary held in ``keys``."""

    def __init__(self, vocab_size: int, max_n: int, n_features: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.max_n = max_n
        self.n_features = n_features
        self.keys = self.add_weight(
            shape=(n_features,), dtype="int64", initializer="zeros", trainable=False, name="keys"
        )
        self.idf = self.add_weight(
            shape=(n_features,), dtype="float32", initializer="ones", trainable=False, name="idf"
        )

    def call(self, input_ids: Any, attention_mask: Any) -> Any:
        keys, valid = ngram_keys(input_ids, attention_mask, self.vocab_size, self.max_n)
        rows, width = tf.shape(keys)[0], tf.shape(keys)[1]
        flat = tf.reshape(keys, [-1])
        sorted_keys = tf.convert_to_tensor(self.keys)
        position = tf.minimum(
            tf.searchsorted(sorted_keys, flat, side="left", out_type=tf.int32), self.n_features - 1
        )
        found = tf.logical_and(tf.equal(tf.gather(sorted_keys, position), flat), tf.reshape(valid, [-1]))
        row = tf.repeat(tf.range(rows), width)
        counts = tf.math.unsorted_segment_sum(
            tf.cast(found, tf.float32), row * self.n_features + position, rows * self.n_features
        )
        counts = tf.reshape(counts, [rows, self.n_features])
        term = tf.where(counts > 0, 1.0 + tf.math.log(tf.maximum(counts, 1.0)), 0.0)
        weighted = term * tf.convert_to_tensor(self.idf)
        norm = tf.sqrt(tf.reduce_sum(weighted * weighted, axis=1, keepdims=True))
        return weighted / tf.maximum(norm, 1e-12)

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config.update(vocab_size=self.vocab_size, max_n=self.max_n, n_features=self.n_features)
        return config


def fit_vocabulary(
    encoded: dict[str, np.ndarray], *, vocab_size: int, max_n: int, max_features: int, min_df: int
) -> tuple[np.ndarray, np.ndarray]:
    """The kept n-gram keys (sorted) and their smoothed idf, from the training texts' document frequency."""
    n = len(encoded[INPUT_IDS])
    per_text: list[np.ndarray] = []
    for start in range(0, n, FEATURE_BATCH):
        batch = trim_batch({key: value[start : start + FEATURE_BATCH] for key, value in encoded.items()})
        keys, valid = ngram_keys(batch[INPUT_IDS], batch[ATTENTION_MASK], vocab_size, max_n)
        keys, valid = keys.numpy(), valid.numpy()
        per_text.extend(np.unique(row[ok]) for row, ok in zip(keys, valid, strict=True))
    if not per_text:
        raise InsufficientData("the linear model needs training texts")
    found, df = np.unique(np.concatenate(per_text), return_counts=True)
    keep = df >= min_df
    found, df = found[keep], df[keep]
    if not len(found):
        raise InsufficientData(f"no token n-gram occurs in {min_df} or more training texts")
    # Most frequent first; equal frequency by key, so the vocabulary is deterministic.
    order = np.lexsort((found, -df))[:max_features]
    found, df = found[order], df[order]
    by_key = np.argsort(found)
    idf = np.log((1.0 + n) / (1.0 + df[by_key])) + 1.0
    return found[by_key].astype(np.int64), idf.astype(np.float32)


def build_linear(
    n_labels: int, *, vocab_size: int, max_n: int, keys: np.ndarray, idf: np.ndarray
) -> tuple[keras.Model, keras.Model]:
    """(classifier, features model): the classifier's softmax Dense reads the features model's output."""
    input_ids = keras.Input(shape=(None,), dtype="int32", name=INPUT_IDS)
    attention_mask = keras.Input(shape=(None,), dtype="int32", name=ATTENTION_MASK)
    tfidf = TfidfFeatures(vocab_size, max_n, len(keys), name="tfidf")
    features = tfidf(input_ids, attention_mask)
    tfidf.keys.assign(keys)
    tfidf.idf.assign(idf)
    probabilities = keras.layers.Dense(n_labels, activation="softmax", dtype="float32", name=OUTPUT_NAME)(
        features
    )
    inputs = {INPUT_IDS: input_ids, ATTENTION_MASK: attention_mask}
    return keras.Model(inputs, probabilities, name="linear"), keras.Model(inputs, features, name="tfidf")


def tfidf_matrix(features_model: keras.Model, encoded: dict[str, np.ndarray]) -> sparse.csr_matrix:
    """The layer's own features for every row, as a sparse matrix (what the regression is fitted on)."""
    parts = []
    for start in range(0, len(encoded[INPUT_IDS]), FEATURE_BATCH):
        batch = trim_batch({key: value[start : start + FEATURE_BATCH] for key, value in encoded.items()})
        parts.append(sparse.csr_matrix(np.asarray(features_model.predict_on_batch(batch))))
    return sparse.vstack(parts, format="csr")


def fit_linear(
    config: TrainingConfig,
    x_train: dict[str, np.ndarray],
    y_train: np.ndarray,
    sample_weight: np.ndarray,
    *,
    n_labels: int,
    vocab_size: int,
) -> keras.Model:
    """Vocabulary and idf from the training texts, then the regression; returns the servable Keras model."""
    from convclass.training.head import fit_head

    max_n = config.linear_max_ngram
    keys, idf = fit_vocabulary(
        x_train,
        vocab_size=vocab_size,
        max_n=max_n,
        max_features=config.linear_max_features,
        min_df=config.linear_min_df,
    )
    model, features_model = build_linear(n_labels, vocab_size=vocab_size, max_n=max_n, keys=keys, idf=idf)
    features = tfidf_matrix(features_model, x_train)
    logger.info("linear: %d n-gram features, %d non-zeros", features.shape[1], features.nnz)
    kernel, bias = fit_head(features, y_train, n_labels, c=config.linear_c, sample_weight=sample_weight)
    model.get_layer(OUTPUT_NAME).set_weights([kernel, bias])
    return model
