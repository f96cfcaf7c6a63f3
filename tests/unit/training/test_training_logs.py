from __future__ import annotations

import io
import re

from convclass.training import metric_definitions
from convclass.training.logs import log_epoch, log_test


def _values(lines: list[str]) -> dict[str, float]:
    found = {}
    for definition in metric_definitions():
        for line in lines:
            match = re.search(definition["Regex"], line)
            if match:
                found[definition["Name"]] = float(match.group(1))
    return found


def test_regexes_read_back_what_the_training_prints() -> None:
    out = io.StringIO()
    log_epoch(
        3,
        4,
        {"loss": 0.25, "accuracy": 0.875, "val_loss": 0.5, "val_accuracy": 0.8125, "val_macro_f1": 0.8},
        stream=out,
    )
    log_test({"accuracy": 0.93, "macro_f1": 0.92, "weighted_f1": 0.925, "ece": 2.5e-05}, stream=out)
    found = _values(out.getvalue().splitlines())
    assert found == {
        "train:epoch": 3,
        "train:loss": 0.25,
        "train:accuracy": 0.875,
        "validation:loss": 0.5,
        "validation:accuracy": 0.8125,
        "validation:macro_f1": 0.8,
        "test:accuracy": 0.93,
        "test:macro_f1": 0.92,
        "test:weighted_f1": 0.925,
        "test:ece": 2.5e-05,
    }


def test_train_and_validation_figures_are_not_confused() -> None:
    out = io.StringIO()
    log_epoch(1, 2, {"val_loss": 0.7, "val_accuracy": 0.6}, stream=out)  # no training figures on this line
    found = _values(out.getvalue().splitlines())
    assert "train:loss" not in found
    assert "train:accuracy" not in found
    assert found["validation:accuracy"] == 0.6


def test_test_figures_do_not_match_epoch_lines() -> None:
    out = io.StringIO()
    log_epoch(1, 2, {"loss": 1.0, "accuracy": 0.5}, stream=out)
    assert "test:accuracy" not in _values(out.getvalue().splitlines())


def test_definitions_fit_sagemaker_limits() -> None:
    definitions = metric_definitions()
    assert len({d["Name"] for d in definitions}) == len(definitions)
    for definition in definitions:
        assert 1 <= len(definition["Name"]) <= 255
        assert 1 <= len(definition["Regex"]) <= 500
        assert re.compile(definition["Regex"]).groups == 1
