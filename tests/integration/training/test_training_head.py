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


def test_a_head_champion_is_scored_on_the_challengers_split_as_it_serves(tmp_path: Path) -> None:
    from head_models import tenant_data

    from convclass.artifacts import pack_model_dir
    from convclass.training.champion import score_champion
    from convclass.training.config import parse_hyperparameters
    from convclass.training.trainer import train_and_export

    base = tiny_base_model(tmp_path / "base")
    champion_dir = train_head(base, tmp_path / "champion" / "model", "acme", seed=3, n=240, validation=True)
    champion = load_artifact(champion_dir, require_metrics=True)
    assert champion.info.token_features is not None  # the champion's token part is scored too
    archive = pack_model_dir(champion_dir, tmp_path / "champion" / "model.tar.gz")

    # The challenger trains on the same split: the champion's score there is its own held-out figure.
    data = tenant_data(base, "acme", seed=3, n=240, validation=True)
    config = parse_hyperparameters({"architecture": "head", "base_model_dir": str(base), "head_c": "5"})
    metrics = train_and_export(
        data,
        config,
        model_dir=tmp_path / "challenger" / "model",
        checkpoint_dir=tmp_path / "challenger" / "checkpoints",
        champion=archive,
    )
    assert metrics.champion is not None
    assert metrics.champion.error is None
    assert champion.metrics is not None
    assert metrics.champion.accuracy == pytest.approx(champion.metrics.accuracy)
    assert metrics.champion.macro_f1 == pytest.approx(champion.metrics.macro_f1)
    assert load_artifact(tmp_path / "challenger" / "model").metrics == metrics

    # Without the encoder, or with another one, a head champion is not scored, and the score says why.
    texts, truth = list(data.test.texts), list(data.test.labels)
    missing = score_champion(archive, texts, truth, cleaning_version=CLEANING_VERSION, evaluated_on="test")
    assert missing.accuracy is None
    assert missing.error is not None
    assert "needs the shared encoder" in missing.error
    other = tiny_base_model(tmp_path / "other")
    (other / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes() + b" ")
    refused = score_champion(
        archive, texts, truth, cleaning_version=CLEANING_VERSION, evaluated_on="test", base_model_dir=other
    )
    assert refused.error is not None
    assert "trained on encoder" in refused.error
