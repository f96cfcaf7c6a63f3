"""A head's logits (embedding + weighted token TF-IDF) and its ``head.npz``: the one definition training and
serving share (convclass.heads), checked against scikit-learn and against malformed files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from convclass.artifacts import (
    ARTIFACT_FILE,
    ArtifactInfo,
    EncoderRef,
    HiddenLayerFeatures,
    TokenFeatures,
    load_artifact,
)
from convclass.errors import IncompatibleModel
from convclass.heads import (
    Head,
    HiddenLayerHead,
    TokenHead,
    gelu_tanh,
    head_logits,
    head_nbytes,
    head_probabilities,
    hidden_layer_logits,
    ngram_keys,
    read_head,
    stored,
    tfidf_entries,
    token_logits,
    write_head,
)

VOCAB = 50
DIM = 4
N_LABELS = 3
REF = EncoderRef(name="enc", digest="0" * 64, dim=DIM)


def _ids(rows: list[list[int]], width: int = 8) -> tuple[np.ndarray, np.ndarray]:
    input_ids = np.zeros((len(rows), width), dtype=np.int32)
    mask = np.zeros((len(rows), width), dtype=np.int32)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return input_ids, mask


def _head(n_features: int = 5, *, weight: float = 0.5, max_ngram: int = 1, seed: int = 0) -> Head:
    rng = np.random.default_rng(seed)
    settings = TokenFeatures(vocab_size=VOCAB, max_ngram=max_ngram, n_features=n_features, weight=weight)
    tokens = TokenHead(
        settings,
        np.arange(10, 10 + n_features, dtype=np.int64),
        rng.uniform(1.0, 3.0, size=n_features).astype(np.float32),
        rng.normal(size=(n_features, N_LABELS)).astype(np.float32),
    )
    return Head(
        rng.normal(size=(DIM, N_LABELS)).astype(np.float32),
        rng.normal(size=N_LABELS).astype(np.float32),
        tokens,
    )


def test_ngram_keys_match_the_tensorflow_layer_of_the_linear_model() -> None:
    from convclass.training.linear import ngram_keys as tf_ngram_keys

    input_ids, mask = _ids([[1, 12, 13, 12, 2], [1, 14, 2]])
    for max_n in (1, 2, 3):
        keys, valid = ngram_keys(input_ids, mask, VOCAB, max_n)
        tf_keys, tf_valid = tf_ngram_keys(input_ids, mask, VOCAB, max_n)
        np.testing.assert_array_equal(valid, tf_valid.numpy())
        np.testing.assert_array_equal(keys[valid], tf_keys.numpy()[tf_valid.numpy()])


def test_tfidf_features_are_scikit_learns_sublinear_tfidf_over_token_ids() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    rows = [[1, 12, 13, 12, 2], [1, 14, 12, 2], [1, 13, 13, 13, 15, 2], [1, 2]]
    input_ids, mask = _ids(rows)
    keys = np.array([12, 13, 14, 15], dtype=np.int64)
    documents = [" ".join(f"t{t}" for t in row if t in keys) for row in rows]
    vectorizer = TfidfVectorizer(
        sublinear_tf=True, token_pattern=r"\S+", vocabulary=[f"t{k}" for k in keys], lowercase=False
    )
    expected = vectorizer.fit_transform(documents).toarray()
    settings = TokenFeatures(vocab_size=VOCAB, max_ngram=1, n_features=len(keys), weight=1.0)
    row, feature, values = tfidf_entries(input_ids, mask, settings, keys, vectorizer.idf_.astype(np.float32))
    dense = np.zeros_like(expected)
    dense[row, feature] = values
    np.testing.assert_allclose(dense, expected, atol=1e-6)
    # Padding never counts: the same rows padded wider give the same features.
    wider = _ids(rows, width=16)
    np.testing.assert_array_equal(tfidf_entries(*wider, settings, keys, vectorizer.idf_)[2], values)


def test_logits_are_the_embedding_head_plus_the_weighted_token_logits() -> None:
    head = _head(weight=0.5)
    assert head.tokens is not None
    embeddings = np.random.default_rng(1).normal(size=(3, DIM)).astype(np.float32)
    input_ids, mask = _ids([[1, 10, 11, 11, 2], [1, 99 % VOCAB, 2], [1, 14, 2]])
    logits = head_logits(head, embeddings, input_ids, mask)

    # By hand: row 0 holds token 10 once and 11 twice; row 1 no known token; row 2 token 14 once.
    idf, kernel = head.tokens.idf, head.tokens.kernel
    v0 = np.array([idf[0], (1 + np.log(2)) * idf[1]])
    v0 /= np.linalg.norm(v0)
    expected_tokens = np.stack([v0 @ kernel[:2], np.zeros(N_LABELS), kernel[4]])
    np.testing.assert_allclose(token_logits(head.tokens, input_ids, mask), expected_tokens, atol=1e-5)
    np.testing.assert_allclose(
        logits, embeddings @ head.kernel + head.bias + 0.5 * expected_tokens, atol=1e-5
    )
    probabilities = head_probabilities(head, embeddings, input_ids, mask)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert (probabilities.argmax(axis=1) == logits.argmax(axis=1)).all()


def test_a_head_with_token_features_needs_the_token_ids_and_one_without_ignores_them() -> None:
    head = _head()
    embeddings = np.zeros((1, DIM), dtype=np.float32)
    with pytest.raises(ValueError, match="token features"):
        head_logits(head, embeddings)
    plain = Head(head.kernel, head.bias)
    input_ids, mask = _ids([[1, 10, 2]])
    np.testing.assert_array_equal(
        head_logits(plain, embeddings), head_logits(plain, embeddings, input_ids, mask)
    )


def test_write_then_read_gives_the_stored_head_without_pickle(tmp_path: Path) -> None:
    head = _head(n_features=400)
    path = tmp_path / "head.npz"
    written = write_head(path, head)
    assert head.tokens is not None
    read = read_head(path, dim=DIM, n_labels=N_LABELS, token_features=head.tokens.settings)
    assert read.tokens is not None
    assert written.tokens is not None
    np.testing.assert_array_equal(read.kernel, head.kernel)
    np.testing.assert_array_equal(read.bias, head.bias)
    np.testing.assert_array_equal(read.tokens.keys, head.tokens.keys)
    np.testing.assert_array_equal(read.tokens.kernel, written.tokens.kernel)  # training scores what is stored
    np.testing.assert_allclose(read.tokens.kernel, head.tokens.kernel, rtol=1e-3, atol=1e-3)
    assert read.nbytes == head_nbytes(DIM, N_LABELS, head.tokens.settings)  # the server's memory estimate
    restored = stored(written).tokens  # rounding what is stored changes nothing
    assert restored is not None
    np.testing.assert_array_equal(restored.kernel, written.tokens.kernel)
    with np.load(path, allow_pickle=False) as arrays:
        assert arrays["token_kernel"].dtype == np.float16
    # An embedding-only head round-trips too, and has no token arrays.
    plain = Head(head.kernel, head.bias)
    write_head(tmp_path / "plain.npz", plain)
    assert read_head(tmp_path / "plain.npz", dim=DIM, n_labels=N_LABELS).tokens is None


def test_a_head_file_that_does_not_match_artifact_json_is_refused_by_name(tmp_path: Path) -> None:
    head = _head()
    assert head.tokens is not None
    settings = head.tokens.settings
    with_tokens, plain = tmp_path / "tokens.npz", tmp_path / "plain.npz"
    write_head(with_tokens, head)
    write_head(plain, Head(head.kernel, head.bias))

    with pytest.raises(IncompatibleModel, match="lacks token_keys, token_idf, token_kernel"):
        read_head(plain, dim=DIM, n_labels=N_LABELS, token_features=settings)
    with pytest.raises(IncompatibleModel, match="does not declare"):
        read_head(with_tokens, dim=DIM, n_labels=N_LABELS)
    with pytest.raises(IncompatibleModel, match="token arrays"):
        read_head(
            with_tokens,
            dim=DIM,
            n_labels=N_LABELS,
            token_features=settings.model_copy(update={"n_features": 9}),
        )
    with pytest.raises(IncompatibleModel, match="kernel"):
        read_head(with_tokens, dim=DIM + 1, n_labels=N_LABELS, token_features=settings)

    unsorted = tmp_path / "unsorted.npz"
    np.savez(
        unsorted,
        kernel=head.kernel,
        bias=head.bias,
        token_keys=head.tokens.keys[::-1].copy(),
        token_idf=head.tokens.idf,
        token_kernel=head.tokens.kernel,
    )
    with pytest.raises(IncompatibleModel, match="not sorted"):
        read_head(unsorted, dim=DIM, n_labels=N_LABELS, token_features=settings)

    non_finite = tmp_path / "nan.npz"
    np.savez(
        non_finite,
        kernel=head.kernel,
        bias=head.bias,
        token_keys=head.tokens.keys,
        token_idf=head.tokens.idf,
        token_kernel=np.full_like(head.tokens.kernel, np.nan),
    )
    with pytest.raises(IncompatibleModel, match="non-finite"):
        read_head(non_finite, dim=DIM, n_labels=N_LABELS, token_features=settings)

    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, kernel=np.array([object()], dtype=object), bias=head.bias)
    with pytest.raises(IncompatibleModel, match="not a readable head"):
        read_head(pickled, dim=DIM, n_labels=N_LABELS)

    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(IncompatibleModel, match="not a readable head"):
        read_head(garbage, dim=DIM, n_labels=N_LABELS)


def test_artifact_json_token_features_only_for_heads_and_only_of_a_known_kind(tmp_path: Path) -> None:
    settings = TokenFeatures(vocab_size=VOCAB, max_ngram=1, n_features=5, weight=0.5)
    common = {"model_version": 1, "max_length": 32, "n_labels": N_LABELS, "cleaning_version": "1"}
    assert ArtifactInfo(architecture="head", encoder=REF, token_features=settings, **common).token_features
    with pytest.raises(ValueError, match="token_features"):
        ArtifactInfo(architecture="cnn", token_features=settings, **common)

    # An artifact whose token features this code does not know is refused, naming the field.
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    info = ArtifactInfo(architecture="head", encoder=REF, token_features=settings, **common)
    document = json.loads(info.model_dump_json())
    document["token_features"]["kind"] = "char-ngrams"
    (model_dir / ARTIFACT_FILE).write_text(json.dumps(document))
    with pytest.raises(IncompatibleModel, match=r"artifact.json is invalid \(fields: token_features.kind"):
        load_artifact(model_dir)


def _hidden(activation: str = "relu", members: int = 2, units: int = 6, seed: int = 1) -> HiddenLayerHead:
    rng = np.random.default_rng(seed)
    settings = HiddenLayerFeatures(
        activation=activation, members=members, hidden=units, weight=1.0, linear_weight=1.0
    )
    return HiddenLayerHead(
        settings,
        rng.normal(size=(members, DIM, units)).astype(np.float32),
        rng.normal(size=(members, units)).astype(np.float32),
        rng.normal(size=(members, units, N_LABELS)).astype(np.float32),
    )


@pytest.mark.parametrize("activation", ["relu", "gelu_tanh"])
def test_hidden_layer_logits_are_the_sum_of_the_networks_as_keras_computes_them(activation: str) -> None:
    import keras

    hidden = _hidden(activation)
    x = np.random.default_rng(2).normal(size=(5, DIM)).astype(np.float32)
    keras_activation = (
        "relu" if activation == "relu" else (lambda v: keras.activations.gelu(v, approximate=True))
    )
    expected = np.zeros((5, N_LABELS), dtype=np.float32)
    for member in range(2):
        model = keras.Sequential(
            [
                keras.Input((DIM,)),
                keras.layers.Dense(6, activation=keras_activation),
                keras.layers.Dense(N_LABELS),
            ]
        )
        model.set_weights(
            [
                hidden.kernel_1[member],
                hidden.bias_1[member],
                hidden.kernel_2[member],
                np.zeros(N_LABELS, np.float32),
            ]
        )
        expected += model.predict(x, verbose=0)
    np.testing.assert_allclose(hidden_layer_logits(hidden, x), expected, rtol=1e-5, atol=1e-5)
    head = Head(np.zeros((DIM, N_LABELS), np.float32), np.ones(N_LABELS, np.float32), None, hidden)
    np.testing.assert_allclose(head_logits(head, x), expected + 1.0, rtol=1e-5, atol=1e-5)


def test_gelu_tanh_is_keras_approximate_gelu() -> None:
    import keras

    x = np.linspace(-6, 6, 101, dtype=np.float32)
    np.testing.assert_allclose(
        gelu_tanh(x), np.asarray(keras.activations.gelu(x, approximate=True)), rtol=1e-5, atol=1e-6
    )


def test_a_head_with_a_hidden_layer_round_trips_and_is_refused_when_artifact_json_disagrees(
    tmp_path: Path,
) -> None:
    base = _head(n_features=20)
    head = Head(base.kernel, base.bias, base.tokens, _hidden())
    path = tmp_path / "head.npz"
    written = write_head(path, head)
    assert base.tokens is not None
    assert written.hidden is not None
    read = read_head(
        path, dim=DIM, n_labels=N_LABELS, token_features=base.tokens.settings, hidden_layer=_hidden().settings
    )
    assert read.hidden is not None
    np.testing.assert_array_equal(
        read.hidden.kernel_1, written.hidden.kernel_1
    )  # training scores what is stored
    np.testing.assert_allclose(read.hidden.kernel_1, head.hidden.kernel_1, rtol=1e-3, atol=1e-3)
    assert read.nbytes == head_nbytes(DIM, N_LABELS, base.tokens.settings, _hidden().settings)
    with np.load(path, allow_pickle=False) as arrays:
        assert arrays["mlp_kernel_1"].dtype == np.float16
    # Arrays artifact.json does not declare, arrays it declares that are missing, other shapes: refused.
    with pytest.raises(IncompatibleModel, match="does not declare"):
        read_head(path, dim=DIM, n_labels=N_LABELS, token_features=base.tokens.settings)
    write_head(tmp_path / "plain.npz", Head(base.kernel, base.bias))
    with pytest.raises(IncompatibleModel, match="lacks mlp_kernel_1"):
        read_head(tmp_path / "plain.npz", dim=DIM, n_labels=N_LABELS, hidden_layer=_hidden().settings)
    with pytest.raises(IncompatibleModel, match="hidden-layer arrays"):
        read_head(
            path,
            dim=DIM,
            n_labels=N_LABELS,
            token_features=base.tokens.settings,
            hidden_layer=_hidden(members=3).settings,
        )


def test_artifact_json_hidden_layer_only_for_heads() -> None:
    settings = _hidden().settings
    fields = {"model_version": 1, "max_length": 16, "n_labels": N_LABELS, "cleaning_version": "v"}
    assert (
        ArtifactInfo(architecture="head", encoder=REF, hidden_layer=settings, **fields).hidden_layer
        == settings
    )
    with pytest.raises(ValueError, match="hidden_layer only applies to a head"):
        ArtifactInfo(architecture="cnn", hidden_layer=settings, **fields)
