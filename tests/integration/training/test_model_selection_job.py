"""architecture=auto through the real trainer: every candidate trained, the best on validation kept."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "support"))
from head_models import tenant_data, tiny_base_model

from convclass.artifacts import load_artifact
from convclass.cleaning import CLEANING_VERSION
from convclass.errors import InsufficientData
from convclass.training.config import parse_hyperparameters
from convclass.training.selection import select
from convclass.training.trainer import train_and_export

pytestmark = pytest.mark.slow


def test_auto_trains_each_candidate_and_keeps_the_validation_winner(tmp_path: Path) -> None:
    base = tiny_base_model(tmp_path / "base")
    data = tenant_data(base, "acme", seed=4, n=200, validation=True)
    config = parse_hyperparameters({"architecture": "auto", "base_model_dir": str(base), "epochs": 3})
    metrics = train_and_export(data, config, model_dir=tmp_path / "model", checkpoint_dir=tmp_path / "ckpt")

    assert [c.architecture for c in metrics.candidates] == ["head", "linear", "cnn"]
    assert [c.selected for c in metrics.candidates].count(True) == 1
    winner = next(c for c in metrics.candidates if c.selected)
    assert winner.architecture == select(metrics.candidates) == metrics.architecture
    assert metrics.validation_macro_f1 == winner.validation_macro_f1
    assert metrics.macro_f1 == winner.macro_f1
    # The artifact on disk is the winner's, with its calibration, and the report lists every candidate.
    artifact = load_artifact(tmp_path / "model", cleaning_version=CLEANING_VERSION, require_metrics=True)
    assert artifact.info.architecture == winner.architecture
    assert artifact.metrics == metrics
    assert artifact.info.confidence is not None
    selection = (artifact.report_dir / "selection.md").read_text()
    assert all(f"| {c.architecture} |" in selection for c in metrics.candidates)
    assert not (tmp_path / "ckpt" / "candidates").exists()


def test_auto_without_a_validation_split_is_refused(tmp_path: Path) -> None:
    base = tiny_base_model(tmp_path / "base")
    data = tenant_data(base, "acme", seed=4, n=80, validation=False)
    config = parse_hyperparameters({"architecture": "auto", "base_model_dir": str(base)})
    with pytest.raises(InsufficientData, match="validation"):
        train_and_export(data, config, model_dir=tmp_path / "model", checkpoint_dir=tmp_path / "ckpt")


def test_pinned_candidates_are_the_ones_trained(tmp_path: Path) -> None:
    base = tiny_base_model(tmp_path / "base")
    data = tenant_data(base, "acme", seed=4, n=200, validation=True)
    config = parse_hyperparameters({"architecture": "auto", "candidates": "cnn,linear", "epochs": "2"})
    metrics = train_and_export(data, config, model_dir=tmp_path / "model", checkpoint_dir=tmp_path / "ckpt")
    assert [c.architecture for c in metrics.candidates] == ["linear", "cnn"]
    assert metrics.architecture == select(metrics.candidates)
