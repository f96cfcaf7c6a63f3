from __future__ import annotations

import pytest

from convclass.artifacts import DataSizes, LabelMetrics, ModelMetrics


@pytest.fixture
def metrics_bytes() -> bytes:
    labels = ("card_lost", "refund")
    return (
        ModelMetrics(
            accuracy=0.9,
            macro_f1=0.88,
            weighted_f1=0.89,
            expected_calibration_error=0.03,
            per_label={
                label: LabelMetrics(precision=0.9, recall=0.9, f1=0.9, support=50) for label in labels
            },
            labels=labels,
            confusion_matrix=((45, 5), (5, 45)),
            data=DataSizes(train=800, validation=100, test=100, n_labels=2),
            training_seconds=1.0,
            epochs=1,
            architecture="test",
        )
        .model_dump_json()
        .encode()
    )
