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


def _token_rows(y: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """[CLS] noise words, the label's own word (id 10 + label), [SEP]: token ids that tell labels apart."""
    rng = np.random.default_rng(seed)
    rows = [[1, *rng.integers(20, 30, size=3).tolist(), 10 + int(label), 2] for label in y]
    return {
        "input_ids": np.array(rows, dtype=np.int32),
        "attention_mask": np.ones((len(y), 6), dtype=np.int32),
    }


def test_log_loss_is_scikit_learns_on_the_softmax() -> None:
    from sklearn.metrics import log_loss as sklearn_log_loss

    from convclass.heads import softmax
    from convclass.training.head import log_loss

    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(40, 5)).astype(np.float32)
    y = rng.integers(0, 5, size=40)
    assert log_loss(logits, y) == pytest.approx(
        sklearn_log_loss(y, softmax(logits), labels=range(5)), rel=1e-5
    )


def test_the_token_weight_is_the_one_with_the_lowest_validation_log_loss() -> None:
    from convclass.training.head import TOKEN_WEIGHTS, choose_token_weight, log_loss

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, size=200)
    onehot = np.eye(4, dtype=np.float32)[y]
    embedding = 2.0 * onehot + rng.normal(size=(200, 4)).astype(np.float32)
    informative = 2.0 * onehot + rng.normal(size=(200, 4)).astype(np.float32)
    weight, scores = choose_token_weight(embedding, informative, y)
    assert set(scores) == set(TOKEN_WEIGHTS)
    assert scores[weight] == min(scores.values())
    assert scores[weight] == pytest.approx(log_loss(embedding + weight * informative, y))
    assert weight > 0
    noise = rng.normal(scale=5.0, size=(200, 4)).astype(np.float32)
    assert choose_token_weight(embedding, noise, y)[0] == 0.0


def test_a_refit_head_keeps_what_validation_chose_and_is_fitted_on_all_the_rows() -> None:
    from convclass.artifacts import PriorCorrection
    from convclass.heads import TOKEN_KERNEL_DTYPE, stored
    from convclass.training.head import fit_head, fit_token_head, refit_head, with_tokens
    from convclass.training.trainer import class_weights

    config = parse_hyperparameters({"architecture": "head", "head_token_min_df": "1"})
    x, y = _blobs(3, 20)
    encoded = _token_rows(y)
    ones = np.ones(len(y), dtype=np.float32)
    kernel, bias = fit_head(x, y, 3, c=config.head_c, sample_weight=ones)
    fitted = fit_token_head(config, encoded, y, 3, vocab_size=50, exclude_ids={1, 2}, sample_weight=ones)
    head = stored(with_tokens(kernel, bias, fitted, 0.5))
    correction = PriorCorrection(
        strength=1.0,
        label_bias=(0.1, -0.2, 0.1),
        validation_macro_f1_before=0.5,
        validation_macro_f1_after=0.6,
    )
    more_x, more_y = _blobs(3, 10, seed=1)
    all_x, all_y = np.concatenate([x, more_x]), np.concatenate([y, more_y])
    all_encoded = {k: np.concatenate([encoded[k], _token_rows(more_y, seed=1)[k]]) for k in encoded}

    refitted = refit_head(config, head, correction, all_x, all_encoded, all_y, exclude_ids={1, 2})

    weights = class_weights(all_y, 3, config.class_weighting)
    expected_kernel, expected_bias = fit_head(all_x, all_y, 3, c=config.head_c, sample_weight=weights)
    expected_tokens = fit_token_head(
        config, all_encoded, all_y, 3, vocab_size=50, exclude_ids={1, 2}, sample_weight=weights
    )
    assert expected_tokens is not None
    np.testing.assert_array_equal(refitted.kernel, expected_kernel)
    np.testing.assert_allclose(
        refitted.bias, expected_bias + 0.5 * expected_tokens[1] + np.array(correction.label_bias), rtol=1e-5
    )
    assert refitted.tokens is not None
    assert refitted.tokens.settings.weight == 0.5
    np.testing.assert_array_equal(refitted.tokens.keys, expected_tokens[0].keys)
    np.testing.assert_array_equal(refitted.tokens.kernel, refitted.tokens.kernel.astype(TOKEN_KERNEL_DTYPE))
    with pytest.raises(ValueError, match="token ids"):
        refit_head(config, head, None, all_x, None, all_y, exclude_ids={1, 2})


def test_a_head_is_refitted_on_train_and_validation_unless_told_not_to() -> None:
    assert parse_hyperparameters({"architecture": "head"}).head_refit
    assert not parse_hyperparameters({"architecture": "head", "head_refit": "false"}).head_refit
