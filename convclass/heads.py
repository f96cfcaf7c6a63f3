"""A ``head`` artifact's weights and its logits: the one definition training and serving both use.

A head classifies an email from what the shared encoder gives every tenant's head: the pooled embedding of
the email and the encoder's token ids (``input_ids``/``attention_mask``, already computed for the encoder
pass). Its logits are::

    logits = embedding @ kernel + bias + weight * (tfidf(tokens) @ token_kernel)
             + sum over members m of relu(embedding @ mlp_kernel_1[m] + mlp_bias_1[m]) @ mlp_kernel_2[m]

The second term (``token_features`` in artifact.json, absent for an embedding-only head) reads token
n-grams (n = 1..``max_ngram``) of the encoder's WordPiece ids: an n-gram of ids ``t_1..t_n`` is the int64 key
``offset_n + sum(t_i * V ** (n - i))`` (``V`` the encoder's vocabulary size, ``offset_n`` the number of keys
of shorter n-grams), the vocabulary is ``token_keys`` (sorted, a few thousand keys) and a text's feature is
``(1 + log count) * idf``, L2-normalised (scikit-learn's ``TfidfVectorizer`` with ``sublinear_tf=True``, over
token n-grams). Rare labels with distinctive words are where it helps: the frozen sentence embedding blurs
them, the tokens do not.

The third term (``hidden_layer`` in artifact.json, absent for an embedding-only head) is a small bag of
one-hidden-layer ReLU networks on the embedding: where labels are not linearly separable in the embedding,
validation prefers it to (or beside) the linear kernel. Training folds the blend weights, the bag's mean and
the networks' output biases into ``mlp_kernel_2`` and ``bias``; a head that validation gave no linear part
has a zero ``kernel``.

``head.npz`` (read with ``allow_pickle=False``)::

    kernel        float32 [encoder.dim, n_labels]    bias  float32 [n_labels]
    token_keys    int64   [n_features]  sorted       token_idf  float32 [n_features]   (token_features only)
    token_kernel  float16 [n_features, n_labels]     (float16 keeps the file a few hundred KB; training
                                                      scores the rounded weights it writes, so serving's
                                                      figures are training's)
    mlp_kernel_1  float16 [members, encoder.dim, hidden]   mlp_bias_1  float32 [members, hidden]
    mlp_kernel_2  float16 [members, hidden, n_labels]                  (hidden_layer only)

The module needs numpy only: the API-only serving image imports it without TensorFlow or scipy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from convclass.artifacts import HiddenLayerFeatures, TokenFeatures
from convclass.errors import IncompatibleModel

FloatMatrix = NDArray[np.float32]
#: Stored precision of ``token_kernel`` (the largest array of a head with token features).
TOKEN_KERNEL_DTYPE = np.float16
EMBEDDING_ARRAYS = ("kernel", "bias")
TOKEN_ARRAYS = ("token_keys", "token_idf", "token_kernel")
#: Stored precision of the hidden-layer networks' kernels (read back as float32).
HIDDEN_KERNEL_DTYPE = np.float16
HIDDEN_ARRAYS = ("mlp_kernel_1", "mlp_bias_1", "mlp_kernel_2")


@dataclass(frozen=True)
class TokenHead:
    """The token TF-IDF part of a head: vocabulary (sorted n-gram keys), idf and per-label weights."""

    settings: TokenFeatures
    keys: NDArray[np.int64]
    idf: FloatMatrix
    kernel: FloatMatrix

    @property
    def nbytes(self) -> int:
        return int(self.keys.nbytes + self.idf.nbytes + self.kernel.nbytes)

    def as_stored(self) -> TokenHead:
        """These features as ``write_head`` stores them (``token_kernel`` rounded)."""
        rounded = self.kernel.astype(TOKEN_KERNEL_DTYPE).astype(np.float32)
        return TokenHead(self.settings, self.keys, self.idf, rounded)


@dataclass(frozen=True)
class HiddenLayerHead:
    """The hidden-layer part of a head: ``members`` ReLU networks, output weights already scaled."""

    settings: HiddenLayerFeatures
    kernel_1: FloatMatrix  # [members, dim, hidden]
    bias_1: FloatMatrix  # [members, hidden]
    kernel_2: FloatMatrix  # [members, hidden, n_labels]

    @property
    def nbytes(self) -> int:
        return int(self.kernel_1.nbytes + self.bias_1.nbytes + self.kernel_2.nbytes)

    def as_stored(self) -> HiddenLayerHead:
        """These networks as ``write_head`` stores them (kernels rounded)."""
        return HiddenLayerHead(
            self.settings,
            self.kernel_1.astype(HIDDEN_KERNEL_DTYPE).astype(np.float32),
            self.bias_1.astype(np.float32),
            self.kernel_2.astype(HIDDEN_KERNEL_DTYPE).astype(np.float32),
        )


@dataclass(frozen=True)
class Head:
    """A head's weights as serving and training use them (``read_head`` / ``write_head``)."""

    kernel: FloatMatrix
    bias: FloatMatrix
    tokens: TokenHead | None = None
    hidden: HiddenLayerHead | None = None

    @property
    def nbytes(self) -> int:
        parts = (self.tokens, self.hidden)
        return int(self.kernel.nbytes + self.bias.nbytes + sum(p.nbytes for p in parts if p is not None))


def head_nbytes(
    dim: int,
    n_labels: int,
    token_features: TokenFeatures | None,
    hidden_layer: HiddenLayerFeatures | None = None,
) -> int:
    """Bytes a head's arrays hold once read (``Head.nbytes``), from artifact.json alone."""
    size = 4 * (dim + 1) * n_labels
    if token_features is not None:
        size += token_features.n_features * (8 + 4 + 4 * n_labels)
    if hidden_layer is not None:
        size += 4 * hidden_layer.members * hidden_layer.hidden * (dim + 1 + n_labels)
    return size


def ngram_keys(
    input_ids: NDArray[np.integer], attention_mask: NDArray[np.integer], vocab_size: int, max_n: int
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """All n-grams (n = 1..max_n) of each row as int64 keys [batch, positions], and which ones are real.

    The same keys as ``convclass.training.linear.ngram_keys`` (the TensorFlow version), in numpy.
    """
    ids = np.asarray(input_ids, dtype=np.int64)
    mask = np.asarray(attention_mask).astype(bool)
    keys, valid = [ids], [mask]
    offset, span = 0, 1
    gram, gram_valid = ids, mask
    for n in range(2, max_n + 1):
        offset += span * vocab_size
        span *= vocab_size
        gram = gram[:, :-1] * vocab_size + ids[:, n - 1 :]
        gram_valid = gram_valid[:, :-1] & mask[:, n - 1 :]
        keys.append(gram + offset)
        valid.append(gram_valid)
    return np.concatenate(keys, axis=1), np.concatenate(valid, axis=1)


def tfidf_entries(
    input_ids: NDArray[np.integer],
    attention_mask: NDArray[np.integer],
    settings: TokenFeatures,
    keys: NDArray[np.int64],
    idf: FloatMatrix,
) -> tuple[NDArray[np.int64], NDArray[np.int64], FloatMatrix]:
    """The non-zero TF-IDF features of every row as (row, feature, value), rows L2-normalised."""
    grams, valid = ngram_keys(input_ids, attention_mask, settings.vocab_size, settings.max_ngram)
    rows = np.broadcast_to(np.arange(grams.shape[0], dtype=np.int64)[:, None], grams.shape)[valid]
    flat = grams[valid]
    if not len(keys):
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.float32)
    position = np.minimum(np.searchsorted(keys, flat), len(keys) - 1)
    found = keys[position] == flat
    cell, counts = np.unique(rows[found] * len(keys) + position[found], return_counts=True)
    row, feature = cell // len(keys), cell % len(keys)
    values = ((1.0 + np.log(counts)) * idf[feature]).astype(np.float32)
    norms = np.sqrt(np.bincount(row, weights=values.astype(np.float64) ** 2, minlength=grams.shape[0]))
    values = (values / np.maximum(norms[row], 1e-12)).astype(np.float32)
    return row, feature, values


def token_logits(
    tokens: TokenHead, input_ids: NDArray[np.integer], attention_mask: NDArray[np.integer]
) -> FloatMatrix:
    """``tfidf(tokens) @ token_kernel`` (no weight, no bias) [batch, n_labels]."""
    row, feature, values = tfidf_entries(input_ids, attention_mask, tokens.settings, tokens.keys, tokens.idf)
    logits = np.zeros((len(input_ids), tokens.kernel.shape[1]), dtype=np.float32)
    np.add.at(logits, row, values[:, None] * tokens.kernel[feature])
    return logits


def gelu_tanh(x: FloatMatrix) -> FloatMatrix:
    """GELU's tanh approximation, as ``keras.activations.gelu(x, approximate=True)`` computes it."""
    result: FloatMatrix = (0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))).astype(
        np.float32, copy=False
    )
    return result


def hidden_layer_logits(hidden: HiddenLayerHead, embeddings: FloatMatrix) -> FloatMatrix:
    """``sum_m act(embeddings @ kernel_1[m] + bias_1[m]) @ kernel_2[m]`` [batch, n_labels]."""
    pre_activations = np.matmul(embeddings, hidden.kernel_1) + hidden.bias_1[:, None, :]
    if hidden.settings.activation == "relu":
        activations = np.maximum(pre_activations, 0.0)
    else:
        activations = gelu_tanh(pre_activations)
    logits: FloatMatrix = np.matmul(activations, hidden.kernel_2).sum(axis=0).astype(np.float32, copy=False)
    return logits


def head_logits(
    head: Head,
    embeddings: FloatMatrix,
    input_ids: NDArray[np.integer] | None = None,
    attention_mask: NDArray[np.integer] | None = None,
) -> FloatMatrix:
    """The head's logits; the token ids are needed exactly when the head has token features."""
    logits: FloatMatrix = (embeddings @ head.kernel + head.bias).astype(np.float32, copy=False)
    if head.hidden is not None:
        logits = logits + hidden_layer_logits(head.hidden, embeddings)
    if head.tokens is not None:
        if input_ids is None or attention_mask is None:
            raise ValueError("this head reads token features: pass input_ids and attention_mask")
        logits = logits + np.float32(head.tokens.settings.weight) * token_logits(
            head.tokens, input_ids, attention_mask
        )
    return logits


def softmax(logits: FloatMatrix) -> FloatMatrix:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    result: FloatMatrix = (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32, copy=False)
    return result


def head_probabilities(
    head: Head,
    embeddings: FloatMatrix,
    input_ids: NDArray[np.integer] | None = None,
    attention_mask: NDArray[np.integer] | None = None,
) -> FloatMatrix:
    return softmax(head_logits(head, embeddings, input_ids, attention_mask))


def stored(head: Head) -> Head:
    """``head`` as ``write_head`` stores it (float16 kernels rounded): what training must score."""
    if head.tokens is None and head.hidden is None:
        return head
    return Head(
        head.kernel,
        head.bias,
        head.tokens.as_stored() if head.tokens else None,
        head.hidden.as_stored() if head.hidden else None,
    )


def write_head(path: Path, head: Head) -> Head:
    """Write ``head.npz`` (no pickle); returns the head as stored (see ``stored``)."""
    arrays: dict[str, Any] = {
        "kernel": np.asarray(head.kernel, dtype=np.float32),
        "bias": np.asarray(head.bias, dtype=np.float32),
    }
    if head.tokens is not None:
        arrays.update(
            token_keys=np.asarray(head.tokens.keys, dtype=np.int64),
            token_idf=np.asarray(head.tokens.idf, dtype=np.float32),
            token_kernel=np.asarray(head.tokens.kernel, dtype=TOKEN_KERNEL_DTYPE),
        )
    if head.hidden is not None:
        arrays.update(
            mlp_kernel_1=np.asarray(head.hidden.kernel_1, dtype=HIDDEN_KERNEL_DTYPE),
            mlp_bias_1=np.asarray(head.hidden.bias_1, dtype=np.float32),
            mlp_kernel_2=np.asarray(head.hidden.kernel_2, dtype=HIDDEN_KERNEL_DTYPE),
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        np.savez_compressed(handle, **arrays)
    return stored(head)


def read_head(
    path: Path,
    *,
    dim: int,
    n_labels: int,
    token_features: TokenFeatures | None = None,
    hidden_layer: HiddenLayerFeatures | None = None,
) -> Head:
    """Read ``head.npz`` without pickle and check it against artifact.json; ``IncompatibleModel`` otherwise.

    ``token_features`` and ``hidden_layer`` (artifact.json) say whether the head has token and hidden-layer
    arrays: a file whose arrays do not match what artifact.json declares is refused, never served with a part
    left out.
    """
    expected = (
        EMBEDDING_ARRAYS
        + (TOKEN_ARRAYS if token_features is not None else ())
        + (HIDDEN_ARRAYS if hidden_layer is not None else ())
    )
    try:
        with np.load(path, allow_pickle=False) as arrays:
            names = set(arrays.files)
            missing = [name for name in expected if name not in names]
            if missing:
                raise IncompatibleModel(f"{path.name} lacks {', '.join(missing)}")
            unknown = sorted(names - set(expected))
            if unknown:
                raise IncompatibleModel(f"{path.name} holds arrays artifact.json does not declare: {unknown}")
            loaded = {name: np.asarray(arrays[name]) for name in expected}
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise IncompatibleModel(f"{path.name} is not a readable head ({type(exc).__name__})") from exc
    kernel = loaded["kernel"].astype(np.float32, copy=False)
    bias = loaded["bias"].astype(np.float32, copy=False)
    if kernel.shape != (dim, n_labels) or bias.shape != (n_labels,):
        raise IncompatibleModel(
            f"{path.name} holds kernel {kernel.shape} and bias {bias.shape}; expected ({dim}, {n_labels})"
        )
    tokens = None
    if token_features is not None:
        keys, idf, token_kernel = (loaded[name] for name in TOKEN_ARRAYS)
        n = token_features.n_features
        if (
            keys.dtype != np.int64
            or keys.shape != (n,)
            or idf.shape != (n,)
            or token_kernel.shape != (n, n_labels)
        ):
            raise IncompatibleModel(
                f"{path.name} holds token arrays {keys.shape}/{idf.shape}/{token_kernel.shape}; "
                f"expected ({n},)/({n},)/({n}, {n_labels}) int64/float/float"
            )
        if n and (np.any(np.diff(keys) <= 0) or keys[0] < 0):
            raise IncompatibleModel(f"{path.name} token_keys are not sorted, unique, non-negative keys")
        tokens = TokenHead(
            token_features,
            keys,
            idf.astype(np.float32, copy=False),
            token_kernel.astype(np.float32),
        )
        if not (np.isfinite(tokens.idf).all() and np.isfinite(tokens.kernel).all()):
            raise IncompatibleModel(f"{path.name} holds non-finite weights")
    hidden = None
    if hidden_layer is not None:
        kernel_1, bias_1, kernel_2 = (loaded[name].astype(np.float32) for name in HIDDEN_ARRAYS)
        m, h = hidden_layer.members, hidden_layer.hidden
        if kernel_1.shape != (m, dim, h) or bias_1.shape != (m, h) or kernel_2.shape != (m, h, n_labels):
            raise IncompatibleModel(
                f"{path.name} holds hidden-layer arrays {kernel_1.shape}/{bias_1.shape}/{kernel_2.shape}; "
                f"expected ({m}, {dim}, {h})/({m}, {h})/({m}, {h}, {n_labels})"
            )
        if not all(np.isfinite(array).all() for array in (kernel_1, bias_1, kernel_2)):
            raise IncompatibleModel(f"{path.name} holds non-finite weights")
        hidden = HiddenLayerHead(hidden_layer, kernel_1, bias_1, kernel_2)
    if not (np.isfinite(kernel).all() and np.isfinite(bias).all()):
        raise IncompatibleModel(f"{path.name} holds non-finite weights")
    return Head(kernel, bias, tokens, hidden)
