"""The pretrained-encoder architecture end to end on a tiny dataset: weights load, the export serves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from training_support import build_dataset_dir, job_root, run_job

from convclass.artifacts import load_artifact
from convclass.cleaning import PII_TOKENS
from convclass.tokenization import encode_texts, load_tokenizer
from convclass.training.data import read_split

pytestmark = pytest.mark.slow


def test_minilm_job_exports_a_servable_model(tmp_path: Path) -> None:
    import tensorflow as tf

    dataset = build_dataset_dir(tmp_path / "dataset", emails=260, seed=5)
    hyperparameters = {"epochs": "1", "batch_size": "16", "max_length": "32"}
    root = job_root(tmp_path / "job", dataset, hyperparameters)
    result = run_job(root, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]

    artifact = load_artifact(root / "model", require_metrics=True)
    assert artifact.info.architecture == "minilm"
    assert artifact.info.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert artifact.info.max_length == 32
    tokenizer = load_tokenizer(artifact.tokenizer_path)
    assert tokenizer.get_vocab_size() == 30522  # PII tokens took [unused] slots: embeddings keep their shape
    for token in PII_TOKENS:
        ids = encode_texts(tokenizer, [f"write to {token} today"], 32)["input_ids"][0]
        assert tokenizer.token_to_id(token) in ids.tolist()  # one id, not split into pieces

    test = read_split(dataset / "test.parquet")
    encoded = encode_texts(tokenizer, list(test.texts), artifact.info.max_length)
    serving = tf.saved_model.load(str(artifact.saved_model_dir)).signatures["serving_default"]
    probabilities = serving(
        input_ids=tf.constant(encoded["input_ids"]), attention_mask=tf.constant(encoded["attention_mask"])
    )["probabilities"].numpy()
    assert artifact.metrics is not None
    index = {label: i for i, label in enumerate(artifact.labels)}
    truth = np.array([index[label] for label in test.labels])
    assert (probabilities.argmax(axis=1) == truth).mean() == pytest.approx(artifact.metrics.accuracy)
    saved = json.loads((artifact.saved_model_dir.parent.parent / "artifact.json").read_text())
    assert saved["versions"]["keras"]
