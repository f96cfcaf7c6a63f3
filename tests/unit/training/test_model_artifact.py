"""The artifact contract read without TensorFlow (as the serving image does)."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from convclass.artifacts import (
    ArtifactInfo,
    DataSizes,
    LabelMap,
    LabelMetrics,
    ModelMetrics,
    extract_model_tar,
    load_artifact,
    pack_model_dir,
    read_metrics,
    write_json_model,
)
from convclass.errors import IncompatibleModel, InvalidInput

LABELS = ("billing", "refund")


def _metrics(**overrides: object) -> ModelMetrics:
    values: dict[str, object] = {
        "accuracy": 0.75,
        "macro_f1": 0.73,
        "weighted_f1": 0.74,
        "expected_calibration_error": 0.05,
        "per_label": {
            "billing": LabelMetrics(precision=1.0, recall=0.5, f1=0.667, support=2),
            "refund": LabelMetrics(precision=0.667, recall=1.0, f1=0.8, support=2),
        },
        "labels": LABELS,
        "confusion_matrix": ((1, 1), (0, 2)),
        "data": DataSizes(train=10, validation=2, test=4, n_labels=2),
        "training_seconds": 1.5,
        "epochs": 2,
        "architecture": "cnn",
    }
    values.update(overrides)
    return ModelMetrics.model_validate(values)


def _artifact(root: Path, *, cleaning_version: str = "v1") -> Path:
    (root / "model" / "1").mkdir(parents=True)
    (root / "model" / "1" / "saved_model.pb").write_bytes(b"graph")
    (root / "tokenizer.json").write_text("{}")
    write_json_model(root / "labels.json", LabelMap(labels=LABELS))
    write_json_model(
        root / "artifact.json",
        ArtifactInfo(
            model_version=1, architecture="cnn", max_length=32, n_labels=2, cleaning_version=cleaning_version
        ),
    )
    write_json_model(root / "metrics.json", _metrics())
    return root


def test_valid_artifact_loads_without_tensorflow(tmp_path: Path) -> None:
    artifact = load_artifact(_artifact(tmp_path / "a"), cleaning_version="v1", require_metrics=True)
    assert artifact.labels == LABELS
    assert artifact.saved_model_dir == tmp_path / "a" / "model" / "1"
    assert artifact.info.signature.inputs == ("input_ids", "attention_mask")
    assert artifact.metrics == _metrics()


def test_reading_artifacts_does_not_import_tensorflow() -> None:
    code = "import sys, convclass.artifacts, convclass.training; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_other_cleaning_version_is_incompatible(tmp_path: Path) -> None:
    with pytest.raises(IncompatibleModel, match="cleaning version 'v1'"):
        load_artifact(_artifact(tmp_path / "a"), cleaning_version="v2")


@pytest.mark.parametrize(
    "missing", ["tokenizer.json", "labels.json", "artifact.json", "model/1/saved_model.pb"]
)
def test_missing_part_is_named(tmp_path: Path, missing: str) -> None:
    root = _artifact(tmp_path / "a")
    (root / missing).unlink()
    with pytest.raises(IncompatibleModel, match=missing.split("/")[-1]):
        load_artifact(root)


def test_label_count_must_match(tmp_path: Path) -> None:
    root = _artifact(tmp_path / "a")
    write_json_model(root / "labels.json", LabelMap(labels=("a", "b", "c")))
    with pytest.raises(IncompatibleModel, match="3 labels"):
        load_artifact(root)


def test_unknown_format_version_is_refused(tmp_path: Path) -> None:
    root = _artifact(tmp_path / "a")
    text = (root / "artifact.json").read_text().replace('"format_version": 1', '"format_version": 99')
    (root / "artifact.json").write_text(text)
    with pytest.raises(IncompatibleModel, match="format 99"):
        load_artifact(root)


def test_metrics_schema_checks_shapes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="2x2"):
        _metrics(confusion_matrix=((1, 1),))
    with pytest.raises(ValueError, match="per_label"):
        _metrics(labels=("billing", "other"))
    broken = tmp_path / "metrics.json"
    broken.write_text('{"accuracy": 2}')
    with pytest.raises(IncompatibleModel, match=r"metrics\.json is invalid"):
        read_metrics(broken)


def test_labels_must_be_unique() -> None:
    with pytest.raises(ValueError, match="unique"):
        LabelMap(labels=("a", "a"))


def test_pack_and_extract_round_trip(tmp_path: Path) -> None:
    root = _artifact(tmp_path / "a")
    archive = pack_model_dir(root, tmp_path / "model.tar.gz")
    with tarfile.open(archive) as tar:
        assert "artifact.json" in tar.getnames()
        assert "model/1/saved_model.pb" in tar.getnames()
    extracted = extract_model_tar(archive.read_bytes(), tmp_path / "out")
    assert load_artifact(extracted).labels == LABELS


def test_extract_refuses_paths_outside_the_target(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(InvalidInput, match="cannot be extracted"):
        extract_model_tar(buffer.getvalue(), tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()
