"""Metric log lines and the SageMaker ``MetricDefinitions`` regexes that read them: one source for both.

SageMaker scans the job's stdout with these regexes and publishes CloudWatch metrics; infrastructure and the
state machine import ``metric_definitions()`` instead of copying patterns.
"""

from __future__ import annotations

import re
import sys
from typing import TextIO

_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
EPOCH_PREFIX = "convclass-epoch"
TEST_PREFIX = "convclass-test"

#: (metric name, line prefix, key) for every value SageMaker should chart.
_METRICS: tuple[tuple[str, str, str], ...] = (
    ("train:loss", EPOCH_PREFIX, "loss"),
    ("train:accuracy", EPOCH_PREFIX, "accuracy"),
    ("validation:loss", EPOCH_PREFIX, "val_loss"),
    ("validation:accuracy", EPOCH_PREFIX, "val_accuracy"),
    ("validation:macro_f1", EPOCH_PREFIX, "val_macro_f1"),
    ("train:epoch", EPOCH_PREFIX, "epoch"),
    ("test:accuracy", TEST_PREFIX, "accuracy"),
    ("test:macro_f1", TEST_PREFIX, "macro_f1"),
    ("test:weighted_f1", TEST_PREFIX, "weighted_f1"),
    ("test:ece", TEST_PREFIX, "ece"),
)


def metric_definitions() -> list[dict[str, str]]:
    """``AlgorithmSpecification.MetricDefinitions`` for CreateTrainingJob (Name/Regex pairs)."""
    return [
        {"Name": name, "Regex": rf"{re.escape(prefix)} .*\b{re.escape(key)}={_NUMBER}"}
        for name, prefix, key in _METRICS
    ]


def format_line(prefix: str, values: dict[str, float | int]) -> str:
    """``prefix key=value ...`` with floats at 6 significant digits; keys must be known metric keys."""
    parts = [prefix]
    for key, value in values.items():
        parts.append(f"{key}={value}" if isinstance(value, int) else f"{key}={value:.6g}")
    return " ".join(parts)


def log_epoch(epoch: int, epochs: int, values: dict[str, float], *, stream: TextIO | None = None) -> str:
    line = format_line(EPOCH_PREFIX, {"epoch": epoch, **values}) + f" of={epochs}"
    print(line, file=stream or sys.stdout, flush=True)
    return line


def log_test(values: dict[str, float], *, stream: TextIO | None = None) -> str:
    line = format_line(TEST_PREFIX, values)
    print(line, file=stream or sys.stdout, flush=True)
    return line
