"""The report's summary says when to auto-apply and which labels have too few emails to trust."""

from __future__ import annotations

from pathlib import Path

from convclass.artifacts import ArtifactInfo, ConfidenceMetrics, DataSizes, LabelMetrics, ModelMetrics
from convclass.training.report import write_report


def _metrics(confidence: ConfidenceMetrics | None) -> ModelMetrics:
    return ModelMetrics(
        accuracy=0.9,
        macro_f1=0.85,
        weighted_f1=0.9,
        expected_calibration_error=0.08,
        per_label={
            "billing": LabelMetrics(precision=0.9, recall=0.9, f1=0.9, support=40),
            "refund": LabelMetrics(precision=1.0, recall=0.5, f1=0.667, support=4),
        },
        labels=("billing", "refund"),
        confusion_matrix=((36, 4), (2, 2)),
        data=DataSizes(train=200, validation=44, test=44, n_labels=2),
        training_seconds=3.0,
        epochs=1,
        architecture="cnn",
        confidence=confidence,
    )


def _summary(tmp_path: Path, metrics: ModelMetrics) -> str:
    info = ArtifactInfo(model_version=1, architecture="cnn", max_length=32, n_labels=2, cleaning_version="v1")
    write_report(tmp_path, history=[{"epoch": 1, "loss": 0.5, "accuracy": 0.8}], metrics=metrics, info=info)
    return (tmp_path / "summary.md").read_text()


def test_summary_gives_the_threshold_its_coverage_and_the_labels_too_small_to_trust(tmp_path: Path) -> None:
    confidence = ConfidenceMetrics(
        temperature=1.7,
        target_precision=0.95,
        auto_apply_threshold=0.8,
        validation_ece_before=0.12,
        validation_ece_after=0.03,
        ece=0.04,
        coverage=0.62,
        precision=0.96,
    )
    summary = _summary(tmp_path, _metrics(confidence))
    assert (
        "| auto-apply | confidence >= 0.800: 62.0% of test emails, 96.0% of them right (target 95%) |"
        in summary
    )
    assert "| validation ECE before / after | 0.1200 / 0.0300 |" in summary
    assert "| labels with under 10 test emails | 1 (refund): too few to trust their figures" in summary


def test_summary_says_when_nothing_is_auto_applied(tmp_path: Path) -> None:
    assert "| auto-apply | never (no validation split" in _summary(tmp_path, _metrics(None))
