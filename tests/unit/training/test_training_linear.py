"""The ``linear`` architecture's TF-IDF layer against scikit-learn's TF-IDF, and its vocabulary."""

from __future__ import annotations

import numpy as np
import pytest

from convclass.artifacts import ATTENTION_MASK, INPUT_IDS
from convclass.errors import InsufficientData

pytest.importorskip("tensorflow")

VOCAB = 50


def _encoded(rows: list[list[int]], width: int) -> dict[str, np.ndarray]:
    ids = np.zeros((len(rows), width), dtype=np.int32)
    mask = np.zeros((len(rows), width), dtype=np.int32)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return {INPUT_IDS: ids, ATTENTION_MASK: mask}


def _decode(key: int) -> tuple[int, ...]:
    """Inverse of ngram_keys' numbering for n <= 3 (independent of the code under test)."""
    if key < VOCAB:
        return (key,)
    key -= VOCAB
    if key < VOCAB**2:
        return divmod(key, VOCAB)
    key -= VOCAB**2
    first, rest = divmod(key, VOCAB**2)
    return (first, *divmod(rest, VOCAB))


def _ngrams(row: list[int], max_n: int) -> list[str]:
    return [" ".join(map(str, row[i : i + n])) for n in range(1, max_n + 1) for i in range(len(row) - n + 1)]


ROWS = [[2, 7, 7, 9, 3], [2, 7, 9, 9, 9, 11, 3], [2, 11, 12, 3], [2, 7, 12, 12, 3], [2, 9, 3]]


@pytest.mark.parametrize("max_n", [1, 2, 3])
def test_features_equal_sklearns_sublinear_tfidf_over_token_ngrams(max_n: int) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    from convclass.training.linear import build_linear, fit_vocabulary, tfidf_matrix

    encoded = _encoded(ROWS, width=10)
    keys, idf = fit_vocabulary(encoded, vocab_size=VOCAB, max_n=max_n, max_features=10_000, min_df=1)
    _, features_model = build_linear(3, vocab_size=VOCAB, max_n=max_n, keys=keys, idf=idf)
    ours = tfidf_matrix(features_model, encoded).toarray()

    reference = TfidfVectorizer(analyzer=lambda row: _ngrams(row, max_n), sublinear_tf=True)
    expected = reference.fit_transform(ROWS).toarray()
    columns = [reference.vocabulary_[" ".join(map(str, _decode(int(k))))] for k in keys]
    assert len(keys) == len(reference.vocabulary_)
    np.testing.assert_allclose(ours, expected[:, columns], atol=1e-6)


def test_padding_and_trimming_do_not_change_the_features() -> None:
    from convclass.training.linear import build_linear, fit_vocabulary

    encoded = _encoded(ROWS, width=7)
    keys, idf = fit_vocabulary(encoded, vocab_size=VOCAB, max_n=2, max_features=100, min_df=1)
    _, features_model = build_linear(3, vocab_size=VOCAB, max_n=2, keys=keys, idf=idf)
    wide = _encoded(ROWS, width=16)
    np.testing.assert_allclose(
        np.asarray(features_model.predict_on_batch(encoded)),
        np.asarray(features_model.predict_on_batch(wide)),
        atol=1e-7,
    )
    # An n-gram never seen in training adds nothing; a text of unseen n-grams only is all zeros.
    unseen = _encoded([[40, 41, 42]], width=4)
    assert not np.asarray(features_model.predict_on_batch(unseen)).any()


def test_vocabulary_keeps_the_most_frequent_ngrams_seen_often_enough() -> None:
    from convclass.training.linear import fit_vocabulary

    encoded = _encoded(ROWS, width=10)
    keys, idf = fit_vocabulary(encoded, vocab_size=VOCAB, max_n=2, max_features=3, min_df=2)
    assert list(keys) == sorted(keys)
    assert len(keys) == 3
    # [CLS]=2 and [SEP]=3 are in every row; 7 is in three rows, 9 in three, the bigram "2 7" in three.
    assert {2, 3} <= {int(k) for k in keys}
    assert idf[list(keys).index(2)] == pytest.approx(1.0)  # ln((1 + 5) / (1 + 5)) + 1
    with pytest.raises(InsufficientData, match="no token n-gram"):
        fit_vocabulary(encoded, vocab_size=VOCAB, max_n=1, max_features=3, min_df=6)
