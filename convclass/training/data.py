"""The training job's input channels: the preprocessed dataset (see convclass.dataset) as SageMaker stages it.

Each channel is a directory under ``<root>/input/data/``. Either one channel per file (what the training state
uses: its S3 prefix is the object's key, so SageMaker drops the object into the channel directory)::

    train/train.parquet  validation/validation.parquet  test/test.parquet
    tokenizer/tokenizer.json  manifest/manifest.json

or a single ``dataset`` channel holding all five files (the dataset prefix as one channel). Only the ``text``
and ``label`` columns are read; ids are recomputed with ``encode_texts`` for the model's tokenizer and length.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from convclass.artifacts import DataSizes
from convclass.cleaning import DEFAULT_MAX_CHARS
from convclass.dataset.manifest import MANIFEST_FILE, SPLIT_FILES, DatasetManifest
from convclass.errors import InsufficientData, InvalidInput
from convclass.layout import TOKENIZER_FILE

SPLIT_CHANNELS = ("train", "validation", "test")
#: Channel name → file it must contain (InputDataConfig of CreateTrainingJob).
CHANNEL_FILES: dict[str, str] = {
    **{str(split): name for split, name in SPLIT_FILES.items()},
    "tokenizer": TOKENIZER_FILE,
    "manifest": MANIFEST_FILE,
}
DATASET_CHANNEL = "dataset"
MIN_LABELS = 2


@dataclass(frozen=True)
class Split:
    texts: tuple[str, ...]
    labels: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class TrainingData:
    train: Split
    validation: Split
    test: Split
    #: Output order of the model: the manifest's label order, restricted to labels with training rows.
    labels: tuple[str, ...]
    tokenizer_path: Path
    cleaning_version: str
    #: The dataset's sequence length (manifest); the ``max_length`` hyperparameter overrides it.
    max_length: int | None = None
    #: Validation/test rows whose label has no training rows (they cannot be predicted).
    dropped_rows: int = 0

    @property
    def evaluated_on(self) -> Literal["test", "validation"]:
        """The split the reported figures come from: test, or validation when a small dataset has no test."""
        return "test" if len(self.test) else "validation"

    @property
    def held_out(self) -> Split:
        return self.test if self.evaluated_on == "test" else self.validation

    #: Characters cleaning kept per email when the dataset was built (manifest); serving cuts the same.
    max_chars: int = DEFAULT_MAX_CHARS

    def sizes(self) -> DataSizes:
        """The split sizes metrics.json records."""
        return DataSizes(
            train=len(self.train),
            validation=len(self.validation),
            test=len(self.test),
            n_labels=len(self.labels),
        )


def locate(input_data: Path, channel: str) -> Path:
    """Path of ``channel``'s file: in its own channel directory, else in the ``dataset`` channel."""
    name = CHANNEL_FILES[channel]
    for candidate in (input_data / channel / name, input_data / DATASET_CHANNEL / name):
        if candidate.is_file():
            return candidate
    raise InvalidInput(
        f"input channel {channel!r} is missing: expected {input_data / channel / name} "
        f"or {input_data / DATASET_CHANNEL / name}"
    )


def read_split(path: Path) -> Split:
    """Read ``text`` and ``label``; rows with an empty text or label are skipped (counted by the caller)."""
    try:
        schema = pq.read_schema(path)
        missing = [column for column in ("text", "label") if column not in schema.names]
        if missing:
            raise InvalidInput(f"{path.name} lacks column(s) {', '.join(missing)}")
        table = pq.read_table(path, columns=["text", "label"])
    except (OSError, pa.ArrowException) as exc:
        raise InvalidInput(f"{path.name} is not a readable Parquet file: {type(exc).__name__}") from exc
    texts, labels = [], []
    for text, label in zip(table.column("text").to_pylist(), table.column("label").to_pylist(), strict=True):
        if isinstance(text, str) and text.strip() and label is not None and str(label):
            texts.append(text)
            labels.append(str(label))
    return Split(tuple(texts), tuple(labels))


def _keep_known(split: Split, known: set[str]) -> Split:
    pairs = [(t, label) for t, label in zip(split.texts, split.labels, strict=True) if label in known]
    return Split(tuple(t for t, _ in pairs), tuple(label for _, label in pairs))


def read_manifest(path: Path) -> DatasetManifest:
    try:
        manifest = DatasetManifest.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise InvalidInput(f"{path.name} cannot be read") from exc
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in err["loc"]) or "<root>" for err in exc.errors()})
        raise InvalidInput(
            f"{path.name} does not match the dataset manifest schema ({', '.join(fields)})"
        ) from exc
    if manifest.status != "ok":
        raise InsufficientData(f"the dataset was built with status {manifest.status!r}")
    return manifest


def load_training_data(input_data: Path) -> TrainingData:
    """Read all channels; raise ``InvalidInput``/``InsufficientData`` naming what is wrong."""
    manifest = read_manifest(locate(input_data, "manifest"))
    raw = {name: read_split(locate(input_data, name)) for name in SPLIT_CHANNELS}
    train = raw["train"]
    unknown = set(train.labels) - set(manifest.labels)
    if unknown:
        raise InvalidInput(f"the train split has {len(unknown)} label(s) that the manifest does not list")
    present = set(train.labels)
    labels = tuple(label for label in manifest.labels if label in present)
    if len(labels) < MIN_LABELS:
        raise InsufficientData(f"the train split has {len(labels)} label(s); at least {MIN_LABELS} needed")
    validation = _keep_known(raw["validation"], present)
    test = _keep_known(raw["test"], present)
    return TrainingData(
        train=train,
        validation=validation,
        test=test,
        labels=labels,
        tokenizer_path=locate(input_data, "tokenizer"),
        cleaning_version=manifest.cleaning_version,
        max_length=manifest.tokenizer.max_length if manifest.tokenizer else None,
        max_chars=manifest.max_chars,
        dropped_rows=len(raw["validation"]) + len(raw["test"]) - len(validation) - len(test),
    )
