"""Test doubles for serving unit tests: a deterministic numpy model that can be made to fail."""

from __future__ import annotations

import numpy as np

from convclass.serving import ServingLimits

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
