"""The typed core of serving: emails in, top-k labels out, prepared exactly as training prepared them.

Cleaning, PII masking and tokenization are imported from the modules the preprocessing step runs
(``convclass.cleaning``, ``convclass.tokenization.encode_texts``), and the artifact records the cleaning
version it was trained with: a model trained on differently cleaned text is refused before it answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from tokenizers import Tokenizer

from convclass.artifacts import (
    EMBEDDINGS_OUTPUT,
    Confidence,
    EncoderManifest,
    ModelArtifact,
    load_artifact,
    read_encoder_manifest,
    saved_model_path,
)
from convclass.calibration import apply_temperature
from convclass.cleaning import CLEANING_VERSION, DEFAULT_MAX_CHARS, CleanedEmail, clean_email
from convclass.errors import IncompatibleModel, ModelFailure
from convclass.heads import read_head
from convclass.serving.backends import (
    FloatMatrix,
    HeadBackend,
    InProcessBackend,
    IntMatrix,
    ModelBackend,
    TFServingRestBackend,
)
from convclass.serving.schemas import InputWarning, LabelScore, Prediction
from convclass.tokenization import Truncation, encode_texts, load_tokenizer

BackendKind = Literal["inprocess", "tfserving"]

#: A fixed, synthetic email: the warm-up call proves the model answers without touching customer data.
_WARM_UP = ("Card payment declined", "<p>My card payment was declined at the shop today.</p>", "text/html")


@dataclass(frozen=True)
class InboundEmail:
    """One email to classify; ``body`` may be raw bytes (``text/plain`` requests), cleaning decodes it."""

    body: str | bytes
    subject: str | None = None
    content_type: str = "text/html"
    id: str | None = None


def open_artifact(model_dir: Path) -> ModelArtifact:
    """Validate the artifact and refuse one cleaned differently from this code (``IncompatibleModel``)."""
    return load_artifact(model_dir, cleaning_version=CLEANING_VERSION)


class EmailClassifier:
    """Clean → encode → one backend call per chunk of emails → top-k.

    A batch request is cleaned and encoded together and reaches the model as one matrix (up to
    ``model_batch_size`` rows per call), which is what makes it cheaper per email than single requests.
    """

    def __init__(
        self,
        *,
        tokenizer: Tokenizer,
        backend: ModelBackend,
        labels: Sequence[str],
        max_length: int,
        model_version: str,
        model_batch_size: int = 64,
        confidence: Confidence | None = None,
        truncation: Truncation = "head",
        max_chars: int = DEFAULT_MAX_CHARS,
    ):
        if model_batch_size < 1:
            raise ValueError("model_batch_size must be at least 1")
        self._tokenizer = tokenizer
        self._backend = backend
        self.labels = tuple(labels)
        self.max_length = max_length
        self.model_version = model_version
        self.cleaning_version = CLEANING_VERSION
        self._model_batch_size = model_batch_size
        self._label_array = np.asarray(self.labels, dtype=object)
        self.confidence = confidence
        self.truncation: Truncation = truncation
        self.max_chars = max_chars

    @classmethod
    def from_artifact(
        cls, artifact: ModelArtifact, backend: ModelBackend, *, model_batch_size: int = 64
    ) -> EmailClassifier:
        return cls(
            tokenizer=load_tokenizer(artifact.tokenizer_path),
            backend=backend,
            labels=artifact.labels,
            max_length=artifact.info.max_length,
            model_version=str(artifact.info.model_version),
            model_batch_size=model_batch_size,
            confidence=artifact.info.confidence,
            truncation=artifact.info.truncation,
            max_chars=artifact.info.max_chars,
        )

    def clean(self, emails: Sequence[InboundEmail]) -> list[CleanedEmail]:
        return [clean_email(e.subject, e.body, e.content_type, max_chars=self.max_chars) for e in emails]

    def encode(self, cleaned: Sequence[CleanedEmail]) -> dict[str, IntMatrix]:
        return encode_texts(self._tokenizer, [c.text for c in cleaned], self.max_length, self.truncation)

    def probabilities(self, encoded: dict[str, IntMatrix]) -> FloatMatrix:
        """Run the model over ``encoded`` in chunks; any backend failure becomes ``ModelFailure``."""
        input_ids, attention_mask = encoded["input_ids"], encoded["attention_mask"]
        parts: list[FloatMatrix] = []
        for start in range(0, input_ids.shape[0], self._model_batch_size):
            stop = start + self._model_batch_size
            # Padding is trailing and the signature's length axis is open: drop columns that are padding
            # in every row, so a short email does not pay for max_length tokens.
            width = max(int(attention_mask[start:stop].sum(axis=1).max()), 1)
            try:
                part = self._backend.predict(
                    input_ids[start:stop, :width], attention_mask[start:stop, :width]
                )
            except ModelFailure:
                raise
            except Exception as exc:  # a model error must never surface as anything but a named failure
                raise ModelFailure(f"model call failed: {type(exc).__name__}") from exc
            if part.shape != (input_ids[start:stop].shape[0], len(self.labels)):
                raise ModelFailure(f"model returned shape {part.shape}, expected (n, {len(self.labels)})")
            if not np.isfinite(part).all():
                raise ModelFailure("model returned non-finite probabilities")
            parts.append(part)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def classify(self, emails: Sequence[InboundEmail], *, top_k: int = 3) -> list[Prediction]:
        if not emails:
            return []
        cleaned = self.clean(emails)
        probs = self.probabilities(self.encode(cleaned))
        threshold: float | None = None
        if self.confidence is not None:
            probs = apply_temperature(probs, self.confidence.temperature)
            threshold = self.confidence.auto_apply_threshold
        auto_apply = (
            probs.max(axis=1) >= threshold if threshold is not None else np.zeros(len(probs), dtype=bool)
        )
        k = max(1, min(top_k, len(self.labels)))
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        top_probs = np.take_along_axis(probs, order, axis=1).tolist()
        top_labels = self._label_array[order].tolist()
        return [
            Prediction(
                id=email.id,
                labels=[
                    LabelScore(label=label, probability=min(1.0, max(0.0, p)))
                    for label, p in zip(labels, ps, strict=True)
                ],
                model_version=self.model_version,
                cleaning_version=self.cleaning_version,
                warnings=_warnings(c),
                auto_apply=bool(apply),
            )
            for email, c, labels, ps, apply in zip(
                emails, cleaned, top_labels, top_probs, auto_apply, strict=True
            )
        ]

    def warm_up(self) -> None:
        """Answer one synthetic email: the first call builds kernels; ``/ping`` turns 200 only after it."""
        subject, body, content_type = _WARM_UP
        self.classify([InboundEmail(body=body, subject=subject, content_type=content_type)])

    def healthy(self) -> bool:
        return self._backend.healthy()

    def close(self) -> None:
        self._backend.close()


def _warnings(cleaned: CleanedEmail) -> list[InputWarning]:
    found: list[InputWarning] = []
    if cleaned.truncated:
        found.append("truncated")
    if cleaned.malformed_markup:
        found.append("malformed_markup")
    if cleaned.broken_encoding:
        found.append("broken_encoding")
    return found


def load_classifier(
    artifact: ModelArtifact,
    *,
    backend: BackendKind = "inprocess",
    tfserving_url: str = "http://127.0.0.1:8501",
    tfserving_model: str = "model",
    tfserving_wait_s: float = 300.0,
    model_batch_size: int = 64,
) -> EmailClassifier:
    """Open the backend for ``artifact`` and prove it answers (the slow part of start-up)."""
    model: ModelBackend
    if backend == "inprocess":
        model = InProcessBackend(artifact.saved_model_dir)
    else:
        rest = TFServingRestBackend(tfserving_url, tfserving_model, artifact.info.model_version)
        rest.wait_until_available(tfserving_wait_s)
        model = rest
    classifier = EmailClassifier.from_artifact(artifact, model, model_batch_size=model_batch_size)
    classifier.warm_up()
    return classifier


#: TF Serving's --model_name for the shared encoder in the serving image.
ENCODER_MODEL_NAME = "encoder"


@dataclass(frozen=True)
class SharedEncoder:
    """The frozen encoder every ``head`` on a multi-model server runs on: loaded once, shared by all heads."""

    manifest: EncoderManifest
    tokenizer: Tokenizer
    backend: ModelBackend


def open_encoder(
    encoder_dir: Path,
    *,
    backend: BackendKind = "inprocess",
    tfserving_url: str = "http://127.0.0.1:8501",
    tfserving_wait_s: float = 300.0,
) -> SharedEncoder:
    """Load the shared encoder (``encoder.json``, tokenizer, SavedModel with an ``embeddings`` output)."""
    manifest = read_encoder_manifest(encoder_dir)
    model: ModelBackend
    if backend == "inprocess":
        model = InProcessBackend(
            saved_model_path(encoder_dir, manifest.model_version), output=EMBEDDINGS_OUTPUT
        )
    else:
        rest = TFServingRestBackend(
            tfserving_url, ENCODER_MODEL_NAME, manifest.model_version, output=EMBEDDINGS_OUTPUT
        )
        rest.wait_until_available(tfserving_wait_s)
        model = rest
    return SharedEncoder(
        manifest=manifest, tokenizer=load_tokenizer(encoder_dir / "tokenizer.json"), backend=model
    )


def load_head(
    artifact: ModelArtifact, encoder: SharedEncoder | None, *, model_batch_size: int = 64
) -> EmailClassifier:
    """A head on the shared encoder; refused unless the artifact names exactly the server's encoder."""
    wanted = artifact.info.encoder
    if wanted is None:
        raise IncompatibleModel("the artifact is not a head")
    if encoder is None:
        raise IncompatibleModel("this server holds no shared encoder, so it cannot serve a head")
    if not wanted.same_weights(encoder.manifest.encoder):
        raise IncompatibleModel(
            f"the head was trained on encoder {wanted.name} ({wanted.digest[:12]}), "
            f"this server holds {encoder.manifest.encoder.name} ({encoder.manifest.encoder.digest[:12]})"
        )
    token_features = artifact.info.token_features
    if token_features is not None and token_features.vocab_size != encoder.tokenizer.get_vocab_size():
        raise IncompatibleModel(
            f"the head's token features read a vocabulary of {token_features.vocab_size} token ids, "
            f"this server's encoder tokenizer has {encoder.tokenizer.get_vocab_size()}"
        )
    head = read_head(
        artifact.head_path,
        dim=wanted.dim,
        n_labels=artifact.info.n_labels,
        token_features=token_features,
        hidden_layer=artifact.info.hidden_layer,
    )
    return EmailClassifier(
        tokenizer=encoder.tokenizer,
        backend=HeadBackend(encoder.backend, head),
        labels=artifact.labels,
        max_length=min(artifact.info.max_length, encoder.manifest.max_length),
        model_version=str(artifact.info.model_version),
        model_batch_size=model_batch_size,
        confidence=artifact.info.confidence,
        truncation=artifact.info.truncation,
        max_chars=artifact.info.max_chars,
    )
