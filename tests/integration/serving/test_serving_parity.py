"""Parity: the token ids a model sees in production equal the ones it was trained on.

The same generated emails go through the preprocessing path (``build_dataset``: export Parquet → cleaned,
tokenized splits) and through the serving path (JSON over HTTP → ``/invocations`` → the ids handed to the
model backend); every email in the dataset must reach the model as exactly the same ids.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from convclass.dataset import SPLIT_FILES, BuildOptions, build_dataset
from convclass.serving import EmailClassifier, ServingLimits, create_app
from convclass.tokenization import load_tokenizer
from convclass_local.generator import generate_emails, write_parquet

MAX_LENGTH = 48


class RecordingBackend:
    """Keeps every row of ids it is asked to classify; answers a uniform distribution."""

    def __init__(self, n_labels: int):
        self.n_labels = n_labels
        self.rows: list[np.ndarray] = []
        self.masks: list[np.ndarray] = []

    def predict(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        self.rows.extend(input_ids.copy())
        self.masks.extend(attention_mask.copy())
        return np.full((input_ids.shape[0], self.n_labels), 1 / self.n_labels, dtype=np.float32)

    def healthy(self) -> bool:
        return True

    def close(self) -> None:
        pass


def test_serving_encodes_generated_emails_exactly_like_preprocessing(tmp_path: Path) -> None:
    emails = generate_emails(240, seed=5)
    export = tmp_path / "part-00000.parquet"
    write_parquet(emails, export)
    dataset = tmp_path / "dataset"
    build_dataset(
        [export], dataset, BuildOptions(label_field="intent", max_length=MAX_LENGTH, vocab_size=600)
    )
    trained: dict[str, tuple[list[int], list[int]]] = {}
    for split_file in SPLIT_FILES.values():
        for row in pq.read_table(dataset / split_file).to_pylist():
            trained[row["conversation_id"]] = (row["input_ids"], row["attention_mask"])
    assert len(trained) > 150  # duplicates and empty texts are dropped, the rest is compared

    labels = sorted({e["labels"]["intent"] for e in emails})
    backend = RecordingBackend(len(labels))
    classifier = EmailClassifier(
        tokenizer=load_tokenizer(dataset),
        backend=backend,
        labels=labels,
        max_length=MAX_LENGTH,
        model_version="1",
    )
    by_id = {e["conversation_id"]: e for e in emails}
    ids = sorted(trained)
    with TestClient(create_app(classifier, limits=ServingLimits(max_batch_emails=32))) as client:
        for start in range(0, len(ids), 32):
            chunk = [by_id[i] for i in ids[start : start + 32]]
            request = {
                "emails": [
                    {
                        "id": e["conversation_id"],
                        "subject": e["subject"],
                        "body": e["body"],
                        "body_content_type": e["body_content_type"],
                    }
                    for e in chunk
                ]
            }
            response = client.post(
                "/invocations", content=json.dumps(request), headers={"content-type": "application/json"}
            )
            assert response.status_code == 200
    assert len(backend.rows) == len(ids)
    mismatched = [
        conversation_id
        for conversation_id, served_ids, served_mask in zip(ids, backend.rows, backend.masks, strict=True)
        if served_ids.tolist() != trained[conversation_id][0]
        or served_mask.tolist() != trained[conversation_id][1]
    ]
    assert mismatched == []
    # The comparison is not vacuous: emails differ from each other and use real vocabulary.
    assert len({tuple(row) for row in backend.rows}) > len(ids) // 2
    assert all(row[1] != 0 for row in backend.rows)
