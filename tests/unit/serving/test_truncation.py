"""Serving cuts a long email exactly as the model's training did: the artifact's max_chars and truncation."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

sys.path.insert(0, str(Path(__file__).parent))
from serving_fakes import LABELS, MAX_LENGTH, NumpyBackend

from convclass.artifacts import (
    ARTIFACT_FILE,
    LABELS_FILE,
    ArtifactInfo,
    LabelMap,
    saved_model_path,
    write_json_model,
)
from convclass.cleaning import CLEANING_VERSION, clean_email
from convclass.serving import EmailClassifier, InboundEmail
from convclass.serving.classifier import open_artifact
from convclass.tokenization import encode_texts, save_tokenizer

LONG_BODY = " ".join(["my card payment was declined at the shop"] * 8 + ["please refund my order"] * 8)


class RecordingBackend(NumpyBackend):
    def __init__(self, vocab_size: int, n_labels: int):
        super().__init__(vocab_size, n_labels)
        self.inputs: list[np.ndarray] = []

    def predict(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        self.inputs.append(input_ids.copy())
        return super().predict(input_ids, attention_mask)


def _artifact(root: Path, tokenizer: Tokenizer, truncation: str, max_chars: int) -> Path:
    info = ArtifactInfo.model_validate(
        {
            "model_version": 1,
            "architecture": "cnn",
            "max_length": MAX_LENGTH,
            "truncation": truncation,
            "max_chars": max_chars,
            "n_labels": len(LABELS),
            "cleaning_version": CLEANING_VERSION,
        }
    )
    write_json_model(root / ARTIFACT_FILE, info)
    write_json_model(root / LABELS_FILE, LabelMap(labels=LABELS))
    save_tokenizer(tokenizer, root)
    # The numpy backend stands in for the SavedModel; the file only completes the artifact's layout.
    saved_model_path(root, 1).mkdir(parents=True)
    (saved_model_path(root, 1) / "saved_model.pb").write_bytes(b"")
    return root


@pytest.mark.parametrize("truncation", ["head", "head_tail"])
def test_serving_cuts_long_emails_as_the_artifact_records(
    tmp_path: Path, tokenizer: Tokenizer, truncation: str
) -> None:
    artifact = open_artifact(_artifact(tmp_path, tokenizer, truncation, max_chars=400))
    backend = RecordingBackend(tokenizer.get_vocab_size(), len(LABELS))
    classifier = EmailClassifier.from_artifact(artifact, backend)
    [prediction] = classifier.classify([InboundEmail(body=LONG_BODY, content_type="text/plain")])

    cleaned = clean_email(None, LONG_BODY, "text/plain", max_chars=400)
    assert len(cleaned.text) <= 400 < len(LONG_BODY)
    assert "truncated" in prediction.warnings
    expected = encode_texts(tokenizer, [cleaned.text], MAX_LENGTH, truncation)  # type: ignore[arg-type]
    other = encode_texts(
        tokenizer, [cleaned.text], MAX_LENGTH, "head" if truncation != "head" else "head_tail"
    )
    [sent] = backend.inputs
    np.testing.assert_array_equal(sent, expected["input_ids"][:, : sent.shape[1]])
    assert not np.array_equal(sent, other["input_ids"][:, : sent.shape[1]])


def test_artifacts_without_the_fields_serve_as_before(tmp_path: Path, tokenizer: Tokenizer) -> None:
    root = _artifact(tmp_path, tokenizer, "head", max_chars=4000)
    document = (root / ARTIFACT_FILE).read_text().replace('"truncation": "head",', "")
    (root / ARTIFACT_FILE).write_text(document.replace('"max_chars": 4000,', ""))
    info = open_artifact(root).info
    assert (info.truncation, info.max_chars) == ("head", 4000)
