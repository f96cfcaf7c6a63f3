"""Test doubles for serving tests: a deterministic numpy model that can be made to fail, and SageMaker
endpoints served by the real serving app over that model (for workflow tests)."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from fastapi.testclient import TestClient

from convclass.errors import ModelFailure
from convclass.serving import EmailClassifier, ServingLimits, create_app
from convclass.tokenization import train_tokenizer
from convclass_local import moto_shims

LABELS = ("card_declined", "refund_request", "lost_card", "change_address")
MAX_LENGTH = 24
LIMITS = ServingLimits(max_batch_emails=4, max_request_bytes=16_000, max_email_bytes=2_000, top_k=3)
CORPUS = [
    "my card payment was declined at the shop",
    "please refund my order, the item never arrived",
    "i lost my card yesterday, please block it",
    "i moved and need to change my address",
    "why was my card declined again today",
    "refund the duplicate charge please",
] * 4


class NumpyBackend:
    """Mean of per-token logits, softmaxed: deterministic, batch-independent, and it can be made to fail."""

    def __init__(self, vocab_size: int, n_labels: int):
        self.weights = np.random.default_rng(7).normal(size=(vocab_size, n_labels)).astype(np.float32)
        self.failure: Exception | None = None
        self.bad_shape = False
        self.is_healthy = True
        self.calls: list[int] = []

    def predict(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        self.calls.append(input_ids.shape[0])
        if self.failure is not None:
            raise self.failure
        mask = attention_mask[..., None].astype(np.float32)
        logits = (self.weights[input_ids] * mask).sum(axis=1) / mask.sum(axis=1)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs = (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)
        return probs[:, :-1] if self.bad_shape else probs

    def healthy(self) -> bool:
        return self.is_healthy

    def close(self) -> None:
        pass


def numpy_classifier(model_version: str = "7") -> tuple[EmailClassifier, NumpyBackend]:
    """A real EmailClassifier (real cleaning and tokenizer) over the numpy model, and that model."""
    tokenizer = train_tokenizer(CORPUS, vocab_size=200, min_frequency=1)
    backend = NumpyBackend(tokenizer.get_vocab_size(), len(LABELS))
    classifier = EmailClassifier(
        tokenizer=tokenizer,
        backend=backend,
        labels=LABELS,
        max_length=MAX_LENGTH,
        model_version=model_version,
        model_batch_size=3,
    )
    return classifier, backend


def shared_name(endpoint: str, target_model: str | None) -> str:
    """Key of one model in ``ServingEndpoints``: the endpoint, plus the target model on a shared one."""
    return endpoint if target_model is None else f"{endpoint}#{target_model}"


@dataclass
class ServingEndpoints:
    """SageMaker endpoints backed by the real serving app in process (one app per endpoint name).

    A fault is a sagemaker-runtime error code (``ModelNotReadyException``, ``ThrottlingException``, …)
    answered before any container sees the request, or ``CONTAINER_FAILURE`` (the model fails, so the serving
    app itself answers 500). ``fail_next`` queues faults for the next invocations, whatever the endpoint;
    ``broken`` maps an endpoint to the fault it answers every time. Install ``invoke`` as the engine's
    ``invoke_endpoint`` hook. A multi-model endpoint's models are added as ``shared_name(endpoint, target)``:
    a request reaches one only with that ``TargetModel``.
    """

    limits: ServingLimits = LIMITS
    apps: dict[str, tuple[TestClient, NumpyBackend]] = field(default_factory=dict)
    faults: deque[str] = field(default_factory=deque)
    broken: dict[str, str] = field(default_factory=dict)
    invocations: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, endpoint_name: str, model_version: str = "7") -> NumpyBackend:
        classifier, backend = numpy_classifier(model_version)
        client = TestClient(create_app(classifier, limits=self.limits), raise_server_exceptions=False)
        client.__enter__()
        self.apps[endpoint_name] = (client, backend)
        return backend

    def fail_next(self, *faults: str) -> None:
        with self._lock:
            self.faults.extend(faults)

    def close(self) -> None:
        for client, _ in self.apps.values():
            client.__exit__(None, None, None)
        self.apps.clear()

    def invoke(self, request: moto_shims.EndpointRequest) -> moto_shims.EndpointReply:
        with self._lock:
            self.invocations += 1
            fault = self.faults.popleft() if self.faults else self.broken.get(request.endpoint_name)
            name = shared_name(request.endpoint_name, request.target_model)
            if name not in self.apps:
                message = f"Endpoint {request.endpoint_name} of account 123456789012 has no such model."
                raise moto_shims.EndpointError("ValidationError", message, 400)
            client, backend = self.apps[name]
            if fault is not None and fault != CONTAINER_FAILURE:
                raise moto_shims.EndpointError(fault, f"injected {fault}", RUNTIME_FAULT_STATUS[fault])
            backend.failure = ModelFailure("injected model failure") if fault == CONTAINER_FAILURE else None
            try:
                response = client.post(
                    "/invocations",
                    content=request.body,
                    headers={"Content-Type": request.content_type, "Accept": request.accept},
                )
            finally:
                backend.failure = None
        content_type = response.headers.get("content-type", "application/json")
        return moto_shims.container_answer(response.status_code, response.content, content_type)


#: The model fails inside the serving app (500 ModelFailure; SageMaker reports a server ModelError).
CONTAINER_FAILURE = "container-failure"
#: HTTP status sagemaker-runtime answers with for each error code a test injects.
RUNTIME_FAULT_STATUS = {
    "ModelNotReadyException": 429,
    "ServiceUnavailable": 503,
    "InternalFailure": 500,
    "InternalDependencyException": 530,
    "ThrottlingException": 400,
}
