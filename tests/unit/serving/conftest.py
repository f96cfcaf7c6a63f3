"""A real EmailClassifier (real cleaning, real tokenizer) over a deterministic numpy model: no TensorFlow."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tokenizers import Tokenizer

from convclass.serving import EmailClassifier, create_app
from convclass.tokenization import train_tokenizer

# Helpers live beside this file; with --import-mode=importlib pytest does not put test folders on sys.path.
sys.path.insert(0, str(Path(__file__).parent))
from serving_fakes import CORPUS, LABELS, LIMITS, MAX_LENGTH, NumpyBackend


@pytest.fixture(scope="session")
def tokenizer() -> Tokenizer:
    return train_tokenizer(CORPUS, vocab_size=200, min_frequency=1)


@pytest.fixture
def backend(tokenizer: Tokenizer) -> NumpyBackend:
    return NumpyBackend(tokenizer.get_vocab_size(), len(LABELS))


@pytest.fixture
def classifier(tokenizer: Tokenizer, backend: NumpyBackend) -> EmailClassifier:
    return EmailClassifier(
        tokenizer=tokenizer,
        backend=backend,
        labels=LABELS,
        max_length=MAX_LENGTH,
        model_version="7",
        model_batch_size=3,
    )


@pytest.fixture
def client(classifier: EmailClassifier) -> Iterator[TestClient]:
    with TestClient(create_app(classifier, limits=LIMITS), raise_server_exceptions=False) as test_client:
        yield test_client
