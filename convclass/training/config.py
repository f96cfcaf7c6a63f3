"""Hyperparameters: SageMaker hands every value over as a string; this makes them a typed, checked config.

Parsing happens before TensorFlow is imported, so a typo fails the job in about a second with a message that
names the offending key (written to /opt/ml/output/failure by the entrypoint).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from convclass.calibration import DEFAULT_TARGET_PRECISION
from convclass.errors import InvalidInput

Architecture = Literal["auto", "minilm", "cnn", "head", "linear"]
#: The architectures model selection can train (every one but ``auto``).
TRAINABLE_ARCHITECTURES = ("head", "linear", "cnn", "minilm")
#: Architectures that start from the pretrained encoder (``base_model_dir``).
PRETRAINED_ARCHITECTURES = ("minilm", "head")

#: Per-architecture defaults for the knobs whose good values differ between a pretrained encoder and a model
#: trained from scratch. Measured on Banking77 (see the README's training section).
_ARCHITECTURE_DEFAULTS: dict[str, dict[str, Any]] = {
    "minilm": {"epochs": 4, "learning_rate": 2e-4, "batch_size": 32, "dropout": 0.1, "weight_decay": 0.01},
    "cnn": {"epochs": 12, "learning_rate": 2e-3, "batch_size": 64, "dropout": 0.3, "weight_decay": 1e-4},
    # The head is a logistic regression fitted to convergence over frozen embeddings: one pass, no optimizer.
    "head": {"epochs": 1, "learning_rate": 1e-3, "batch_size": 128, "dropout": 0.0, "weight_decay": 0.0},
    # The linear model is a logistic regression fitted to convergence over TF-IDF features: one pass too.
    "linear": {"epochs": 1, "learning_rate": 1e-3, "batch_size": 256, "dropout": 0.0, "weight_decay": 0.0},
}


class TrainingConfig(BaseModel):
    """Typed hyperparameters. ``None`` means "the architecture's default" (resolved by ``resolved()``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    architecture: Architecture = Field(
        default="minilm",
        description="auto: train the candidates that fit the data's size and keep the best on validation "
        "macro-F1 (convclass.training.selection); "
        "minilm: fine-tuned pretrained MiniLM-L6 encoder (best accuracy, ~9 ms/email, 2 cores); "
        "cnn: small convolutional model trained from scratch (seconds to train, ~0.5 ms/email); "
        "head: a classification head over the frozen MiniLM encoder (artifact of a few hundred KB, served on "
        "a shared multi-model endpoint that runs the encoder once for every tenant); "
        "linear: class-weighted logistic regression over TF-IDF features of token 1-2 grams of the tenant's "
        "own WordPiece vocabulary, as a Keras model (trains in seconds, well under 1 ms/email)",
    )
    candidates: tuple[str, ...] | None = Field(
        default=None,
        description="auto only: the architectures to try, comma-separated (e.g. head,linear,minilm); "
        "default: those that fit the data's size (convclass.training.selection)",
    )
    epochs: int | None = Field(default=None, ge=1, le=200)
    batch_size: int | None = Field(default=None, ge=1, le=4096)
    learning_rate: float | None = Field(default=None, gt=0, lt=1)
    weight_decay: float | None = Field(default=None, ge=0, lt=1)
    dropout: float | None = Field(default=None, ge=0, lt=1)
    warmup_fraction: float = Field(default=0.1, ge=0, lt=1)
    max_length: int | None = Field(
        default=None, ge=8, le=512, description="tokens per email; default: the dataset manifest's max_length"
    )
    truncation: Literal["auto", "head", "head_tail"] = Field(
        default="head",
        description="how an email longer than max_length tokens is cut: its first tokens (head) or its first "
        "and last (head_tail); auto: head unless 5 % or more of the training texts are longer, then both are "
        "trained (twice the training) and the better on validation macro-F1 kept. The artifact records it; "
        "serving cuts the same",
    )
    seed: int = Field(default=42, ge=0, le=2**31 - 1)
    class_weighting: Literal["balanced", "none"] = "balanced"
    embedding_dim: int = Field(default=128, ge=8, le=1024, description="cnn only")
    conv_filters: int = Field(default=256, ge=8, le=4096, description="cnn only")
    base_model_dir: str | None = Field(
        default=None, description="directory with config.json, model.safetensors, tokenizer.json (minilm)"
    )
    model_version: int = Field(default=1, ge=1, description="numeric SavedModel directory for TF Serving")
    threads: int = Field(default=0, ge=0, le=256, description="0: let TensorFlow choose")
    head_c: float = Field(
        default=20.0,
        gt=0,
        le=1e6,
        description="head only: inverse L2 strength of the logistic-regression head",
    )
    head_tokens: Literal["validation", "off"] = Field(
        default="validation",
        description="head only: validation: also fit a class-weighted logistic regression on TF-IDF token "
        "n-grams of the encoder's token ids and add its logits to the embedding head's with the weight "
        "(0 drops them) that gives the lowest validation log-loss (convclass.heads); off: embedding only. "
        "Without a validation split there is nothing to choose on: embedding only",
    )
    head_hidden: Literal["validation", "on", "off"] = Field(
        default="validation",
        description="head only: validation: also train a bag of one-hidden-layer networks on the embedding "
        "and blend their logits with the linear head's (and the token logits) with the weights that give "
        "the lowest validation log-loss, which may leave them out; on: the same, never left out; off: "
        "linear head only. Without a validation split there is nothing to choose on: linear head only",
    )
    head_hidden_members: int = Field(
        default=5, ge=1, le=16, description="head only: networks in the bag (their logits are averaged)"
    )
    head_hidden_activation: Literal["relu", "gelu_tanh"] = Field(
        default="relu",
        description="head only: the networks' activation (gelu_tanh: GELU's tanh approximation)",
    )
    head_hidden_units: int = Field(default=1024, ge=8, le=4096, description="head only: hidden units each")
    head_hidden_epochs: int = Field(default=15, ge=1, le=200, description="head only: epochs per network")
    head_hidden_dropout: float = Field(
        default=0.5, ge=0.0, lt=1.0, description="head only: dropout on each network's hidden layer"
    )
    head_refit: bool = Field(
        default=True,
        description="head only: once validation has chosen the token weight and the prior correction, fit "
        "the head again on train + validation with them (validation figures and the calibration stay those "
        "of the train-only fit); never when the reported figures come from the validation split",
    )
    head_token_c: float = Field(
        default=30.0, gt=0, le=1e6, description="head only: inverse L2 strength of the token regression"
    )
    head_token_max_ngram: int = Field(default=1, ge=1, le=3, description="head only: longest token n-gram")
    head_token_max_features: int = Field(
        default=4000,
        ge=16,
        le=100_000,
        description="head only: token n-grams kept (most frequent first); the head's size grows with it",
    )
    head_token_min_df: int = Field(
        default=2, ge=1, le=1000, description="head only: training texts a token n-gram must occur in"
    )

    linear_c: float = Field(
        default=30.0, gt=0, le=1e6, description="linear only: inverse L2 strength of the logistic regression"
    )
    linear_max_ngram: int = Field(default=2, ge=1, le=3, description="linear only: longest token n-gram")
    linear_max_features: int = Field(
        default=50_000, ge=16, le=1_000_000, description="linear only: most frequent n-grams kept"
    )
    linear_min_df: int = Field(
        default=2, ge=1, le=1000, description="linear only: training texts an n-gram must occur in"
    )

    prior_correction: Literal["validation", "off"] = Field(
        default="validation",
        description="validation: add the logit adjustment -s*log(training prior) to the output bias when a "
        "strength s tried on validation raises its macro-F1 (convclass.training.evaluation); off: never",
    )

    target_precision: float = Field(
        default=DEFAULT_TARGET_PRECISION,
        gt=0,
        le=1,
        description="precision the auto-apply threshold must reach on validation",
    )

    @field_validator("candidates", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("candidates")
    @classmethod
    def _known_candidates(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        unknown = [a for a in value if a not in TRAINABLE_ARCHITECTURES]
        if unknown or not value:
            raise ValueError(
                f"must list one or more of {', '.join(TRAINABLE_ARCHITECTURES)} "
                f"(got {', '.join(value) or 'none'})"
            )
        if len(set(value)) != len(value):
            raise ValueError("lists an architecture twice")
        return value

    @model_validator(mode="after")
    def _scratch_only_options(self) -> TrainingConfig:
        if self.architecture not in (*PRETRAINED_ARCHITECTURES, "auto") and self.base_model_dir is not None:
            raise ValueError("base_model_dir only applies to architecture=minilm, head or auto")
        if self.candidates is not None and self.architecture != "auto":
            raise ValueError("candidates only applies to architecture=auto")
        return self

    def resolved(self) -> TrainingConfig:
        """Fill the architecture-dependent defaults so the stored config says exactly what ran."""
        # auto: each candidate resolves its own defaults when it is trained.
        defaults = _ARCHITECTURE_DEFAULTS.get(self.architecture, {})
        updates = {key: value for key, value in defaults.items() if getattr(self, key) is None}
        return self.model_copy(update=updates)


def parse_hyperparameters(raw: dict[str, Any]) -> TrainingConfig:
    """Build the config from SageMaker's all-string mapping; raise ``InvalidInput`` naming each bad key."""
    if not isinstance(raw, dict):
        raise InvalidInput("hyperparameters must be a JSON object")
    known = set(TrainingConfig.model_fields)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise InvalidInput(
            f"unknown hyperparameter(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    try:
        return TrainingConfig.model_validate(raw).resolved()
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(part) for part in err["loc"]) or "hyperparameters"
            problems.append(f"{key}: {err['msg']}")
        raise InvalidInput("invalid hyperparameter " + "; ".join(problems)) from exc


def load_hyperparameters(path: Path) -> TrainingConfig:
    if not path.is_file():
        return TrainingConfig().resolved()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path.name} is not valid JSON") from exc
    return parse_hyperparameters(raw)
