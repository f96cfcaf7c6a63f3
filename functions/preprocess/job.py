"""The preprocess step against S3: read the export the manifest names, build the dataset, upload it.

Plain boto3 calls, so the same code runs on AWS and against moto. Only ids, keys and counts are returned or
logged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from convclass import layout
from convclass.cleaning import CLEANING_VERSION
from convclass.dataset import MANIFEST_FILE, SPLIT_FILES, BuildOptions, DatasetManifest, build_dataset
from convclass.errors import InsufficientData, InvalidInput
from convclass.events import PreprocessStep
from convclass.export.manifest import ExportManifest
from convclass.layout import TOKENIZER_FILE


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


def parse_request(event: Any) -> PreprocessStep:
    try:
        return PreprocessStep.model_validate(event)
    except ValidationError as error:
        # Field locations and messages only: values never reach the error text (and so never the logs).
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc']) or '<event>'}: {item['msg']}" for item in error.errors()
        )
        raise InvalidInput(f"preprocess event is invalid: {problems}") from None


def run(request: PreprocessStep, s3: Any, scratch: Path, environ: Mapping[str, str]) -> PreprocessResult:
    """Download and verify the export parts, build the dataset in ``scratch``, upload it (manifest last)."""
    where = layout.ClassifierLayout(request.tenant, request.classifier)
    if request.output_prefix != where.dataset_prefix(request.run_id):
        raise InvalidInput(
            "output_prefix does not match the dataset prefix of this tenant, classifier and run"
        )
    if not request.input_prefix.startswith(where.prefix):
        raise InvalidInput("input_prefix lies outside this tenant's classifier prefix")
    deployed = environ.get("CONVCLASS_DATA_BUCKET")
    if deployed and deployed != request.bucket:
        raise InvalidInput("preprocess may only use the data bucket it is deployed with")
    export = _read_export_manifest(s3, request)
    inputs = _download_parts(s3, request, export, scratch / "input")
    options = BuildOptions(
        label_field=request.label_field,
        min_examples_per_label=request.min_examples_per_label,
        tenant=request.tenant,
        classifier=request.classifier,
        run_id=request.run_id,
        base_tokenizer_dir=Path(environ["CONVCLASS_BASE_TOKENIZER_DIR"])
        if environ.get("CONVCLASS_BASE_TOKENIZER_DIR")
        else None,
    )
    output = scratch / "output"
    upload = _Uploader(s3, request.bucket, environ.get("CONVCLASS_KMS_KEY_ARN") or None)
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
    return _result(request, manifest, manifest_key, tokenizer_key, split_keys)


def _result(
    request: PreprocessStep,
    manifest: DatasetManifest,
    manifest_key: str,
    tokenizer_key: str,
    split_keys: dict[str, str],
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


def _download_parts(s3: Any, request: PreprocessStep, export: ExportManifest, folder: Path) -> list[Path]:
    """Download every part the manifest names and check its SHA-256 (a partial or altered part is refused)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, part in enumerate(export.parts):
        if not part.key.startswith(request.input_prefix):
            raise InvalidInput("an export part lies outside input_prefix")
        path = folder / f"part-{index:05d}{Path(part.key).suffix or '.parquet'}"
        s3.download_file(request.bucket, part.key, str(path))
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != part.sha256:
            raise InvalidInput(f"export part {index} does not match the SHA-256 in the export manifest")
        paths.append(path)
    return paths


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
