"""``manifest.json`` of a dataset: what went in, what came out, and why every other record was left out.

Training reads the label order and ``max_length`` from here; operators read the counts to see why a tenant's
classifier was (or was not) trained. It never contains email text.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from convclass.layout import TOKENIZER_FILE, Split

MANIFEST_FILE = "manifest.json"
SPLIT_FILES: dict[Split, str] = {
    "train": "train.parquet",
    "validation": "validation.parquet",
    "test": "test.parquet",
}
DATASET_FORMAT_VERSION: Literal[1] = 1

TokenizerKind = Literal["wordpiece", "base"]
Status = Literal["ok", "insufficient_data"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecordCounts(_Model):
    """Every input record ends in exactly one bucket: ``read == sum of all the others``."""

    read: int = 0
    #: Not a valid export record (unparseable line, missing or mistyped fields).
    invalid: int = 0
    #: Belongs to another tenant: never mixed into this tenant's data.
    wrong_tenant: int = 0
    #: The label field is absent or empty.
    missing_label: int = 0
    #: Nothing left after cleaning (empty body, only quotes/signature).
    empty_text: int = 0
    #: Same cleaned text as an earlier record (kept once, so it cannot land in two splits).
    duplicates: int = 0
    #: The label had fewer than ``min_examples_per_label`` examples.
    rare_label: int = 0
    #: Valid, but too little data remained overall to build a dataset (status ``insufficient_data``).
    not_used: int = 0
    kept: int = 0
    #: Not a bucket: records that took the label an agent confirmed instead of the exported one.
    labels_confirmed: int = 0

    @property
    def accounted(self) -> bool:
        return self.read == (
            self.invalid
            + self.wrong_tenant
            + self.missing_label
            + self.empty_text
            + self.duplicates
            + self.rare_label
            + self.not_used
            + self.kept
        )


class CleaningStats(_Model):
    """What cleaning found in the valid records (counts of emails, PII counts of masked spans)."""

    malformed_markup: int = 0
    broken_encoding: int = 0
    truncated: int = 0
    quote_stripped: int = 0
    signature_stripped: int = 0
    disclaimer_stripped: int = 0
    pii_masked: dict[str, int] = Field(default_factory=dict)


class TokenizerInfo(_Model):
    kind: TokenizerKind
    file: str = TOKENIZER_FILE
    vocab_size: int
    max_length: int
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    special_tokens: list[str]
    #: ``base`` only: the directory name the base tokenizer came from.
    base: str | None = None
    #: Examples whose token sequence was longer than ``max_length`` and got cut.
    sequences_truncated: int = 0


class InputFile(_Model):
    name: str
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    records: int = Field(ge=0)


class SplitOptions(_Model):
    seed: int
    ratios: dict[Split, float]
    min_examples_per_label: int
    min_total_examples: int


class DatasetManifest(_Model):
    """The dataset's contract with training (labels, splits, tokenizer) and its audit trail."""

    version: Literal[1] = DATASET_FORMAT_VERSION
    status: Status
    tenant: str | None = None
    classifier: str | None = None
    run_id: str | None = None
    label_field: str
    cleaning_version: str
    max_chars: int
    created_at: datetime
    #: Label names in label-id order (column ``label_id`` of the splits indexes this list).
    labels: list[str]
    #: Labels dropped for having too few examples, with how many examples they had.
    dropped_labels: dict[str, int]
    #: Duplicates whose label differed from the kept copy's (a sign of inconsistent labelling).
    duplicate_label_conflicts: int = 0
    counts: RecordCounts
    split_counts: dict[Split, dict[str, int]]
    cleaning: CleaningStats
    options: SplitOptions
    tokenizer: TokenizerInfo | None = None
    files: dict[Split, str] = Field(default_factory=lambda: dict(SPLIT_FILES))
    inputs: list[InputFile]

    @model_validator(mode="after")
    def _all_records_accounted(self) -> DatasetManifest:
        if not self.counts.accounted:
            raise ValueError("record counts do not add up to the records read")
        in_splits = sum(sum(per_label.values()) for per_label in self.split_counts.values())
        if in_splits != self.counts.kept:
            raise ValueError("split counts do not add up to the kept records")
        return self
