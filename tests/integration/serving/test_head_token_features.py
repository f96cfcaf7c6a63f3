"""A head trained with token TF-IDF features (with and without the hidden-layer networks) is served by the
real multi-model app and answers exactly what training computed; a server whose encoder tokenizer differs
refuses it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parents[2] / "support"))
from head_models import ENCODER_NAME, MAX_LENGTH, cleaned_emails, tiny_base_model, train_head

from convclass.artifacts import HEAD_FILE, load_artifact
from convclass.calibration import apply_temperature
from convclass.cleaning import CLEANING_VERSION, clean_email
from convclass.errors import IncompatibleModel
from convclass.heads import Head, head_probabilities, read_head
from convclass.serving import (
    ModelRegistry,
    ServingLimits,
    create_multi_model_app,
    open_encoder,
)
from convclass.serving.classifier import load_head
from convclass.tokenization import encode_texts, load_base_tokenizer

pytestmark = pytest.mark.slow

LIMITS = ServingLimits(max_batch_emails=16, max_request_bytes=64_000, max_email_bytes=4_000, top_k=3)


@pytest.mark.parametrize(
    "hidden",
    [{"head_hidden": "off"}, {"head_hidden": "on", "head_hidden_members": "2", "head_hidden_units": "32"}],
    ids=["linear", "hidden-layer"],
)
def test_a_head_with_token_features_serves_what_training_computed(
    tmp_path: Path, hidden: dict[str, str]
) -> None:
    from convclass.training.head import build_encoder, embed, export_encoder

    base = tiny_base_model(tmp_path / "base")
    models_root = tmp_path / "opt_ml_models"
    model_dir = train_head(
        base, models_root / "acme" / "model", "acme", seed=3, n=240, validation=True, hyperparameters=hidden
    )
    artifact = load_artifact(model_dir, cleaning_version=CLEANING_VERSION, require_metrics=True)
    assert (artifact.info.hidden_layer is not None) == (hidden["head_hidden"] == "on")
    features = artifact.info.token_features
    assert features is not None, "validation chose no token weight on data where tokens separate the labels"
    assert features.weight > 0
    assert features.vocab_size == load_base_tokenizer(base).get_vocab_size()
    assert (model_dir / HEAD_FILE).stat().st_size < 200_000
    assert artifact.info.confidence is not None

    export_encoder(base, tmp_path / "encoder", name=ENCODER_NAME, max_length=MAX_LENGTH)
    encoder = open_encoder(tmp_path / "encoder")
    registry = ModelRegistry(
        memory_budget_bytes=64 * 2**20,
        load_full=lambda _: pytest.fail("no full model here"),
        encoder=encoder,
        models_root=models_root,
    )
    emails = cleaned_emails(12, seed=11, tenant="acme")
    with TestClient(create_multi_model_app(registry, limits=LIMITS)) as client:
        loaded = client.post("/models", json={"model_name": "acme", "url": str(model_dir)})
        assert loaded.status_code == 200, loaded.text
        answer = client.post(
            "/models/acme/invoke",
            content=json.dumps({"emails": [{"body": text} for text in emails.texts]}),
            headers={"content-type": "application/json"},
        )
    assert answer.status_code == 200, answer.text
    served = answer.json()["predictions"]

    # Training's side: the training encoder, the base tokenizer and the head as written, calibrated as stored.
    texts = [clean_email(None, text, "text/html").text for text in emails.texts]
    encoded = encode_texts(load_base_tokenizer(base), texts, MAX_LENGTH, artifact.info.truncation)
    head = read_head(
        model_dir / HEAD_FILE,
        dim=16,
        n_labels=artifact.info.n_labels,
        token_features=features,
        hidden_layer=artifact.info.hidden_layer,
    )
    trained = apply_temperature(
        head_probabilities(
            head, embed(build_encoder(base), encoded), encoded["input_ids"], encoded["attention_mask"]
        ),
        artifact.info.confidence.temperature,
    )
    for prediction, row in zip(served, trained, strict=True):
        top = np.argsort(-row, kind="stable")[:3]
        assert [score["label"] for score in prediction["labels"]] == [artifact.labels[i] for i in top]
        np.testing.assert_allclose(
            [score["probability"] for score in prediction["labels"]], row[top], atol=1e-4
        )
    # The token part counts: without it the head's probabilities differ.
    embeddings = embed(build_encoder(base), encoded)
    without_tokens = head_probabilities(Head(head.kernel, head.bias, None, head.hidden), embeddings)
    with_tokens = head_probabilities(head, embeddings, encoded["input_ids"], encoded["attention_mask"])
    assert np.abs(without_tokens - with_tokens).max() > 1e-2


def test_a_server_whose_tokenizer_differs_refuses_a_head_with_token_features(tmp_path: Path) -> None:
    from convclass.training.head import export_encoder

    base = tiny_base_model(tmp_path / "base")
    model_dir = train_head(base, tmp_path / "acme" / "model", "acme", seed=3, n=240, validation=True)
    artifact = load_artifact(model_dir, cleaning_version=CLEANING_VERSION)
    assert artifact.info.token_features is not None
    export_encoder(base, tmp_path / "encoder", name=ENCODER_NAME, max_length=MAX_LENGTH)
    encoder = open_encoder(tmp_path / "encoder")
    shrunk = artifact.info.model_copy(
        update={"token_features": artifact.info.token_features.model_copy(update={"vocab_size": 7})}
    )
    other = type(artifact)(root=artifact.root, info=shrunk, labels=artifact.labels, metrics=None)
    with pytest.raises(IncompatibleModel, match="vocabulary of 7 token ids"):
        load_head(other, encoder)
    # The untouched artifact loads on the same server.
    assert load_head(artifact, encoder).labels == artifact.labels
