"""The head's fit and its artifact contract, on tiny synthetic embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from convclass.artifacts import ArtifactInfo, EncoderRef
from convclass.errors import InsufficientData
from convclass.heads import Head, head_probabilities
from convclass.training.config import parse_hyperparameters

REF = EncoderRef(name="enc", digest="0" * 64, dim=8)


def _blobs(n_labels: int, per_label: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_labels, 8)) * 3
    y = np.repeat(np.arange(n_labels), per_label)
    x = centres[y] + rng.normal(scale=0.5, size=(len(y), 8))
    return x.astype(np.float32), y.astype(np.int32)


def test_fit_head_separates_separable_labels_and_is_deterministic() -> None:
    from convclass.training.head import fit_head

    x, y = _blobs(4, 30)
    kernel, bias = fit_head(x, y, 4, c=10.0)
    assert kernel.shape == (8, 4)
    assert bias.shape == (4,)
    assert (head_probabilities(Head(kernel, bias), x).argmax(axis=1) == y).mean() > 0.95
    again = fit_head(x, y, 4, c=10.0)
    np.testing.assert_array_equal(kernel, again[0])


def test_a_label_without_training_rows_is_never_predicted() -> None:
    from convclass.training.head import fit_head

    x, y = _blobs(3, 20)
    kernel, bias = fit_head(x, y, 4, c=10.0)  # label 3 has no rows
    probabilities = head_probabilities(Head(kernel, bias), x)
    assert (probabilities.argmax(axis=1) != 3).all()
    assert probabilities[:, 3].max() < 1e-6


def test_fit_head_refuses_a_single_label() -> None:
    from convclass.training.head import fit_head

    x, _ = _blobs(1, 10)
    with pytest.raises(InsufficientData):
        fit_head(x, np.zeros(10, dtype=np.int32), 2, c=1.0)


def test_artifact_info_carries_an_encoder_exactly_for_heads() -> None:
    common = {"model_version": 1, "max_length": 32, "n_labels": 2, "cleaning_version": "1"}
    assert ArtifactInfo(architecture="head", encoder=REF, **common).is_head
    with pytest.raises(ValueError, match="encoder"):
        ArtifactInfo(architecture="head", **common)
    with pytest.raises(ValueError, match="encoder"):
        ArtifactInfo(architecture="cnn", encoder=REF, **common)


def test_head_hyperparameters_resolve_and_accept_a_base_model() -> None:
    config = parse_hyperparameters({"architecture": "head", "base_model_dir": "/x", "head_c": "5"})
    assert config.architecture == "head"
    assert config.head_c == 5.0
    assert config.epochs == 1
