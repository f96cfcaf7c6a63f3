"""The model artifact: what a training job leaves in ``/opt/ml/model`` (SageMaker tars it to model.tar.gz).

This module is the contract between training, model comparison and serving. It never imports TensorFlow: the
serving image talks to TF Serving over REST and must read the artifact without it.

Layout of the extracted ``model.tar.gz``::

    model/<version>/            TensorFlow SavedModel (numeric version directory, as TF Serving expects)
        saved_model.pb, variables/
    tokenizer.json              Hugging Face tokenizer the model was trained with
    labels.json                 {"labels": [...]}: output column i of ``probabilities`` is ``labels[i]``
    artifact.json               ArtifactInfo: format version, cleaning version, max_length, architecture, ...
    metrics.json                ModelMetrics: held-out test metrics, and the champion's on the same split
                                (model comparison reads this file)
    report/                     training_curves.png, confusion_matrix.png, summary.md, summary.html

A ``head`` artifact (architecture ``head``: a classification head over a frozen, shared encoder) has no
SavedModel and no tokenizer; the encoder's identity in artifact.json names the encoder it needs::

    head.npz                    ``kernel`` float32 [encoder.dim, n_labels], ``bias`` float32 [n_labels],
                                (no pickle): probabilities = softmax(embedding @ kernel + bias), plus, when
                                artifact.json sets ``token_features``, a token TF-IDF vocabulary, idf and
                                weights, and when it sets ``hidden_layer``, small ReLU networks on the
                                embedding, whose logits are added (convclass.heads, the one definition)
    labels.json, artifact.json (``encoder`` set), metrics.json, report/

Serving signature (``serving_default``) of the SavedModel::

    inputs:  input_ids       int32 [batch, max_length]   token ids from convclass.tokenization.encode_texts
             attention_mask  int32 [batch, max_length]   1 for real tokens, 0 for padding
    output:  probabilities   float32 [batch, n_labels]   softmax over labels.json, rows sum to 1

    The length axis is declared open ([-1, -1]): a client may drop trailing columns that are padding in every
    row (the result is the same, the cost lower: MiniLM's time grows with length); never pass more than
    ``max_length`` columns, the model was not trained on longer inputs.

How serving classifies one email (identical to training by construction)::

    cleaned = convclass.cleaning.clean_email(subject, body, content_type,      # artifact.cleaning_version
                                             max_chars=artifact.info.max_chars)
    tok = convclass.tokenization.load_tokenizer(artifact.tokenizer_path)
    enc = convclass.tokenization.encode_texts(tok, [cleaned.text], artifact.info.max_length,
                                              artifact.info.truncation)
    TF Serving REST: POST /v1/models/<name>:predict
        {"signature_name": "serving_default",
         "inputs": {"input_ids": enc["input_ids"].tolist(), "attention_mask": enc["attention_mask"].tolist()}}
    → {"outputs": [[p_0, ..., p_{n-1}]]}; label = artifact.labels[argmax]
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from convclass.cleaning import DEFAULT_MAX_CHARS
from convclass.errors import IncompatibleModel, InvalidInput
from convclass.layout import TOKENIZER_FILE

_M = TypeVar("_M", bound=BaseModel)

#: Bumped when the layout or a schema below changes incompatibly; serving refuses artifacts it does not know.
ARTIFACT_FORMAT_VERSION = 1

SAVED_MODEL_DIR = "model"
LABELS_FILE = "labels.json"
ARTIFACT_FILE = "artifact.json"
METRICS_FILE = "metrics.json"
REPORT_DIR = "report"
HEAD_FILE = "head.npz"
HEAD_ARCHITECTURE = "head"
REPORT_FILES = ("training_curves.png", "confusion_matrix.png", "summary.md", "summary.html")

#: The shared encoder directory (``convclass.training.head.export_encoder``): ``encoder.json``, the encoder's
#: ``tokenizer.json`` and ``model/<version>/`` (SavedModel: input_ids, attention_mask → ``embeddings``).
ENCODER_FILE = "encoder.json"
EMBEDDINGS_OUTPUT = "embeddings"

SIGNATURE_NAME = "serving_default"
INPUT_IDS = "input_ids"
ATTENTION_MASK = "attention_mask"
OUTPUT_NAME = "probabilities"


class SignatureInfo(BaseModel):
    """The serving signature, in artifact.json so a client can check it without loading the model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = SIGNATURE_NAME
    inputs: tuple[str, ...] = (INPUT_IDS, ATTENTION_MASK)
    input_dtype: Literal["int32"] = "int32"
    output: str = OUTPUT_NAME
    output_dtype: Literal["float32"] = "float32"


class EncoderRef(BaseModel):
    """The frozen encoder a ``head`` artifact runs on; a server refuses a head for an encoder it lacks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="e.g. sentence-transformers/all-MiniLM-L6-v2")
    digest: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the encoder's weights file")
    dim: int = Field(ge=1, description="width of the pooled embedding the head reads")
    pooling: Literal["mean"] = "mean"

    def same_weights(self, other: EncoderRef) -> bool:
        """Identity is the weights (digest), width and pooling; the name is for people."""
        return (self.digest, self.dim, self.pooling) == (other.digest, other.dim, other.pooling)


class EncoderManifest(BaseModel):
    """encoder.json: which encoder a shared encoder directory holds and how to feed it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: int = ARTIFACT_FORMAT_VERSION
    encoder: EncoderRef
    max_length: int = Field(ge=2, le=512)
    model_version: int = Field(default=1, ge=1)


def read_encoder_manifest(root: Path) -> EncoderManifest:
    manifest = _read_model(root / ENCODER_FILE, EncoderManifest)
    if manifest.format_version != ARTIFACT_FORMAT_VERSION:
        raise IncompatibleModel(f"encoder format {manifest.format_version} is not supported")
    if not (root / TOKENIZER_FILE).is_file():
        raise IncompatibleModel(f"encoder directory lacks {TOKENIZER_FILE}")
    if not (saved_model_path(root, manifest.model_version) / "saved_model.pb").is_file():
        raise IncompatibleModel(f"encoder directory lacks {SAVED_MODEL_DIR}/{manifest.model_version}")
    return manifest


class TokenFeatures(BaseModel):
    """artifact.json ``token_features`` (heads only): the head also reads TF-IDF token n-grams of the
    encoder's token ids, whose logits are added with ``weight`` (convclass.heads). A server that predates the
    field refuses the artifact (``extra="forbid"``) rather than serve the head without its token part."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["tfidf"] = "tfidf"
    vocab_size: int = Field(ge=1, description="the encoder tokenizer's vocabulary size (n-gram keys use it)")
    max_ngram: int = Field(ge=1, le=3, description="longest token n-gram")
    n_features: int = Field(ge=1, description="n-grams in head.npz token_keys")
    weight: float = Field(gt=0, le=100, description="logits = embedding logits + weight * token logits")


class HiddenLayerFeatures(BaseModel):
    """artifact.json ``hidden_layer`` (heads only): the head also has ``members`` small networks on the
    embedding (one ReLU layer of ``hidden`` units each), whose summed logits are added (convclass.heads). A
    server that predates the field refuses the artifact (``extra="forbid"``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    activation: Literal["relu", "gelu_tanh"] = Field(
        default="relu", description="the hidden layer's activation (gelu_tanh: GELU's tanh approximation)"
    )
    members: int = Field(ge=1, le=16, description="networks in head.npz mlp_kernel_1 / mlp_kernel_2")
    hidden: int = Field(ge=1, le=4096, description="hidden units of each network")
    weight: float = Field(gt=0, le=100, description="the bag's blend weight (already in mlp_kernel_2, bias)")
    linear_weight: float = Field(
        ge=0, le=100, description="the linear kernel's blend weight (already in kernel and bias)"
    )


class ArtifactInfo(BaseModel):
    """artifact.json: what serving needs to prepare inputs exactly as training did."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: int = ARTIFACT_FORMAT_VERSION
    model_version: int = Field(ge=1, description="numeric directory under model/ (TF Serving version)")
    architecture: str = Field(min_length=1)
    base_model: str | None = Field(default=None, description="pretrained encoder the model started from")
    max_length: int = Field(ge=2, le=512)
    truncation: Literal["head", "head_tail"] = Field(
        default="head", description="how longer token sequences are cut (convclass.tokenization.encode_texts)"
    )
    max_chars: int = Field(
        default=DEFAULT_MAX_CHARS, ge=1, description="cleaning cuts each email to this many characters first"
    )
    n_labels: int = Field(ge=2)
    cleaning_version: str = Field(min_length=1)
    signature: SignatureInfo = SignatureInfo()
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    versions: dict[str, str] = Field(default_factory=dict, description="convclass, tensorflow, keras, ...")
    encoder: EncoderRef | None = Field(default=None, description="head artifacts only: the shared encoder")
    token_features: TokenFeatures | None = Field(
        default=None, description="head artifacts only: token TF-IDF logits added to the embedding head's"
    )
    hidden_layer: HiddenLayerFeatures | None = Field(
        default=None, description="head artifacts only: hidden-layer networks whose logits are added too"
    )
    confidence: Confidence | None = Field(
        default=None, description="calibration and auto-apply threshold; absent: auto_apply is always false"
    )
    prior_correction: PriorCorrection | None = Field(
        default=None, description="the logit adjustment already in the model's output bias (record only)"
    )

    @model_validator(mode="after")
    def _encoder_iff_head(self) -> ArtifactInfo:
        if (self.architecture == HEAD_ARCHITECTURE) != (self.encoder is not None):
            raise ValueError("encoder must be set exactly when architecture is 'head'")
        if self.token_features is not None and self.encoder is None:
            raise ValueError("token_features only applies to a head")
        if self.hidden_layer is not None and self.encoder is None:
            raise ValueError("hidden_layer only applies to a head")
        if self.prior_correction is not None and len(self.prior_correction.label_bias) != self.n_labels:
            raise ValueError("prior_correction.label_bias needs one value per label")
        return self

    @property
    def is_head(self) -> bool:
        return self.encoder is not None


class LabelMap(BaseModel):
    """labels.json: output column i of ``probabilities`` is ``labels[i]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    labels: tuple[str, ...] = Field(min_length=2)

    @field_validator("labels")
    @classmethod
    def _unique_non_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not label for label in value):
            raise ValueError("labels must be non-empty strings")
        if len(set(value)) != len(value):
            raise ValueError("labels must be unique")
        return value


class LabelMetrics(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    precision: float = Field(ge=0, le=1)
    recall: float = Field(ge=0, le=1)
    f1: float = Field(ge=0, le=1)
    support: int = Field(ge=0)


class DataSizes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    train: int = Field(ge=0)
    validation: int = Field(ge=0)
    test: int = Field(ge=0)
    n_labels: int = Field(ge=2)


class Confidence(BaseModel):
    """artifact.json ``confidence``: what serving needs to answer ``auto_apply`` (see convclass.calibration).

    Fitted on the validation split. ``auto_apply_threshold`` is ``None`` when no confidence level reached
    ``target_precision`` there: then every prediction answers ``auto_apply: false``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(gt=0, description="probabilities are served as softmax(log p / temperature)")
    target_precision: float = Field(gt=0, le=1)
    auto_apply_threshold: float | None = Field(default=None, ge=0, le=1)


class PriorCorrection(BaseModel):
    """Logit adjustment chosen on validation (convclass.training.evaluation.fit_prior_correction).

    ``label_bias[i] = -strength * log(share of label i in the training split)``, centred; it is already added
    to the model's output bias (the softmax layer's bias, or ``head.npz`` ``bias``), so every consumer of the
    model — serving, champion scoring — applies it by construction. Recorded here to say what was done.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    strength: float = Field(ge=-5, le=5, description="0: no correction; 1: divide by the training prior")
    label_bias: tuple[float, ...] = Field(description="added to each label's logit, in labels.json order")
    validation_macro_f1_before: float = Field(ge=0, le=1, description="label-balanced, see the fit")
    validation_macro_f1_after: float = Field(ge=0, le=1, description="label-balanced, see the fit")


class TruncationChoice(BaseModel):
    """truncation=auto (convclass.training.trainer): the cut kept for emails over ``max_length`` tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    selected: Literal["head", "head_tail"]
    long_text_share: float = Field(ge=0, le=1, description="training texts longer than max_length tokens")
    validation_macro_f1: dict[str, float] = Field(
        default_factory=dict, description="per strategy trained; empty when too few texts are long to compare"
    )


class ConfidenceMetrics(Confidence):
    """metrics.json ``confidence``: the calibration and the auto-apply threshold, measured.

    ``validation_*`` figures are where the temperature and threshold were fitted; ``ece`` and ``coverage`` /
    ``precision`` are on the held-out split the rest of metrics.json reports, with the temperature applied.
    """

    validation_ece_before: float = Field(ge=0, le=1)
    validation_ece_after: float = Field(ge=0, le=1)
    ece: float = Field(ge=0, le=1, description="held-out ECE after temperature scaling")
    coverage: float = Field(ge=0, le=1, description="held-out share of emails auto-applied")
    precision: float = Field(ge=0, le=1, description="held-out precision of the auto-applied emails")


class CandidateFigures(BaseModel):
    """One architecture tried by model selection (``architecture=auto``), chosen on validation macro-F1."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    architecture: str
    validation_macro_f1: float = Field(ge=0, le=1)
    macro_f1: float = Field(ge=0, le=1, description="on the held-out split, reported, never used to choose")
    accuracy: float = Field(ge=0, le=1)
    training_seconds: float = Field(ge=0)
    selected: bool = False


class ChampionScore(BaseModel):
    """The champion (the model serving when the challenger trained) scored on the challenger's held-out split.

    Rows are compared by label name: a row whose true label the champion does not know
    (``unknown_label_rows``) cannot be predicted by it and counts as an error, and so does any prediction of a
    label the challenger's data no longer has. Macro-F1 averages over the labels present in the split's truth
    or the champion's predictions, as the challenger's does.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    evaluated_on: Literal["test", "validation"]
    rows: int = Field(ge=0)
    unknown_label_rows: int = Field(ge=0)
    #: Both figures are absent when the champion could not be scored; ``error`` then says why.
    accuracy: float | None = Field(default=None, ge=0, le=1)
    macro_f1: float | None = Field(default=None, ge=0, le=1)
    error: str | None = Field(default=None, max_length=1024)

    @model_validator(mode="after")
    def _scored_or_explained(self) -> ChampionScore:
        scored = self.accuracy is not None and self.macro_f1 is not None
        if scored == (self.error is not None) or (self.accuracy is None) != (self.macro_f1 is None):
            raise ValueError("a champion score has both figures and no error, or an error and no figures")
        return self


class ModelMetrics(BaseModel):
    """metrics.json: held-out test metrics of one trained model; challenger vs champion compares these.

    ``labels`` gives the order of ``confusion_matrix`` rows (true label) and columns (predicted label).
    ``champion`` is present when the training job was given the champion's model (input channel
    ``champion``): its figures on this same held-out split, which the evaluate step compares with this
    model's.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: int = ARTIFACT_FORMAT_VERSION
    evaluated_on: Literal["test", "validation"] = "test"
    accuracy: float = Field(ge=0, le=1)
    macro_f1: float = Field(ge=0, le=1)
    weighted_f1: float = Field(ge=0, le=1)
    expected_calibration_error: float = Field(ge=0, le=1)
    per_label: dict[str, LabelMetrics]
    labels: tuple[str, ...]
    confusion_matrix: tuple[tuple[int, ...], ...]
    data: DataSizes
    training_seconds: float = Field(ge=0)
    epochs: int = Field(ge=0)
    architecture: str
    versions: dict[str, str] = Field(default_factory=dict)
    champion: ChampionScore | None = None
    validation_macro_f1: float | None = Field(
        default=None, ge=0, le=1, description="macro-F1 on the validation split (what model selection uses)"
    )
    confidence: ConfidenceMetrics | None = None
    candidates: tuple[CandidateFigures, ...] = Field(
        default=(), description="architecture=auto: every candidate trained, the selected one marked"
    )
    prior_correction: PriorCorrection | None = Field(
        default=None, description="the logit adjustment chosen on validation, included in every figure here"
    )
    truncation: TruncationChoice | None = Field(
        default=None, description="truncation=auto: the share of long texts and what each strategy scored"
    )

    @model_validator(mode="after")
    def _consistent(self) -> ModelMetrics:
        n = len(self.labels)
        if len(self.confusion_matrix) != n or any(len(row) != n for row in self.confusion_matrix):
            raise ValueError(f"confusion_matrix must be {n}x{n} (one row/column per label)")
        if set(self.per_label) != set(self.labels):
            raise ValueError("per_label keys must equal labels")
        return self


@dataclass(frozen=True)
class ModelArtifact:
    """An extracted artifact directory, validated."""

    root: Path
    info: ArtifactInfo
    labels: tuple[str, ...]
    metrics: ModelMetrics | None

    @property
    def saved_model_dir(self) -> Path:
        return self.root / SAVED_MODEL_DIR / str(self.info.model_version)

    @property
    def saved_model_base(self) -> Path:
        """Directory to give TF Serving as ``--model_base_path`` (it picks the numeric version inside)."""
        return self.root / SAVED_MODEL_DIR

    @property
    def tokenizer_path(self) -> Path:
        return self.root / TOKENIZER_FILE

    @property
    def head_path(self) -> Path:
        return self.root / HEAD_FILE

    @property
    def report_dir(self) -> Path:
        return self.root / REPORT_DIR


def saved_model_path(root: Path, model_version: int) -> Path:
    return root / SAVED_MODEL_DIR / str(model_version)


def _read_model(path: Path, model: type[_M]) -> _M:
    if not path.is_file():
        raise IncompatibleModel(f"model artifact lacks {path.name}")
    try:
        return model.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in err["loc"]) or "<root>" for err in exc.errors()})
        raise IncompatibleModel(f"{path.name} is invalid (fields: {', '.join(fields)})") from exc


def read_metrics(path: Path) -> ModelMetrics:
    """Read a metrics.json (the evaluate step reads the challenger's and the champion's)."""
    return _read_model(path, ModelMetrics)


def load_artifact(
    root: Path, *, cleaning_version: str | None = None, require_metrics: bool = False
) -> ModelArtifact:
    """Validate an extracted artifact directory; raise ``IncompatibleModel`` naming what is wrong.

    Pass the serving side's ``cleaning_version`` to refuse a model trained on differently cleaned text; the
    serving signature must be the one this code calls.
    """
    info = _read_model(root / ARTIFACT_FILE, ArtifactInfo)
    if info.format_version != ARTIFACT_FORMAT_VERSION:
        raise IncompatibleModel(
            f"artifact format {info.format_version} is not supported (this code reads "
            f"{ARTIFACT_FORMAT_VERSION})"
        )
    if cleaning_version is not None and info.cleaning_version != cleaning_version:
        raise IncompatibleModel(
            f"model was trained on cleaning version {info.cleaning_version!r}, "
            f"this code cleans as {cleaning_version!r}"
        )
    if info.signature != SignatureInfo():
        raise IncompatibleModel("artifact.json declares a serving signature this code does not call")
    label_map = _read_model(root / LABELS_FILE, LabelMap)
    if len(label_map.labels) != info.n_labels:
        raise IncompatibleModel(
            f"labels.json has {len(label_map.labels)} labels, artifact.json says {info.n_labels}"
        )
    if info.is_head:
        if not (root / HEAD_FILE).is_file():
            raise IncompatibleModel(f"model artifact lacks {HEAD_FILE}")
    else:
        if not (root / TOKENIZER_FILE).is_file():
            raise IncompatibleModel(f"model artifact lacks {TOKENIZER_FILE}")
        if not (saved_model_path(root, info.model_version) / "saved_model.pb").is_file():
            raise IncompatibleModel(
                f"model artifact lacks {SAVED_MODEL_DIR}/{info.model_version}/saved_model.pb"
            )
    metrics: ModelMetrics | None = None
    if (root / METRICS_FILE).is_file() or require_metrics:
        metrics = read_metrics(root / METRICS_FILE)
    return ModelArtifact(root=root, info=info, labels=label_map.labels, metrics=metrics)


def write_json_model(path: Path, value: BaseModel) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value.model_dump_json(indent=2) + "\n", encoding="utf-8")


def pack_model_dir(model_dir: Path, tar_path: Path) -> Path:
    """Tar a model directory the way SageMaker does (members relative to the directory, gzip)."""
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tar_path, "w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(model_dir)), recursive=False)
    return tar_path


def extract_model_tar(source: Path | bytes, dest: Path) -> Path:
    """Extract ``model.tar.gz`` safely (no absolute paths, links or devices: the ``data`` filter)."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        fileobj = io.BytesIO(source) if isinstance(source, bytes) else source.open("rb")
        with fileobj, tarfile.open(fileobj=fileobj, mode="r:*") as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise InvalidInput(f"model archive cannot be extracted: {type(exc).__name__}") from exc
    return dest
