"""Export records → cleaned, de-duplicated, stratified, tokenized train/validation/test Parquet splits.

Three streaming passes keep memory flat in the number of emails' *text*:

1. read inputs chunk by chunk, validate and clean each record, spill cleaned rows to a temporary Parquet file;
only
   a 12-byte key per row (text hash + label code) stays in memory;
2. decide with numpy: first occurrence of each cleaned text wins (so duplicates never straddle splits), labels
with
   too few examples are dropped, the rest is split per label with a seeded shuffle;
3. train the tokenizer on the training rows and write each split, re-reading the spill file chunk by chunk.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError
from tokenizers import Tokenizer

from convclass.cleaning import CLEANING_VERSION, DEFAULT_MAX_CHARS, CleanedEmail, clean_email
from convclass.dataset.manifest import (
    MANIFEST_FILE,
    SPLIT_FILES,
    CleaningStats,
    DatasetManifest,
    InputFile,
    RecordCounts,
    SplitOptions,
    TokenizerInfo,
)
from convclass.dataset.reader import file_sha256, iter_chunks
from convclass.errors import InsufficientData, InvalidInput
from convclass.feedback.labels import final_label
from convclass.layout import SPLITS, Split
from convclass.records import ExportRecord
from convclass.tokenization import (
    DEFAULT_MAX_LENGTH,
    DEFAULT_VOCAB_SIZE,
    SPECIAL_TOKENS,
    encode_texts,
    load_base_tokenizer,
    save_tokenizer,
    tokenizer_sha256,
    train_tokenizer,
)

#: Each kept label needs one example per split.
MIN_EXAMPLES_FLOOR = len(SPLITS)

SPLIT_SCHEMA = pa.schema(
    [
        pa.field("conversation_id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("label", pa.string(), nullable=False),
        pa.field("label_id", pa.int32(), nullable=False),
        pa.field("input_ids", pa.list_(pa.int32()), nullable=False),
        pa.field("attention_mask", pa.list_(pa.int32()), nullable=False),
    ]
)
_SPILL_SCHEMA = pa.schema(
    [pa.field("conversation_id", pa.string()), pa.field("text", pa.string()), pa.field("label", pa.string())]
)
_DEDUP_SPACE_RE = re.compile(r"\s+")


@dataclass(frozen=True)
class BuildOptions:
    """How a dataset is built; every field is recorded in the manifest."""

    label_field: str
    min_examples_per_label: int = 10
    min_total_examples: int = 20
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 13
    max_chars: int = DEFAULT_MAX_CHARS
    max_length: int = DEFAULT_MAX_LENGTH
    vocab_size: int = DEFAULT_VOCAB_SIZE
    #: Use this base model's tokenizer (a directory with tokenizer.json) instead of training one.
    base_tokenizer_dir: Path | None = None
    #: Records per chunk: the unit of memory use.
    chunk_size: int = 2000
    tenant: str | None = None
    classifier: str | None = None
    run_id: str | None = None
    #: Conversation id → the label agents confirmed (convclass.feedback): it wins over the exported label.
    confirmed_labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.ratios) != 3 or any(r <= 0 for r in self.ratios) or abs(sum(self.ratios) - 1) > 1e-6:
            raise InvalidInput("split ratios must be three positive numbers that sum to 1")
        if self.min_examples_per_label < 1 or self.chunk_size < 1:
            raise InvalidInput("min_examples_per_label and chunk_size must be positive")


class _Pass1:
    """State of the reading pass: counts, per-row keys, the spill writer."""

    def __init__(self, spill: Path, options: BuildOptions) -> None:
        self.options = options
        self.counts = RecordCounts()
        self.stats = CleaningStats()
        self.writer = pq.ParquetWriter(str(spill), _SPILL_SCHEMA)
        self.hashes: list[np.ndarray] = []
        self.codes: list[np.ndarray] = []
        self.label_codes: dict[str, int] = {}

    def add_chunk(self, chunk: list[dict[str, Any] | None]) -> int:
        ids: list[str] = []
        texts: list[str] = []
        labels: list[str] = []
        hashes: list[int] = []
        codes: list[int] = []
        for raw in chunk:
            row = self._clean(raw)
            if row is None:
                continue
            conversation_id, text, label = row
            ids.append(conversation_id)
            texts.append(text)
            labels.append(label)
            hashes.append(_dedup_key(text))
            codes.append(self.label_codes.setdefault(label, len(self.label_codes)))
        if ids:
            table = pa.Table.from_arrays([ids, texts, labels], schema=_SPILL_SCHEMA)
            self.writer.write_table(table)
            self.hashes.append(np.array(hashes, dtype=np.uint64))
            self.codes.append(np.array(codes, dtype=np.int32))
        return len(chunk)

    def _clean(self, raw: dict[str, Any] | None) -> tuple[str, str, str] | None:
        self.counts.read += 1
        if raw is None:
            self.counts.invalid += 1
            return None
        try:
            record = ExportRecord.model_validate(raw)
        except ValidationError:
            self.counts.invalid += 1
            return None
        if self.options.tenant is not None and record.tenant_id != self.options.tenant:
            self.counts.wrong_tenant += 1
            return None
        exported = record.labels.get(self.options.label_field)
        label = (final_label(record, self.options.confirmed_labels, self.options.label_field) or "").strip()
        if label != (exported or "").strip():
            self.counts.labels_confirmed += 1
        if not label:
            self.counts.missing_label += 1
            return None
        cleaned = clean_email(
            record.subject, record.body, record.body_content_type, max_chars=self.options.max_chars
        )
        self._count(cleaned)
        if cleaned.empty:
            self.counts.empty_text += 1
            return None
        return record.conversation_id, cleaned.text, label

    def _count(self, cleaned: CleanedEmail) -> None:
        stats = self.stats
        stats.malformed_markup += cleaned.malformed_markup
        stats.broken_encoding += cleaned.broken_encoding
        stats.truncated += cleaned.truncated
        stats.quote_stripped += cleaned.quote_stripped
        stats.signature_stripped += cleaned.signature_stripped
        stats.disclaimer_stripped += cleaned.disclaimer_stripped
        for token, n in cleaned.pii_counts.items():
            stats.pii_masked[token] = stats.pii_masked.get(token, 0) + n


def _dedup_key(text: str) -> int:
    """64-bit hash of the text ignoring case and whitespace (near-identical resends collide)."""
    normal = _DEDUP_SPACE_RE.sub(" ", text.casefold()).strip()
    return int.from_bytes(hashlib.blake2b(normal.encode("utf-8"), digest_size=8).digest(), "little")


def build_dataset(inputs: Sequence[Path], output_dir: Path, options: BuildOptions) -> DatasetManifest:
    """Build the dataset into ``output_dir``: split Parquet files, ``tokenizer.json`` and ``manifest.json``.

    Raises ``InsufficientData`` (after writing a manifest with ``status: insufficient_data`` that says why)
    when fewer than two labels or fewer than ``min_total_examples`` examples remain, and ``InvalidInput`` for
    an input file that cannot be read at all.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="convclass-spill-") as scratch:
        spill = Path(scratch) / "cleaned.parquet"
        state = _Pass1(spill, options)
        input_files = []
        try:
            for path in inputs:
                records = sum(state.add_chunk(chunk) for chunk in iter_chunks(path, options.chunk_size))
                input_files.append(
                    InputFile(
                        name=path.name, bytes=path.stat().st_size, sha256=file_sha256(path), records=records
                    )
                )
        finally:
            state.writer.close()
        labels_by_code = list(state.label_codes)
        hashes = np.concatenate(state.hashes) if state.hashes else np.zeros(0, dtype=np.uint64)
        codes = np.concatenate(state.codes) if state.codes else np.zeros(0, dtype=np.int32)
        assignment, conflicts, dropped = _assign_splits(hashes, codes, labels_by_code, state.counts, options)
        kept_labels = sorted({labels_by_code[c] for c in np.unique(codes[assignment >= 0])})
        manifest_args: dict[str, Any] = {
            "tenant": options.tenant,
            "classifier": options.classifier,
            "run_id": options.run_id,
            "label_field": options.label_field,
            "cleaning_version": CLEANING_VERSION,
            "max_chars": options.max_chars,
            "created_at": started,
            "dropped_labels": dropped,
            "duplicate_label_conflicts": conflicts,
            "counts": state.counts,
            "cleaning": state.stats,
            "options": SplitOptions(
                seed=options.seed,
                ratios=dict(zip(SPLITS, options.ratios, strict=True)),
                min_examples_per_label=max(options.min_examples_per_label, MIN_EXAMPLES_FLOOR),
                min_total_examples=options.min_total_examples,
            ),
            "inputs": input_files,
        }
        kept = int((assignment >= 0).sum())
        if len(kept_labels) < 2 or kept < options.min_total_examples:
            state.counts.not_used, state.counts.kept = state.counts.kept, 0
            manifest = DatasetManifest(
                status="insufficient_data", labels=[], split_counts={s: {} for s in SPLITS}, **manifest_args
            )
            _write_manifest(manifest, output_dir)
            raise InsufficientData(
                f"{len(kept_labels)} label(s) and {kept} example(s) remain after cleaning, de-duplication "
                "and "
                f"dropping labels with fewer than {manifest.options.min_examples_per_label} examples; "
                f"need at least 2 labels and {options.min_total_examples} examples"
            )
        tokenizer, kind = _tokenizer(spill, assignment, options)
        split_counts, truncated = _write_splits(
            spill, assignment, tokenizer, kept_labels, output_dir, options
        )
    save_tokenizer(tokenizer, output_dir)
    base = options.base_tokenizer_dir
    manifest = DatasetManifest(
        status="ok",
        labels=kept_labels,
        split_counts=split_counts,
        tokenizer=TokenizerInfo(
            kind=kind,
            vocab_size=tokenizer.get_vocab_size(),
            max_length=options.max_length,
            sha256=tokenizer_sha256(tokenizer),
            special_tokens=list(SPECIAL_TOKENS),
            base=base.name if base is not None else None,
            sequences_truncated=truncated,
        ),
        **manifest_args,
    )
    _write_manifest(manifest, output_dir)
    return manifest


def _assign_splits(
    hashes: np.ndarray,
    codes: np.ndarray,
    labels_by_code: list[str],
    counts: RecordCounts,
    options: BuildOptions,
) -> tuple[np.ndarray, int, dict[str, int]]:
    """Return per-row split (0/1/2, -1 when dropped), label conflicts among duplicates, dropped labels."""
    assignment = np.full(len(hashes), -1, dtype=np.int8)
    _, first = np.unique(hashes, return_index=True)
    unique = np.zeros(len(hashes), dtype=bool)
    unique[first] = True
    counts.duplicates = int(len(hashes) - len(first))
    # A duplicate whose label differs from the kept copy's: kept copy wins, conflict is reported.
    order = np.argsort(hashes, kind="stable")
    sorted_hashes, sorted_codes = hashes[order], codes[order]
    group_start = (
        np.r_[True, sorted_hashes[1:] != sorted_hashes[:-1]] if len(order) else np.zeros(0, dtype=bool)
    )
    first_code = sorted_codes[np.maximum.accumulate(np.where(group_start, np.arange(len(order)), 0))]
    conflicts = int((sorted_codes != first_code).sum())

    minimum = max(options.min_examples_per_label, MIN_EXAMPLES_FLOOR)
    per_label = np.bincount(codes[unique], minlength=len(labels_by_code))
    rng = np.random.default_rng(options.seed)
    dropped: dict[str, int] = {}
    for code in sorted(range(len(labels_by_code)), key=lambda c: labels_by_code[c]):
        rows = np.flatnonzero(unique & (codes == code))
        if len(rows) == 0:
            continue
        if per_label[code] < minimum:
            dropped[labels_by_code[code]] = int(per_label[code])
            counts.rare_label += len(rows)
            continue
        rows = rng.permutation(rows)
        n_val = max(1, round(len(rows) * options.ratios[1]))
        n_test = max(1, round(len(rows) * options.ratios[2]))
        assignment[rows[:n_test]] = 2
        assignment[rows[n_test : n_test + n_val]] = 1
        assignment[rows[n_test + n_val :]] = 0
        counts.kept += len(rows)
    return assignment, conflicts, dropped


def _spill_batches(spill: Path, chunk_size: int) -> Iterator[tuple[int, pa.RecordBatch]]:
    offset = 0
    for batch in pq.ParquetFile(str(spill)).iter_batches(batch_size=chunk_size):
        yield offset, batch
        offset += batch.num_rows


def _tokenizer(spill: Path, assignment: np.ndarray, options: BuildOptions) -> tuple[Tokenizer, str]:
    if options.base_tokenizer_dir is not None:
        return load_base_tokenizer(options.base_tokenizer_dir), "base"

    def training_texts() -> Iterator[str]:
        for offset, batch in _spill_batches(spill, options.chunk_size):
            in_train = assignment[offset : offset + batch.num_rows] == 0
            texts = batch.column("text").to_pylist()
            yield from (text for text, train in zip(texts, in_train, strict=True) if train)

    return train_tokenizer(training_texts(), vocab_size=options.vocab_size), "wordpiece"


def _write_splits(
    spill: Path,
    assignment: np.ndarray,
    tokenizer: Tokenizer,
    labels: list[str],
    output_dir: Path,
    options: BuildOptions,
) -> tuple[dict[Split, dict[str, int]], int]:
    label_index = {label: i for i, label in enumerate(labels)}
    split_counts: dict[Split, dict[str, int]] = {split: {} for split in SPLITS}
    truncated = 0
    writers = {
        split: pq.ParquetWriter(str(output_dir / SPLIT_FILES[split]), SPLIT_SCHEMA) for split in SPLITS
    }
    try:
        for offset, batch in _spill_batches(spill, options.chunk_size):
            where = assignment[offset : offset + batch.num_rows]
            for index, split in enumerate(SPLITS):
                rows = np.flatnonzero(where == index)
                if len(rows) == 0:
                    continue
                part = batch.take(pa.array(rows))
                texts = part.column("text").to_pylist()
                label_names = part.column("label").to_pylist()
                encoded = encode_texts(tokenizer, texts, options.max_length)
                truncated += int((encoded["attention_mask"][:, -1] == 1).sum())
                label_ids = np.array([label_index[name] for name in label_names], dtype=np.int32)
                table = pa.Table.from_arrays(
                    [
                        part.column("conversation_id"),
                        part.column("text"),
                        part.column("label"),
                        pa.array(label_ids),
                        _list_column(encoded["input_ids"]),
                        _list_column(encoded["attention_mask"]),
                    ],
                    schema=SPLIT_SCHEMA,
                )
                writers[split].write_table(table)
                per_label = split_counts[split]
                for name in label_names:
                    per_label[name] = per_label.get(name, 0) + 1
    finally:
        for writer in writers.values():
            writer.close()
    return {split: dict(sorted(per_label.items())) for split, per_label in split_counts.items()}, truncated


def _list_column(matrix: np.ndarray) -> pa.ListArray:
    """A 2-D int32 matrix as a list<int32> column, without a Python loop."""
    rows, width = matrix.shape
    offsets = pa.array(np.arange(0, (rows + 1) * width, width, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(matrix.reshape(-1)))


def _write_manifest(manifest: DatasetManifest, output_dir: Path) -> None:
    (output_dir / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
