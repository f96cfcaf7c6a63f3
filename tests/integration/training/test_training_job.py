"""The training entrypoint as SageMaker runs it: a process over an /opt/ml-shaped directory."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from training_support import FAST, job_root, quiet_env, run_job, train_command

from convclass.artifacts import REPORT_FILES, load_artifact
from convclass.cleaning import CLEANING_VERSION
from convclass.tokenization import encode_texts, load_tokenizer
from convclass.training import metric_definitions
from convclass.training.data import read_split

# One worker runs the whole module so the trained fast job (module fixture) is built once under xdist.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("training-job")]

Job = tuple[Path, subprocess.CompletedProcess[str]]


def test_fast_job_writes_the_whole_artifact(fast_job: Job) -> None:
    root, result = fast_job
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (root / "output" / "failure").exists()
    artifact = load_artifact(root / "model", cleaning_version=CLEANING_VERSION, require_metrics=True)
    metrics = artifact.metrics
    assert metrics is not None
    assert artifact.info.architecture == "cnn"
    assert artifact.info.max_length == 48  # from the dataset manifest
    assert metrics.epochs == 4
    assert metrics.data.n_labels == len(artifact.labels) >= 5
    # The sample tenant's intents are easy to tell apart; chance level is below 0.2.
    assert metrics.accuracy > 0.8
    assert sum(m.support for m in metrics.per_label.values()) == metrics.data.test
    for name in REPORT_FILES:
        assert (artifact.report_dir / name).stat().st_size > 0
    assert (artifact.report_dir / "training_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert (root / "checkpoints" / "epoch-0004" / "state.json").is_file()


def test_confidence_is_fitted_on_validation_and_stored_for_serving(fast_job: Job) -> None:
    root, result = fast_job
    assert result.returncode == 0, result.stderr[-3000:]
    artifact = load_artifact(root / "model", cleaning_version=CLEANING_VERSION, require_metrics=True)
    metrics = artifact.metrics
    assert metrics is not None
    assert metrics.confidence is not None
    assert metrics.validation_macro_f1 is not None
    assert 0 < metrics.validation_macro_f1 <= 1
    figures = metrics.confidence
    assert figures.target_precision == 0.95
    assert figures.temperature > 0
    # Fitted to minimise validation NLL: never worse calibrated than the raw model by a wide margin.
    assert figures.validation_ece_after <= figures.validation_ece_before + 0.02
    if figures.auto_apply_threshold is None:
        assert figures.coverage == 0.0
    else:
        assert 0 < figures.coverage <= 1
    # artifact.json carries exactly what serving needs, the same values as metrics.json reports.
    assert artifact.info.confidence is not None
    assert artifact.info.confidence.model_dump() == figures.model_dump(
        include={"temperature", "target_precision", "auto_apply_threshold"}
    )


def test_metric_definitions_pick_up_the_job_log(fast_job: Job) -> None:
    _, result = fast_job
    found: dict[str, list[float]] = {}
    for definition in metric_definitions():
        pattern = re.compile(definition["Regex"])
        for line in result.stdout.splitlines():
            match = pattern.search(line)
            if match:
                found.setdefault(definition["Name"], []).append(float(match.group(1)))
    assert len(found["train:loss"]) == 4
    assert found["train:epoch"] == [1.0, 2.0, 3.0, 4.0]
    assert len(found["validation:accuracy"]) == 4
    root = fast_job[0]
    metrics = json.loads((root / "model" / "metrics.json").read_text())
    assert found["test:accuracy"] == [pytest.approx(metrics["accuracy"], abs=1e-5)]
    assert found["test:macro_f1"] == [pytest.approx(metrics["macro_f1"], abs=1e-5)]


def test_saved_model_predicts_what_the_trained_model_predicted(fast_job: Job, dataset: Path) -> None:
    """metrics.json comes from the in-memory model; the SavedModel must reproduce its confusion matrix."""
    import tensorflow as tf

    root, _ = fast_job
    artifact = load_artifact(root / "model", require_metrics=True)
    assert artifact.metrics is not None
    test = read_split(dataset / "test.parquet")
    encoded = encode_texts(
        load_tokenizer(artifact.tokenizer_path), list(test.texts), artifact.info.max_length
    )
    serving = tf.saved_model.load(str(artifact.saved_model_dir)).signatures["serving_default"]
    outputs = serving(
        input_ids=tf.constant(encoded["input_ids"]), attention_mask=tf.constant(encoded["attention_mask"])
    )
    probabilities = outputs["probabilities"].numpy()
    assert probabilities.dtype == np.float32
    assert probabilities.shape == (len(test), artifact.info.n_labels)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    index = {label: i for i, label in enumerate(artifact.labels)}
    truth = np.array([index[label] for label in test.labels])
    matrix = np.zeros((len(index), len(index)), dtype=int)
    np.add.at(matrix, (truth, probabilities.argmax(axis=1)), 1)
    assert matrix.tolist() == [list(row) for row in artifact.metrics.confusion_matrix]


def test_interrupted_job_resumes_from_its_checkpoint(tmp_path: Path, dataset: Path, fast_job: Job) -> None:
    """SIGTERM (spot interruption) after epoch 1 → exit != 0 + checkpoint; the restart finishes the run and
    ends with the same model as the uninterrupted job."""
    root = job_root(tmp_path / "job", dataset, FAST, per_channel=True)
    process = subprocess.Popen(
        train_command(root), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=quiet_env()
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("convclass-epoch epoch=1 "):
            process.send_signal(signal.SIGTERM)
            break
    lines.extend(process.stdout)
    assert process.wait(timeout=60) != 0
    failure = (root / "output" / "failure").read_text()
    assert failure.startswith("TrainingInterrupted:")
    assert failure.count("\n") == 1
    assert not (root / "model" / "metrics.json").exists()
    stopped_at = max(int(m.group(1)) for m in re.finditer(r"convclass-epoch epoch=(\d+) ", "".join(lines)))
    assert stopped_at < 4

    (root / "output" / "failure").unlink()
    resumed = run_job(root)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed from checkpoint epoch-{stopped_at:04d}" in resumed.stderr
    epochs_run = [int(e) for e in re.findall(r"convclass-epoch epoch=(\d+) ", resumed.stdout)]
    assert epochs_run == list(range(stopped_at + 1, 5))

    reference = json.loads((fast_job[0] / "model" / "metrics.json").read_text())
    metrics = json.loads((root / "model" / "metrics.json").read_text())
    assert metrics["epochs"] == 4
    assert metrics["confusion_matrix"] == reference["confusion_matrix"]
    assert metrics["expected_calibration_error"] == pytest.approx(
        reference["expected_calibration_error"], abs=1e-6
    )


@pytest.mark.parametrize(
    ("hyperparameters", "named"),
    [
        ({"architecture": "cnn", "learning_rat": "0.1"}, "learning_rat"),
        ({"architecture": "cnn", "epochs": "three"}, "epochs"),
        ({"architecture": "transformer"}, "architecture"),
    ],
)
def test_bad_hyperparameters_fail_the_job_with_a_named_cause(
    tmp_path: Path, dataset: Path, hyperparameters: dict[str, str], named: str
) -> None:
    root = job_root(tmp_path / "job", dataset, hyperparameters)
    result = run_job(root, timeout=60)
    assert result.returncode != 0
    failure = (root / "output" / "failure").read_text()
    assert failure.startswith("InvalidInput:")
    assert named in failure
    assert failure.count("\n") == 1
    assert not any((root / "model").glob("*"))


def test_missing_channel_fails_naming_it(tmp_path: Path, dataset: Path) -> None:
    root = job_root(tmp_path / "job", dataset, FAST, per_channel=True)
    (root / "input" / "data" / "validation" / "validation.parquet").unlink()
    result = run_job(root, timeout=60)
    assert result.returncode != 0
    assert "'validation'" in (root / "output" / "failure").read_text()
