"""Held-out evaluation: the numbers in metrics.json that model comparison and the report use."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from convclass.artifacts import (
    Confidence,
    ConfidenceMetrics,
    DataSizes,
    LabelMetrics,
    ModelMetrics,
    PriorCorrection,
)
from convclass.calibration import apply_temperature, coverage_at, fit_temperature, precision_threshold

ECE_BINS = 15
#: Strengths of the logit adjustment tried on validation: 0 keeps the model as trained, 1 divides its
#: probabilities by the training prior (Menon et al., 2021), negative values lean back towards it (a
#: class-weighted model can over-predict its rare labels).
PRIOR_STRENGTHS = (-0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0)
#: A correction must beat no correction on validation macro-F1 by more than this to be kept.
PRIOR_MIN_GAIN = 0.002


def expected_calibration_error(probabilities: np.ndarray, y_true: np.ndarray, bins: int = ECE_BINS) -> float:
    """Weighted mean |accuracy - confidence| over equal-width confidence bins (Guo et al., 2017)."""
    if len(y_true) == 0:
        return 0.0
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == y_true).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            ece += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(min(1.0, ece))


def build_metrics(
    *,
    probabilities: np.ndarray,
    y_true: np.ndarray,
    labels: tuple[str, ...],
    data: DataSizes,
    training_seconds: float,
    epochs: int,
    architecture: str,
    versions: dict[str, str],
    evaluated_on: str,
) -> ModelMetrics:
    """Macro/weighted F1 average over the labels present in the split (true or predicted), as sklearn does."""
    n = len(labels)
    y_pred = probabilities.argmax(axis=1) if len(y_true) else np.zeros(0, dtype=np.int64)
    ids = list(range(n))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=ids, zero_division=0
    )
    per_label = {
        labels[i]: LabelMetrics(
            precision=float(precision[i]), recall=float(recall[i]), f1=float(f1[i]), support=int(support[i])
        )
        for i in ids
    }
    matrix = confusion_matrix(y_true, y_pred, labels=ids) if len(y_true) else np.zeros((n, n), dtype=int)
    return ModelMetrics.model_validate(
        {
            "evaluated_on": evaluated_on,
            "accuracy": float((y_pred == y_true).mean()) if len(y_true) else 0.0,
            "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
            "weighted_f1": float(f1_score(y_true, y_pred, average="weighted", zero_division=0)),
            "expected_calibration_error": expected_calibration_error(probabilities, y_true),
            "per_label": per_label,
            "labels": labels,
            "confusion_matrix": [[int(v) for v in row] for row in matrix],
            "data": data,
            "training_seconds": training_seconds,
            "epochs": epochs,
            "architecture": architecture,
            "versions": versions,
        }
    )


def macro_f1(probabilities: np.ndarray, y_true: np.ndarray, *, label_balanced: bool = False) -> float:
    """Macro-F1 of the argmax; ``label_balanced`` weighs each row by 1 / its label's count, so precision is
    measured as if every label were equally frequent (the figure does not depend on the split's label mix)."""
    if not len(y_true):
        return 0.0
    weights = None
    if label_balanced:
        counts = np.bincount(y_true)
        weights = 1.0 / counts[y_true]
    predicted = probabilities.argmax(axis=1)
    return float(f1_score(y_true, predicted, average="macro", zero_division=0, sample_weight=weights))


def calibrate(
    validation: np.ndarray,
    y_validation: np.ndarray,
    held_out: np.ndarray,
    y_held_out: np.ndarray,
    target: float,
) -> ConfidenceMetrics | None:
    """Fit the temperature and the auto-apply threshold on validation; measure both on the held-out split.

    ``None`` without validation rows: nothing to fit on that is not also what the figures are measured on.
    """
    if not len(y_validation):
        return None
    temperature = fit_temperature(validation, y_validation)
    scaled_validation = apply_temperature(validation, temperature)
    threshold = precision_threshold(scaled_validation, y_validation, target)
    scaled_held_out = apply_temperature(held_out, temperature)
    measured = coverage_at(scaled_held_out, y_held_out, threshold.threshold)
    return ConfidenceMetrics(
        temperature=temperature,
        target_precision=target,
        auto_apply_threshold=threshold.threshold,
        validation_ece_before=expected_calibration_error(validation, y_validation),
        validation_ece_after=expected_calibration_error(scaled_validation, y_validation),
        ece=expected_calibration_error(scaled_held_out, y_held_out),
        coverage=measured.coverage,
        precision=measured.precision,
    )


def with_validation_figures(
    metrics: ModelMetrics,
    *,
    validation: np.ndarray,
    y_validation: np.ndarray,
    held_out: np.ndarray,
    y_held_out: np.ndarray,
    target_precision: float,
) -> tuple[ModelMetrics, Confidence | None]:
    """Add validation macro-F1 and the calibration to ``metrics``; also return what artifact.json stores."""
    confidence = calibrate(validation, y_validation, held_out, y_held_out, target_precision)
    metrics = metrics.model_copy(
        update={
            "validation_macro_f1": macro_f1(validation, y_validation) if len(y_validation) else None,
            "confidence": confidence,
        }
    )
    if confidence is None:
        return metrics, None
    return metrics, Confidence.model_validate(confidence.model_dump(include=set(Confidence.model_fields)))


def fit_prior_correction(
    validation: np.ndarray, y_validation: np.ndarray, train_counts: np.ndarray
) -> PriorCorrection | None:
    """The logit adjustment ``-s * log(training prior)`` with the best label-balanced validation macro-F1
    over ``PRIOR_STRENGTHS``; ``None`` (no correction) unless it beats ``s = 0`` by more than
    ``PRIOR_MIN_GAIN``.

    Label-balanced: the stratified validation split has the training split's label mix, and plain macro-F1
    on it rewards leaning towards the frequent labels (their precision is measured on that mix); weighing
    each row by 1 / its label's count asks whether the rare labels work, whatever mix the mail will have.
    Labels without training rows get no adjustment (the model never predicts them anyway). Ties go to the
    weaker correction.
    """
    if not len(y_validation) or train_counts.sum() <= 0:
        return None
    present = train_counts > 0
    log_prior = np.zeros(len(train_counts))
    log_prior[present] = np.log(train_counts[present] / train_counts.sum())
    log_prior[present] -= log_prior[present].mean()
    log_p = np.log(np.clip(validation, 1e-12, 1.0))
    before = macro_f1(validation, y_validation, label_balanced=True)
    best_strength, best_f1 = 0.0, before
    for strength in sorted(PRIOR_STRENGTHS, key=abs):
        f1 = macro_f1(log_p - strength * log_prior, y_validation, label_balanced=True)
        if f1 > best_f1 + 1e-12:
            best_strength, best_f1 = strength, f1
    if best_strength == 0.0 or best_f1 <= before + PRIOR_MIN_GAIN:
        return None
    return PriorCorrection(
        strength=best_strength,
        label_bias=tuple(float(v) for v in -best_strength * log_prior),
        validation_macro_f1_before=before,
        validation_macro_f1_after=best_f1,
    )
