"""A tiny random BERT in Hugging Face layout (config.json, model.safetensors, tokenizer.json).

It loads through the same code as all-MiniLM-L6-v2 (``convclass.training.bert``), so the ``head``
architecture and the shared encoder are tested end to end in seconds; only the accuracy is not MiniLM's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from convclass.tokenization import save_tokenizer, train_tokenizer

HIDDEN = 16
LAYERS = 1
HEADS = 2
INTERMEDIATE = 32
POSITIONS = 64


def build_tiny_bert(directory: Path, corpus: Sequence[str], *, seed: int = 0) -> Path:
    tokenizer = train_tokenizer(list(corpus), vocab_size=300, min_frequency=1)
    save_tokenizer(tokenizer, directory)
    vocab = tokenizer.get_vocab_size()
    rng = np.random.default_rng(seed)

    def normal(*shape: int) -> np.ndarray:
        return rng.normal(scale=0.5, size=shape).astype(np.float32)

    weights = {
        "embeddings.word_embeddings.weight": normal(vocab, HIDDEN),
        "embeddings.position_embeddings.weight": normal(POSITIONS, HIDDEN),
        "embeddings.token_type_embeddings.weight": normal(2, HIDDEN),
        "embeddings.LayerNorm.weight": np.ones(HIDDEN, np.float32),
        "embeddings.LayerNorm.bias": np.zeros(HIDDEN, np.float32),
    }
    for i in range(LAYERS):
        prefix = f"encoder.layer.{i}."
        for name, (out, inp) in {
            "attention.self.query": (HIDDEN, HIDDEN),
            "attention.self.key": (HIDDEN, HIDDEN),
            "attention.self.value": (HIDDEN, HIDDEN),
            "attention.output.dense": (HIDDEN, HIDDEN),
            "intermediate.dense": (INTERMEDIATE, HIDDEN),
            "output.dense": (HIDDEN, INTERMEDIATE),
        }.items():
            weights[prefix + name + ".weight"] = normal(out, inp) / np.sqrt(inp)
            weights[prefix + name + ".bias"] = np.zeros(out, np.float32)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            weights[prefix + norm + ".weight"] = np.ones(HIDDEN, np.float32)
            weights[prefix + norm + ".bias"] = np.zeros(HIDDEN, np.float32)
    save_file(weights, str(directory / "model.safetensors"))
    config = {
        "model_type": "bert",
        "hidden_act": "gelu",
        "vocab_size": vocab,
        "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "intermediate_size": INTERMEDIATE,
        "max_position_embeddings": POSITIONS,
    }
    (directory / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return directory
