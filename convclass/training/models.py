"""The classifier architectures. Both take ``input_ids``/``attention_mask`` and output ``probabilities``.

- ``minilm``: the pretrained all-MiniLM-L6-v2 sentence encoder (6 layers, 384 wide), mean-pooled over real
  tokens (as it was pretrained), fine-tuned end to end with a softmax head. Best accuracy; ~9 ms per email.
- ``cnn``: embeddings learned from scratch on the tenant's own WordPiece vocabulary, a width-3 convolution
  with masked max pooling plus masked mean pooling of the embeddings. Trains in seconds; ~0.5 ms per email.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import ops

from convclass.artifacts import ATTENTION_MASK, INPUT_IDS, OUTPUT_NAME
from convclass.training.bert import BertConfig, BertEncoder
from convclass.training.config import TrainingConfig


class MaskedMeanPooling(keras.layers.Layer):  # type: ignore[misc]  # keras ships no type stubs
    def call(self, hidden: Any, attention_mask: Any) -> Any:
        mask = ops.expand_dims(ops.cast(attention_mask, hidden.dtype), -1)
        return ops.sum(hidden * mask, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1.0)


class ZeroPadding(keras.layers.Layer):  # type: ignore[misc]  # keras ships no type stubs
    def call(self, hidden: Any, attention_mask: Any) -> Any:
        return hidden * ops.expand_dims(ops.cast(attention_mask, hidden.dtype), -1)


class MaskedMaxPooling(keras.layers.Layer):  # type: ignore[misc]  # keras ships no type stubs
    def call(self, hidden: Any, attention_mask: Any) -> Any:
        mask = ops.expand_dims(ops.cast(attention_mask, hidden.dtype), -1)
        return ops.max(hidden + (1.0 - mask) * -1e9, axis=1)


def _inputs() -> tuple[Any, Any]:
    return (
        keras.Input(shape=(None,), dtype="int32", name=INPUT_IDS),
        keras.Input(shape=(None,), dtype="int32", name=ATTENTION_MASK),
    )


def build_minilm(config: TrainingConfig, n_labels: int, base_model_dir: Path) -> keras.Model:
    bert_config = BertConfig.from_dir(base_model_dir)
    dropout = float(config.dropout or 0.0)
    input_ids, attention_mask = _inputs()
    encoder = BertEncoder(bert_config, dropout, name="encoder")
    pooled = MaskedMeanPooling(name="mean_pooling")(encoder(input_ids, attention_mask), attention_mask)
    pooled = keras.layers.Dropout(dropout)(pooled)
    probabilities = keras.layers.Dense(n_labels, activation="softmax", dtype="float32", name=OUTPUT_NAME)(
        pooled
    )
    model = keras.Model({INPUT_IDS: input_ids, ATTENTION_MASK: attention_mask}, probabilities, name="minilm")
    encoder.load_safetensors(base_model_dir / "model.safetensors")
    return model


def build_cnn(config: TrainingConfig, n_labels: int, vocab_size: int) -> keras.Model:
    dropout = float(config.dropout or 0.0)
    input_ids, attention_mask = _inputs()
    embedded = keras.layers.Embedding(vocab_size, config.embedding_dim, name="embedding")(input_ids)
    # Zeroing padding makes it identical to the convolution's own zero padding, so trimmed batches and
    # full-length serving inputs give the same outputs.
    embedded = ZeroPadding(name="zero_padding")(embedded, attention_mask)
    conv = keras.layers.Conv1D(config.conv_filters, 3, padding="same", activation="relu", name="conv")(
        embedded
    )
    features = keras.layers.Concatenate()(
        [
            MaskedMaxPooling(name="max_pooling")(conv, attention_mask),
            MaskedMeanPooling(name="mean_pooling")(embedded, attention_mask),
        ]
    )
    features = keras.layers.Dropout(dropout)(features)
    probabilities = keras.layers.Dense(n_labels, activation="softmax", dtype="float32", name=OUTPUT_NAME)(
        features
    )
    return keras.Model({INPUT_IDS: input_ids, ATTENTION_MASK: attention_mask}, probabilities, name="cnn")


def predict_probabilities(
    model: keras.Model, inputs: dict[str, np.ndarray], batch_size: int = 256
) -> np.ndarray:
    """Predict in batches trimmed to their longest real sequence (compiled; no per-call ``predict`` setup)."""
    n = len(inputs[INPUT_IDS])
    if n == 0:
        return np.zeros((0, int(model.output.shape[-1])), dtype=np.float32)
    out = []
    for start in range(0, n, batch_size):
        batch = {key: value[start : start + batch_size] for key, value in inputs.items()}
        out.append(np.asarray(model.predict_on_batch(trim_batch(batch))))
    return np.concatenate(out).astype(np.float32)


def trim_batch(batch: dict[str, np.ndarray], multiple: int = 8) -> dict[str, np.ndarray]:
    """Cut right padding to the batch's longest sequence (rounded up to ``multiple`` to bound retracing).

    Masks zero out padding, so the result is the same as on the full ``max_length``; the cost is not.
    """
    mask = batch[ATTENTION_MASK]
    longest = int(mask.sum(axis=1).max()) if len(mask) else 1
    width = min(mask.shape[1], max(multiple, -(-longest // multiple) * multiple))
    return {key: value[:, :width] for key, value in batch.items()}
