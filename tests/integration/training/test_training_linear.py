"""The ``linear`` architecture end to end: TF-IDF + logistic regression, a SavedModel that serves like cnn."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "support"))
from head_models import tenant_data, tiny_base_model

from convclass.artifacts import load_artifact
from convclass.cleaning import CLEANING_VERSION
from convclass.serving import InboundEmail
from convclass.serving.classifier import load_classifier
from convclass.tokenization import encode_texts, load_tokenizer
from convclass.training.config import parse_hyperparameters
from convclass.training.trainer import train_and_export

pytestmark = pytest.mark.slow


def test_linear_artifact_holds_its_vocabulary_and_serves_what_training_measured(tmp_path: Path) -> None:
    base = tiny_base_model(tmp_path / "base")
    data = tenant_data(base, "acme", seed=2, n=240, validation=True)
    config = parse_hyperparameters({"architecture": "linear", "linear_min_df": "1"})
    model_dir = tmp_path / "model"
    metrics = train_and_export(data, config, model_dir=model_dir, checkpoint_dir=tmp_path / "ckpt")

    artifact = load_artifact(model_dir, cleaning_version=CLEANING_VERSION, require_metrics=True)
    assert artifact.info.architecture == metrics.architecture == "linear"
    assert artifact.info.encoder is None
    assert artifact.info.confidence is not None
    assert metrics.accuracy > 0.5
    # Nothing pickled: the n-gram vocabulary and idf are variables of the SavedModel.
    assert not [p for p in model_dir.rglob("*") if p.suffix in {".pkl", ".pickle", ".joblib"}]

    # The serving path (artifact tokenizer → SavedModel in-process) reproduces the held-out figure.
    classifier = load_classifier(artifact)
    tokenizer = load_tokenizer(artifact.tokenizer_path)
    encoded = encode_texts(
        tokenizer, list(data.test.texts), artifact.info.max_length, artifact.info.truncation
    )
    served = classifier.probabilities(encoded)
    truth = np.array([artifact.labels.index(label) for label in data.test.labels])
    assert float((served.argmax(axis=1) == truth).mean()) == pytest.approx(metrics.accuracy)
    answer = classifier.classify([InboundEmail(body=data.test.texts[0])])[0]
    assert answer.labels[0].label.startswith("acme.")


def test_truncation_auto_compares_both_cuts_on_long_texts_and_records_the_choice(tmp_path: Path) -> None:
    base = tiny_base_model(tmp_path / "base")
    data = tenant_data(base, "acme", seed=3, n=200, validation=True)  # max_length 32: most emails are longer
    metrics = train_and_export(
        data,
        parse_hyperparameters({"architecture": "linear", "truncation": "auto"}),
        model_dir=tmp_path / "model",
        checkpoint_dir=tmp_path / "ckpt",
    )
    choice = metrics.truncation
    assert choice is not None
    assert choice.long_text_share >= 0.05
    scores = choice.validation_macro_f1
    assert set(scores) == {"head", "head_tail"}
    assert choice.selected == ("head_tail" if scores["head_tail"] > scores["head"] else "head")
    assert metrics.validation_macro_f1 == scores[choice.selected]
    artifact = load_artifact(tmp_path / "model", cleaning_version=CLEANING_VERSION, require_metrics=True)
    assert artifact.info.truncation == choice.selected
    assert artifact.metrics == metrics

    # Nothing is cut at 512 tokens: head, with nothing trained twice.
    short = train_and_export(
        data,
        parse_hyperparameters({"architecture": "linear", "max_length": "512", "truncation": "auto"}),
        model_dir=tmp_path / "model-512",
        checkpoint_dir=tmp_path / "ckpt-512",
    )
    assert short.truncation is not None
    assert (short.truncation.selected, short.truncation.validation_macro_f1) == ("head", {})
