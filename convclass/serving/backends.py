"""Model backends: where the SavedModel's ``serving_default`` signature runs.

* ``InProcessBackend`` loads the SavedModel with TensorFlow inside the API process (local runs, tests,
  benchmarks).
* ``TFServingRestBackend`` calls ``tensorflow_model_server``'s REST predict API on localhost (the serving
  image), so the API process never imports TensorFlow.

Both take the encoded batch and return the probabilities matrix; everything before (cleaning, tokenization)
and after (top-k) is shared, so the two backends answer identically for the same model.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Protocol

import httpx
import numpy as np
from numpy.typing import NDArray

from convclass.artifacts import ATTENTION_MASK, INPUT_IDS, OUTPUT_NAME, SIGNATURE_NAME
from convclass.errors import ModelFailure
from convclass.heads import Head, head_probabilities

IntMatrix = NDArray[np.int32]
FloatMatrix = NDArray[np.float32]


class ModelBackend(Protocol):
    def predict(self, input_ids: IntMatrix, attention_mask: IntMatrix) -> FloatMatrix:
        """Return ``probabilities`` [batch, n_labels]; raise ``ModelFailure`` if the model does not answer."""
        ...

    def healthy(self) -> bool:
        """Cheap liveness check used by ``GET /ping`` after the model has answered once."""
        ...

    def close(self) -> None: ...


#: Environment variables the serving CLI reads for TensorFlow's thread pools (``--tf-intra-op-threads`` …).
INTRA_OP_THREADS_ENV = "CONVCLASS_TF_INTRA_OP_THREADS"
INTER_OP_THREADS_ENV = "CONVCLASS_TF_INTER_OP_THREADS"


def set_tensorflow_threads(
    intra_op: int | None = None, inter_op: int | None = None, *, tf: Any = None
) -> None:
    """Size TensorFlow's thread pools for the in-process backend; None leaves TensorFlow's default (one
    thread per core).

    ``intra_op`` is how many threads one op (a matmul) is split across. One request's encoder pass on a
    short email is a few milliseconds of small matmuls: split across the cores of a small, shared machine
    it waits for the slowest thread, so one thread per op answers sooner under load, and concurrent requests
    (the server classifies them in a thread pool) still use every core. A long email or a large batch on an
    otherwise idle machine is faster with more. The MiniLM encoder's embeddings came out bitwise the same with
    1, 2 and the default number of threads (Banking77 queries singly, a batch of 64, 512-token inputs).

    Must run before TensorFlow runs its first op (the serving CLI calls it before any model is loaded);
    afterwards the pools are fixed and asking for a different size raises ``ValueError``.
    """
    for name, value in (("intra_op", intra_op), ("inter_op", inter_op)):
        if value is not None and value < 1:
            raise ValueError(f"{name} threads must be at least 1, not {value}")
    if intra_op is None and inter_op is None:
        return
    if tf is None:
        import tensorflow

        tf = tensorflow
    threading = tf.config.threading
    for value, get, put in (
        (intra_op, threading.get_intra_op_parallelism_threads, threading.set_intra_op_parallelism_threads),
        (inter_op, threading.get_inter_op_parallelism_threads, threading.set_inter_op_parallelism_threads),
    ):
        if value is None or get() == value:
            continue
        try:
            put(value)
        except RuntimeError as exc:  # TensorFlow's runtime is already up: its pools cannot be resized
            raise ValueError(
                f"TensorFlow's thread pools are already running ({exc}): set them before loading a model"
            ) from exc


class InProcessBackend:
    """The SavedModel's serving function called directly (Keras ``predict`` would add ~40 ms per call)."""

    def __init__(self, saved_model_dir: Path, *, signature: str = SIGNATURE_NAME, output: str = OUTPUT_NAME):
        import tensorflow as tf  # the API-only serving image never reaches this import

        self._tf = tf
        # Keep the loaded object: the signature function only holds weak references to its variables.
        self._loaded = tf.saved_model.load(str(saved_model_dir))
        try:
            self._fn = self._loaded.signatures[signature]
        except KeyError:
            raise ModelFailure(f"SavedModel has no signature {signature!r}") from None
        self._output = output

    def predict(self, input_ids: IntMatrix, attention_mask: IntMatrix) -> FloatMatrix:
        tf = self._tf
        outputs = self._fn(
            **{
                INPUT_IDS: tf.constant(input_ids, tf.int32),
                ATTENTION_MASK: tf.constant(attention_mask, tf.int32),
            }
        )
        if self._output not in outputs:
            raise ModelFailure(f"SavedModel signature has no output {self._output!r}")
        result: FloatMatrix = outputs[self._output].numpy().astype(np.float32, copy=False)
        return result

    def healthy(self) -> bool:
        return True

    def close(self) -> None:
        self._fn = None
        self._loaded = None


class TFServingRestBackend:
    """TF Serving's REST predict API (columnar ``inputs`` format), pinned to the artifact's model version.

    Pinning the version guarantees the answering model is the one whose tokenizer and labels were loaded.
    """

    def __init__(
        self,
        base_url: str,
        model_name: str,
        model_version: int,
        *,
        signature: str = SIGNATURE_NAME,
        output: str = OUTPUT_NAME,
        timeout_s: float = 30.0,
    ):
        self._status_url = f"/v1/models/{model_name}/versions/{model_version}"
        self._predict_url = f"{self._status_url}:predict"
        self._version = str(model_version)
        self._signature = signature
        self._output = output
        self._client = httpx.Client(base_url=base_url, timeout=timeout_s)

    def wait_until_available(self, timeout_s: float, *, poll_s: float = 0.5) -> None:
        """Block until TF Serving reports the model version AVAILABLE (it loads models in the background)."""
        deadline = time.monotonic() + timeout_s
        while not self._available():
            if time.monotonic() >= deadline:
                raise ModelFailure(f"TF Serving did not make model version {self._version} available")
            time.sleep(poll_s)

    def _available(self) -> bool:
        return self.state() == "AVAILABLE"

    def state(self) -> str | None:
        """TF Serving's state of the pinned version (``LOADING``, ``AVAILABLE``, ``END``…), else None."""
        try:
            response = self._client.get(self._status_url, timeout=5.0)
            if response.status_code != 200:
                return None
            statuses = response.json().get("model_version_status", [])
            states = [str(s.get("state")) for s in statuses if s.get("version") == self._version]
        except (httpx.HTTPError, ValueError, AttributeError):
            return None
        return states[0] if states else None

    def healthy(self) -> bool:
        return self._available()

    def predict(self, input_ids: IntMatrix, attention_mask: IntMatrix) -> FloatMatrix:
        payload = {
            "signature_name": self._signature,
            "inputs": {INPUT_IDS: input_ids.tolist(), ATTENTION_MASK: attention_mask.tolist()},
        }
        try:
            response = self._client.post(
                self._predict_url,
                content=json.dumps(payload, separators=(",", ":")),
                headers={"content-type": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise ModelFailure(f"TF Serving unreachable: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise ModelFailure(f"TF Serving answered HTTP {response.status_code}")
        try:
            outputs = _select_output(response.json(), self._output)
            result = np.asarray(outputs, dtype=np.float32)
        except (ValueError, TypeError, KeyError) as exc:
            raise ModelFailure("TF Serving answered an unreadable predict response") from exc
        if result.ndim != 2 or result.shape[0] != input_ids.shape[0]:
            raise ModelFailure(f"TF Serving returned shape {result.shape} for {input_ids.shape[0]} inputs")
        return result

    def close(self) -> None:
        self._client.close()


def _select_output(document: Any, output: str) -> Any:
    # Columnar answers: {"outputs": [...]} for a one-output signature, {"outputs": {name: [...]}} otherwise.
    outputs = document["outputs"]
    if isinstance(outputs, dict):
        return outputs[output]
    return outputs


class HeadBackend:
    """A tenant's classification head over the shared encoder (``convclass.heads.head_probabilities``).

    The encoder is shared by every head on the server; a head holds a few small arrays, so loading one is a
    file read. A head with token features also reads the encoder's token ids, which the encoder pass took
    anyway. ``close`` leaves the encoder alone: it belongs to the server, not to the head.
    """

    def __init__(self, encoder: ModelBackend, head: Head):
        self._encoder = encoder
        self._head = head

    @property
    def nbytes(self) -> int:
        return self._head.nbytes

    def predict(self, input_ids: IntMatrix, attention_mask: IntMatrix) -> FloatMatrix:
        embeddings = self._encoder.predict(input_ids, attention_mask)
        if embeddings.ndim != 2 or embeddings.shape[1] != self._head.kernel.shape[0]:
            raise ModelFailure(
                f"encoder returned shape {embeddings.shape}, the head reads {self._head.kernel.shape[0]}"
            )
        return head_probabilities(self._head, embeddings, input_ids, attention_mask)

    def healthy(self) -> bool:
        return self._encoder.healthy()

    def close(self) -> None:
        pass
