"""Which architecture model selection keeps, and which it tries."""

from __future__ import annotations

import pytest

from convclass.artifacts import CandidateFigures
from convclass.errors import InvalidInput
from convclass.training.config import parse_hyperparameters
from convclass.training.selection import (
    MINILM_MIN_TRAIN_ROWS,
    TIE_MACRO_F1,
    candidate_architectures,
    select,
)


def _candidate(architecture: str, validation: float, test: float = 0.5) -> CandidateFigures:
    return CandidateFigures(
        architecture=architecture,
        validation_macro_f1=validation,
        macro_f1=test,
        accuracy=test,
        training_seconds=1.0,
    )


def test_best_validation_macro_f1_wins_whatever_the_test_figures_say() -> None:
    chosen = select([_candidate("head", 0.70, test=0.99), _candidate("cnn", 0.80, test=0.10)])
    assert chosen == "cnn"


def test_ties_go_to_the_cheaper_to_serve() -> None:
    near = 0.80 - TIE_MACRO_F1 / 2
    assert select([_candidate("cnn", 0.80), _candidate("head", near)]) == "head"
    assert select([_candidate("minilm", 0.80), _candidate("cnn", near)]) == "cnn"
    assert select([_candidate("minilm", 0.80), _candidate("head", 0.80 - 2 * TIE_MACRO_F1)]) == "minilm"


def test_nothing_to_select_is_an_error() -> None:
    with pytest.raises(ValueError, match="no candidates"):
        select([])


def test_minilm_is_a_candidate_only_for_large_data() -> None:
    assert candidate_architectures(500) == ("head", "linear", "cnn")
    assert "minilm" in candidate_architectures(MINILM_MIN_TRAIN_ROWS)


def test_auto_is_a_hyperparameter_value_and_keeps_per_candidate_defaults() -> None:
    config = parse_hyperparameters({"architecture": "auto", "base_model_dir": "/models/minilm"})
    assert config.architecture == "auto"
    assert config.epochs is None  # each candidate resolves its own
    assert parse_hyperparameters({"architecture": "cnn"}).epochs == 12
    with pytest.raises(InvalidInput, match="architecture"):
        parse_hyperparameters({"architecture": "linear-svm"})


def test_candidates_hyperparameter_replaces_the_size_rule_in_cost_order() -> None:
    config = parse_hyperparameters({"architecture": "auto", "candidates": "minilm, head"})
    assert config.candidates == ("minilm", "head")
    assert candidate_architectures(500, config.candidates) == ("head", "minilm")
    assert candidate_architectures(500) == ("head", "linear", "cnn")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"architecture": "auto", "candidates": "head,svm"}, "candidates"),
        ({"architecture": "auto", "candidates": "head,head"}, "twice"),
        ({"architecture": "auto", "candidates": ""}, "candidates"),
        ({"architecture": "cnn", "candidates": "head"}, "only applies to architecture=auto"),
    ],
)
def test_bad_candidates_are_refused_by_name(raw: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_hyperparameters(raw)


def test_the_linear_model_is_cheaper_to_serve_than_cnn_and_minilm() -> None:
    near = 0.80 - TIE_MACRO_F1 / 2
    assert select([_candidate("cnn", 0.80), _candidate("linear", near)]) == "linear"
    assert select([_candidate("linear", 0.80), _candidate("head", near)]) == "head"
