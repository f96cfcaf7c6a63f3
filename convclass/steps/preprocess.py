"""``Preprocess``: merge the run's export into the classifier's training history, build the
dataset from that history, upload both.

The history the export continued (named by the export manifest; none when the export read all history) and
the export's parts are merged by conversation id (:mod:`convclass.dataset.history`) into the run's own
history, written under the run's export prefix. It becomes the one the next run continues only when this run
succeeds (the export function's ``commit`` action writes the watermark naming it), so a failed run leaves
the committed history untouched.

Plain boto3 calls, so the same code runs on AWS and against moto. Only ids, keys and counts are returned or
logged.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from convclass import layout
from convclass.cleaning import CLEANING_VERSION
from convclass.dataset import MANIFEST_FILE, SPLIT_FILES, BuildOptions, DatasetManifest, build_dataset
from convclass.dataset.history import HistoryManifest, compact
from convclass.dataset.reader import file_sha256
from convclass.deployment import KMS_KEY_ENV
from convclass.errors import InsufficientData, InvalidInput
from convclass.events import PreprocessStep
from convclass.export.manifest import ExportManifest, PartInfo
from convclass.feedback.labels import confirmed_labels
from convclass.feedback.store import FeedbackStore
from convclass.layout import TOKENIZER_FILE
from convclass.steps.contract import Step, StepEnvironment, run_ids


class PreprocessResult(BaseModel):
    """What the state machine gets back: pointers and counts (far below the 256 KB payload limit)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket: str
    dataset_prefix: str
    manifest_key: str
    tokenizer_key: str
    split_keys: dict[str, str]
    split_sizes: dict[str, int]
    labels: int
    records_read: int
    records_kept: int
    cleaning_version: str
    #: The run's training history (committed as the classifier's when the run succeeds) and its size.
    history_manifest_key: str
    history_records: int


def run(request: PreprocessStep, env: StepEnvironment) -> PreprocessResult:
    """The dataset of this run, built in a scratch folder that is gone when the step returns."""
    with tempfile.TemporaryDirectory(prefix="convclass-preprocess-") as scratch:
        return build(request, env.client("s3"), Path(scratch), env.environ)


def build(request: PreprocessStep, s3: Any, scratch: Path, environ: Mapping[str, str]) -> PreprocessResult:
    """Download and verify the export parts, build the dataset in ``scratch``, upload it (manifest last)."""
    where = layout.ClassifierLayout(request.tenant, request.classifier)
    if request.output_prefix != where.dataset_prefix(request.run_id):
        raise InvalidInput(
            "output_prefix does not match the dataset prefix of this tenant, classifier and run"
        )
    if not request.input_prefix.startswith(where.prefix):
        raise InvalidInput("input_prefix lies outside this tenant's classifier prefix")
    export = _read_export_manifest(s3, request)
    upload = _Uploader(s3, request.bucket, environ.get(KMS_KEY_ENV) or None)
    history, inputs = _merge_history(s3, request, where, export, scratch, upload)
    store = FeedbackStore(s3, request.bucket, environ.get(KMS_KEY_ENV) or "")
    confirmed = confirmed_labels(
        store.confirmations(request.tenant, request.classifier), request.tenant, request.classifier
    )
    options = BuildOptions(
        label_field=request.label_field,
        min_examples_per_label=request.min_examples_per_label,
        tenant=request.tenant,
        classifier=request.classifier,
        run_id=request.run_id,
        confirmed_labels=confirmed,
        base_tokenizer_dir=Path(environ["CONVCLASS_BASE_TOKENIZER_DIR"])
        if environ.get("CONVCLASS_BASE_TOKENIZER_DIR")
        else None,
    )
    output = scratch / "output"
    manifest_key = where.dataset_manifest_key(request.run_id)
    try:
        manifest = build_dataset(inputs, output, options)
    except InsufficientData:
        upload(output / MANIFEST_FILE, manifest_key, "application/json")
        raise
    split_keys: dict[str, str] = {split: where.split_key(request.run_id, split) for split in SPLIT_FILES}
    for split, file in SPLIT_FILES.items():
        upload(output / file, split_keys[split], "application/vnd.apache.parquet")
    tokenizer_key = where.tokenizer_key(request.run_id)
    upload(output / TOKENIZER_FILE, tokenizer_key, "application/json")
    upload(output / MANIFEST_FILE, manifest_key, "application/json")  # last: its presence marks completion
    return _result(request, manifest, manifest_key, tokenizer_key, split_keys, history)


def _result(
    request: PreprocessStep,
    manifest: DatasetManifest,
    manifest_key: str,
    tokenizer_key: str,
    split_keys: dict[str, str],
    history: HistoryManifest,
) -> PreprocessResult:
    return PreprocessResult(
        bucket=request.bucket,
        dataset_prefix=request.output_prefix,
        manifest_key=manifest_key,
        tokenizer_key=tokenizer_key,
        split_keys=split_keys,
        split_sizes={split: sum(per_label.values()) for split, per_label in manifest.split_counts.items()},
        labels=len(manifest.labels),
        records_read=manifest.counts.read,
        records_kept=manifest.counts.kept,
        cleaning_version=CLEANING_VERSION,
        history_manifest_key=layout.ClassifierLayout(request.tenant, request.classifier).history_manifest_key(
            request.run_id
        ),
        history_records=history.counts.kept,
    )


def _read_export_manifest(s3: Any, request: PreprocessStep) -> ExportManifest:
    if not request.input_manifest_key.startswith(request.input_prefix):
        raise InvalidInput("input_manifest_key lies outside input_prefix")
    try:
        body = s3.get_object(Bucket=request.bucket, Key=request.input_manifest_key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        raise InvalidInput("the export manifest does not exist: the export did not complete") from None
    try:
        manifest = ExportManifest.model_validate_json(body)
    except ValidationError:
        raise InvalidInput("the export manifest does not match the export manifest schema") from None
    if (manifest.tenant, manifest.classifier, manifest.run_id) != (
        request.tenant,
        request.classifier,
        request.run_id,
    ):
        raise InvalidInput("the export manifest belongs to another tenant, classifier or run")
    return manifest


def _download_parts(
    s3: Any, bucket: str, parts: list[PartInfo], allowed_prefix: str, folder: Path, what: str
) -> list[Path]:
    """Download every part a manifest names and check its SHA-256 (a partial or altered part is refused)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, part in enumerate(parts):
        if not part.key.startswith(allowed_prefix):
            raise InvalidInput(f"a {what} part lies outside its prefix")
        path = folder / f"part-{index:05d}{Path(part.key).suffix or '.parquet'}"
        s3.download_file(bucket, part.key, str(path))
        if file_sha256(path) != part.sha256:
            raise InvalidInput(f"{what} part {index} does not match the SHA-256 in its manifest")
        paths.append(path)
    return paths


def _read_history_manifest(
    s3: Any, request: PreprocessStep, where: layout.ClassifierLayout, key: str
) -> HistoryManifest:
    if not (
        key.startswith(where.area_prefix(layout.EXPORTS))
        and key.endswith(f"/{layout.HISTORY_DIR}/manifest.json")
    ):
        raise InvalidInput("the export continues a history outside this tenant's classifier prefix")
    try:
        body = s3.get_object(Bucket=request.bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        raise InvalidInput("the history the export continues no longer exists; run a full export") from None
    try:
        manifest = HistoryManifest.model_validate_json(body)
    except ValidationError:
        raise InvalidInput("the history manifest does not match the history manifest schema") from None
    if (manifest.tenant, manifest.classifier) != (request.tenant, request.classifier):
        raise InvalidInput("the history manifest belongs to another tenant or classifier")
    return manifest


def _merge_history(
    s3: Any,
    request: PreprocessStep,
    where: layout.ClassifierLayout,
    export: ExportManifest,
    scratch: Path,
    upload: _Uploader,
) -> tuple[HistoryManifest, list[Path]]:
    """Merge the history the export continues with the export; upload the result (manifest last).

    Returns the history's manifest and its local parts (what the dataset is built from)."""
    base_files: list[Path] = []
    if export.history_base is not None:
        base = _read_history_manifest(s3, request, where, export.history_base)
        base_prefix = export.history_base.removesuffix("manifest.json")
        base_files = _download_parts(s3, request.bucket, base.parts, base_prefix, scratch / "base", "history")
    exported = _download_parts(
        s3, request.bucket, export.parts, request.input_prefix, scratch / "input", "export"
    )
    merged = compact(base_files, exported, scratch / "history")
    parts = []
    for index, path in enumerate(merged.files):
        key = where.history_part_key(request.run_id, index)
        upload(path, key, "application/vnd.apache.parquet")
        records = pq.ParquetFile(str(path)).metadata.num_rows
        parts.append(PartInfo(key=key, records=records, bytes=path.stat().st_size, sha256=file_sha256(path)))
    manifest = HistoryManifest(
        tenant=request.tenant,
        classifier=request.classifier,
        run_id=request.run_id,
        label_field=request.label_field,
        base=export.history_base,
        export_manifest_key=request.input_manifest_key,
        counts=merged.counts,
        parts=parts,
        created_at=datetime.now(UTC),
    )
    manifest_path = scratch / "history-manifest.json"
    manifest_path.write_text(manifest.model_dump_json(), encoding="utf-8")
    upload(manifest_path, where.history_manifest_key(request.run_id), "application/json")
    return manifest, merged.files


class _Uploader:
    def __init__(self, s3: Any, bucket: str, kms_key_id: str | None) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._extra: dict[str, str] = {}
        if kms_key_id:
            self._extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id}

    def __call__(self, path: Path, key: str, content_type: str) -> None:
        self._s3.upload_file(
            str(path), self._bucket, key, ExtraArgs={"ContentType": content_type, **self._extra}
        )


STEP = Step(
    name="preprocess",
    schema=TypeAdapter(PreprocessStep),
    run=run,
    buckets=lambda request: [request.bucket],
    log_keys=run_ids,
    summary=lambda result: {
        "records_read": result.records_read,
        "records_kept": result.records_kept,
        "labels": result.labels,
    },
)
