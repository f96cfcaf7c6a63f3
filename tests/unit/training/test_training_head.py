"""The head's fit and its artifact contract, on tiny synthetic embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from convclass.artifacts import ArtifactInfo, EncoderRef
from convclass.errors import InsufficientData
from convclass.heads import Head, head_probabilities
from convclass.training.config import TrainingConfig, parse_hyperparameters

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


def test_the_blend_is_the_one_with_the_lowest_validation_log_loss() -> None:
    from convclass.training.head import HIDDEN_BLENDS, TOKEN_WEIGHTS, choose_blend, log_loss

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, size=200)
    onehot = np.eye(4, dtype=np.float32)[y]
    linear = 2.0 * onehot + rng.normal(size=(200, 4)).astype(np.float32)
    informative = 2.0 * onehot + rng.normal(size=(200, 4)).astype(np.float32)
    noise = rng.normal(scale=5.0, size=(200, 4)).astype(np.float32)

    blend, scores = choose_blend(linear, None, informative, y)
    assert set(scores) == {(1.0, 0.0, w) for w in TOKEN_WEIGHTS}  # no networks: only the linear head's blends
    assert scores[blend] == min(scores.values())
    assert scores[blend] == pytest.approx(log_loss(linear + blend[2] * informative, y))
    assert blend[2] > 0
    assert choose_blend(linear, None, noise, y)[0] == (1.0, 0.0, 0.0)

    # Networks better than the linear head replace it; noisy ones are left out; ties go to the cheaper blend.
    blend, scores = choose_blend(noise, 3.0 * informative, None, y)
    assert len(scores) == len(HIDDEN_BLENDS)
    assert blend[0] == 0.0
    assert blend[1] > 0
    assert choose_blend(linear, noise, None, y)[0] == (1.0, 0.0, 0.0)
    assert choose_blend(linear, np.zeros_like(linear), None, y)[0] == (1.0, 0.0, 0.0)


def _hidden_config(*, members: int, units: int, epochs: int) -> TrainingConfig:
    """A head config with a small, quick bag of networks."""
    return parse_hyperparameters(
        {
            "architecture": "head",
            "head_hidden_members": str(members),
            "head_hidden_units": str(units),
            "head_hidden_epochs": str(epochs),
        }
    )


def test_the_hidden_layer_bag_is_what_keras_computes_and_blends_into_the_head() -> None:
    """The bag fitted with Keras, folded into a head, gives numpy logits equal to the Keras networks'."""
    import keras

    from convclass.heads import head_logits, hidden_layer_logits
    from convclass.training.head import HIDDEN_INPUT_SCALE, blended, fit_hidden_layer

    x, y = _blobs(3, 30)
    config = _hidden_config(members=2, units=16, epochs=3)
    ones = np.ones(len(y), dtype=np.float32)
    fitted = fit_hidden_layer(config, x, y, 3, sample_weight=ones)
    networks = fitted.networks
    assert networks.kernel_1.shape == (2, x.shape[1], 16)
    assert networks.kernel_2.shape == (2, 16, 3)
    # The same two networks rebuilt in Keras from the stored weights (input scale folded into kernel_1).
    expected = np.zeros((len(x), 3), dtype=np.float32)
    for member in range(2):
        model = keras.Sequential(
            [keras.Input((x.shape[1],)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)]
        )
        model.set_weights(
            [
                networks.kernel_1[member] / HIDDEN_INPUT_SCALE,
                networks.bias_1[member],
                networks.kernel_2[member],
                np.zeros(3, dtype=np.float32),
            ]
        )
        expected += model.predict(x * HIDDEN_INPUT_SCALE, verbose=0)
    np.testing.assert_allclose(hidden_layer_logits(networks, x), expected, rtol=1e-4, atol=1e-4)
    # Trained again with the same seed: the same networks.
    again = fit_hidden_layer(config, x, y, 3, sample_weight=ones)
    np.testing.assert_allclose(again.networks.kernel_1, networks.kernel_1, rtol=1e-5, atol=1e-6)

    kernel = np.ones((x.shape[1], 3), dtype=np.float32)
    bias = np.array([0.1, 0.2, 0.3], dtype=np.float32)
    head = blended(kernel, bias, None, fitted, (0.5, 2.0, 0.0))
    assert head.hidden is not None
    assert head.hidden.settings.weight == 2.0
    assert head.hidden.settings.linear_weight == 0.5
    np.testing.assert_allclose(
        head_logits(head, x), 0.5 * (x @ kernel + bias) + 2.0 * (expected + fitted.bias), rtol=1e-4, atol=1e-4
    )
    assert blended(kernel, bias, None, fitted, (1.0, 0.0, 0.0)).hidden is None


def test_a_label_without_training_rows_is_never_predicted_by_the_networks_alone() -> None:
    from convclass.heads import head_logits
    from convclass.training.head import blended, fit_hidden_layer

    x, y = _blobs(3, 20)
    config = _hidden_config(members=1, units=8, epochs=2)
    fitted = fit_hidden_layer(config, x, y, 4, sample_weight=np.ones(len(y), dtype=np.float32))
    head = blended(
        np.zeros((x.shape[1], 4), np.float32), np.zeros(4, np.float32), None, fitted, (0.0, 1.0, 0.0)
    )
    assert not (head_logits(head, x).argmax(axis=1) == 3).any()
    assert head.bias[3] <= -1e4


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


def test_a_refit_keeps_the_hidden_layer_blend_and_retrains_the_networks_on_all_the_rows() -> None:
    from convclass.heads import stored
    from convclass.training.head import blended, fit_head, fit_hidden_layer, refit_head
    from convclass.training.trainer import class_weights

    config = _hidden_config(members=2, units=8, epochs=2)
    x, y = _blobs(3, 20)
    ones = np.ones(len(y), dtype=np.float32)
    kernel, bias = fit_head(x, y, 3, c=config.head_c, sample_weight=ones)
    head = stored(
        blended(kernel, bias, None, fit_hidden_layer(config, x, y, 3, sample_weight=ones), (0.5, 1.0, 0.0))
    )
    more_x, more_y = _blobs(3, 10, seed=1)
    all_x, all_y = np.concatenate([x, more_x]), np.concatenate([y, more_y])

    refitted = refit_head(config, head, None, all_x, None, all_y, exclude_ids=set())

    weights = class_weights(all_y, 3, config.class_weighting)
    expected = fit_hidden_layer(config, all_x, all_y, 3, sample_weight=weights)
    expected_kernel, _ = fit_head(all_x, all_y, 3, c=config.head_c, sample_weight=weights)
    assert refitted.hidden is not None
    assert (refitted.hidden.settings.linear_weight, refitted.hidden.settings.weight) == (0.5, 1.0)
    np.testing.assert_allclose(refitted.kernel, 0.5 * expected_kernel, rtol=1e-5)
    np.testing.assert_allclose(
        refitted.hidden.kernel_1, expected.networks.kernel_1.astype(np.float16).astype(np.float32), atol=1e-3
    )


def test_a_head_is_refitted_on_train_and_validation_unless_told_not_to() -> None:
    assert parse_hyperparameters({"architecture": "head"}).head_refit
    assert not parse_hyperparameters({"architecture": "head", "head_refit": "false"}).head_refit
