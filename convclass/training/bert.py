"""A BERT encoder in plain Keras 3, loaded from a Hugging Face ``model.safetensors`` without torch.

Written out here (about a hundred lines) rather than taken from keras-hub so that the training image needs
neither keras-hub's tensorflow-text dependency nor network access, and the SavedModel holds only core TF ops.
The layer layout mirrors Hugging Face ``BertModel`` (post-LayerNorm, exact GELU, absolute positions).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import ops

from convclass.errors import InvalidInput


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_positions: int
    layer_norm_eps: float

    @classmethod
    def from_dir(cls, directory: Path) -> BertConfig:
        path = directory / "config.json"
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if raw.get("model_type") != "bert" or raw.get("hidden_act") != "gelu":
                raise InvalidInput(f"{path} is not a BERT (gelu) model config")
            return cls(
                vocab_size=int(raw["vocab_size"]),
                hidden_size=int(raw["hidden_size"]),
                num_layers=int(raw["num_hidden_layers"]),
                num_heads=int(raw["num_attention_heads"]),
                intermediate_size=int(raw["intermediate_size"]),
                max_positions=int(raw["max_position_embeddings"]),
                layer_norm_eps=float(raw.get("layer_norm_eps", 1e-12)),
            )
        except (OSError, ValueError, KeyError) as exc:
            raise InvalidInput(f"base model config {path} is missing or invalid") from exc


class BertLayer(keras.layers.Layer):  # type: ignore[misc]  # keras ships no type stubs
    """One transformer block: self-attention and feed-forward, each followed by residual + LayerNorm."""

    def __init__(self, config: BertConfig, dropout: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.heads = config.num_heads
        self.head_size = config.hidden_size // config.num_heads
        self.hidden = config.hidden_size
        self.query = keras.layers.Dense(config.hidden_size, name="query")
        self.key = keras.layers.Dense(config.hidden_size, name="key")
        self.value = keras.layers.Dense(config.hidden_size, name="value")
        self.attention_output = keras.layers.Dense(config.hidden_size, name="attention_output")
        self.attention_norm = keras.layers.LayerNormalization(
            epsilon=config.layer_norm_eps, name="attention_norm"
        )
        self.intermediate = keras.layers.Dense(config.intermediate_size, name="intermediate")
        self.output_dense = keras.layers.Dense(config.hidden_size, name="output")
        self.output_norm = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name="output_norm")
        self.attention_dropout = keras.layers.Dropout(dropout)
        self.hidden_dropout = keras.layers.Dropout(dropout)

    def _split_heads(self, x: Any, batch: Any, length: Any) -> Any:
        x = ops.reshape(x, (batch, length, self.heads, self.head_size))
        return ops.transpose(x, (0, 2, 1, 3))

    def call(self, x: Any, mask_bias: Any, training: bool = False) -> Any:
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        q = self._split_heads(self.query(x), batch, length)
        k = self._split_heads(self.key(x), batch, length)
        v = self._split_heads(self.value(x), batch, length)
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / math.sqrt(self.head_size) + mask_bias
        probs = self.attention_dropout(ops.softmax(scores, axis=-1), training=training)
        context = ops.reshape(ops.transpose(ops.matmul(probs, v), (0, 2, 1, 3)), (batch, length, self.hidden))
        x = self.attention_norm(x + self.hidden_dropout(self.attention_output(context), training=training))
        h = keras.activations.gelu(self.intermediate(x), approximate=False)
        return self.output_norm(x + self.hidden_dropout(self.output_dense(h), training=training))


class BertEncoder(keras.layers.Layer):  # type: ignore[misc]  # keras ships no type stubs
    """Token, position and segment-0 embeddings, then ``num_layers`` BertLayers; returns the hidden states."""

    def __init__(self, config: BertConfig, dropout: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.word_embeddings = keras.layers.Embedding(
            config.vocab_size, config.hidden_size, name="word_embeddings"
        )
        self.position_embeddings = keras.layers.Embedding(
            config.max_positions, config.hidden_size, name="position_embeddings"
        )
        self.token_type_embedding = self.add_weight(
            shape=(config.hidden_size,), initializer="zeros", name="token_type_embedding"
        )
        self.embedding_norm = keras.layers.LayerNormalization(
            epsilon=config.layer_norm_eps, name="embedding_norm"
        )
        self.embedding_dropout = keras.layers.Dropout(dropout)
        self.blocks = [BertLayer(config, dropout, name=f"layer_{i}") for i in range(config.num_layers)]

    def call(self, input_ids: Any, attention_mask: Any, training: bool = False) -> Any:
        length = ops.shape(input_ids)[1]
        positions = ops.expand_dims(ops.arange(length, dtype="int32"), 0)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions) + self.token_type_embedding
        x = self.embedding_dropout(self.embedding_norm(x), training=training)
        mask = ops.cast(attention_mask, x.dtype)
        mask_bias = (1.0 - mask[:, None, None, :]) * -1e9
        for block in self.blocks:
            x = block(x, mask_bias, training=training)
        return x

    def load_safetensors(self, path: Path) -> None:
        """Copy Hugging Face ``BertModel`` weights (``[bert.]embeddings.*``, ``encoder.layer.N.*``) in."""
        from safetensors.numpy import load_file

        try:
            raw = load_file(str(path))
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"base model weights {path} cannot be read") from exc
        weights = {key.removeprefix("bert."): value for key, value in raw.items()}

        def take(name: str) -> np.ndarray:
            if name not in weights:
                raise InvalidInput(f"base model weights lack {name}")
            return weights[name]

        self.word_embeddings.embeddings.assign(take("embeddings.word_embeddings.weight"))
        self.position_embeddings.embeddings.assign(take("embeddings.position_embeddings.weight"))
        self.token_type_embedding.assign(take("embeddings.token_type_embeddings.weight")[0])
        _assign_norm(self.embedding_norm, weights, "embeddings.LayerNorm")
        for i, block in enumerate(self.blocks):
            prefix = f"encoder.layer.{i}."
            _assign_dense(block.query, weights, prefix + "attention.self.query")
            _assign_dense(block.key, weights, prefix + "attention.self.key")
            _assign_dense(block.value, weights, prefix + "attention.self.value")
            _assign_dense(block.attention_output, weights, prefix + "attention.output.dense")
            _assign_norm(block.attention_norm, weights, prefix + "attention.output.LayerNorm")
            _assign_dense(block.intermediate, weights, prefix + "intermediate.dense")
            _assign_dense(block.output_dense, weights, prefix + "output.dense")
            _assign_norm(block.output_norm, weights, prefix + "output.LayerNorm")


def _assign_dense(layer: keras.layers.Dense, weights: dict[str, np.ndarray], name: str) -> None:
    # torch Linear stores [out, in]; Keras Dense kernels are [in, out].
    layer.kernel.assign(weights[name + ".weight"].T)
    layer.bias.assign(weights[name + ".bias"])


def _assign_norm(layer: keras.layers.LayerNormalization, weights: dict[str, np.ndarray], name: str) -> None:
    layer.gamma.assign(weights[name + ".weight"])
    layer.beta.assign(weights[name + ".bias"])
