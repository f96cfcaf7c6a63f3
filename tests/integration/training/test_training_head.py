"""The ``head`` architecture end to end on a tiny encoder: the artifact is the head only, and it serves."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "support"))
from head_models import ENCODER_NAME, MAX_LENGTH, cleaned_emails, tiny_base_model, train_head

from convclass.artifacts import HEAD_FILE, SAVED_MODEL_DIR, load_artifact
from convclass.cleaning import CLEANING_VERSION
from convclass.heads import head_probabilities, read_head
from convclass.layout import TOKENIZER_FILE
from convclass.serving import InboundEmail, open_encoder
from convclass.serving.classifier import load_head
from convclass.tokenization import encode_texts, load_base_tokenizer

pytestmark = pytest.mark.slow


def test_head_artifact_is_the_head_and_the_encoder_identity_and_serves_like_training(tmp_path: Path) -> None:
    from convclass.training.head import build_encoder, embed, export_encoder

    base = tiny_base_model(tmp_path / "base")
    model_dir = train_head(base, tmp_path / "job" / "model", "acme")

    artifact = load_artifact(model_dir, cleaning_version=CLEANING_VERSION, require_metrics=True)
    assert artifact.info.architecture == "head"
    assert artifact.info.encoder is not None
    weights_digest = hashlib.sha256((base / "model.safetensors").read_bytes()).hexdigest()
    assert artifact.info.encoder.digest == weights_digest
    assert artifact.info.encoder.dim == 16
    # Only the head travels: no SavedModel, no tokenizer.
    assert not (model_dir / SAVED_MODEL_DIR).exists()
    assert not (model_dir / TOKENIZER_FILE).exists()
    head = read_head(
        model_dir / HEAD_FILE,
        dim=16,
        n_labels=artifact.info.n_labels,
        token_features=artifact.info.token_features,
    )
    assert head.kernel.shape == (16, artifact.info.n_labels)
    assert artifact.metrics is not None
    assert artifact.metrics.architecture == "head"

    # The served path (exported encoder + head in numpy) predicts what training's encoder + head predict.
    encoder_dir = tmp_path / "encoder"
    export_encoder(base, encoder_dir, name=ENCODER_NAME, max_length=MAX_LENGTH)
    encoder = open_encoder(encoder_dir)
    classifier = load_head(artifact, encoder)
    emails = cleaned_emails(20, seed=5, tenant="acme")
    served = classifier.probabilities(
        classifier.encode(classifier.clean([InboundEmail(t) for t in emails.texts]))
    )
    tokenizer = load_base_tokenizer(base)
    texts = [c.text for c in classifier.clean([InboundEmail(t) for t in emails.texts])]
    encoded = encode_texts(tokenizer, texts, MAX_LENGTH)
    trained = head_probabilities(
        head, embed(build_encoder(base), encoded), encoded["input_ids"], encoded["attention_mask"]
    )
    np.testing.assert_allclose(served, trained, atol=1e-4)
    predictions = classifier.classify([InboundEmail(body=emails.texts[0])])
    assert all(score.label.startswith("acme.") for score in predictions[0].labels)
