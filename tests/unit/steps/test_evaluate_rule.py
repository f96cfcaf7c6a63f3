"""Challenger vs champion, and reading metrics.json out of a model archive."""

from __future__ import annotations

import io
import tarfile
from typing import Any

import pytest

from convclass.artifacts import ChampionScore, ModelMetrics
from convclass.errors import IncompatibleModel
from convclass.events import HeadlineMetrics
from convclass.steps.evaluate import compare, decide, metrics_from_model_tar
from convclass.training.champion import score_predictions


def _m(accuracy: float) -> HeadlineMetrics:
    return HeadlineMetrics(accuracy=accuracy, macro_f1=accuracy)


@pytest.mark.parametrize(
    ("challenger", "champion", "deploy"),
    [
        (0.69, None, False),  # below the minimum, nothing to beat
        (0.70, None, True),  # exactly the minimum
        (0.89, 0.90, True),  # within tolerance
        (0.885, 0.90, False),  # worse beyond tolerance
        (0.95, 0.90, True),
        (0.65, 0.60, False),  # better than the champion but below the minimum
    ],
)
def test_decision(challenger: float, champion: float | None, deploy: bool) -> None:
    decided, reason = decide(
        _m(challenger), None if champion is None else _m(champion), min_accuracy=0.7, tolerance=0.01
    )
    assert decided is deploy
    assert f"{challenger:.4f}" in reason


def test_a_challenger_that_loses_the_rare_labels_is_rejected_despite_its_accuracy() -> None:
    champion = HeadlineMetrics(accuracy=0.90, macro_f1=0.80)
    kept_accuracy = HeadlineMetrics(accuracy=0.91, macro_f1=0.70)
    decided, reason = decide(kept_accuracy, champion, min_accuracy=0.7, tolerance=0.01)
    assert decided is False
    assert "macro-F1 0.7000" in reason
    within = HeadlineMetrics(accuracy=0.91, macro_f1=0.795)
    assert decide(within, champion, min_accuracy=0.7, tolerance=0.01)[0] is True


def _tar(members: dict[str, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    buffer.seek(0)
    return buffer


def test_metrics_are_read_from_the_archive(metrics_bytes: bytes) -> None:
    metrics = metrics_from_model_tar(_tar({"./metrics.json": metrics_bytes, "model/1/saved_model.pb": b"x"}))
    assert metrics.accuracy == pytest.approx(0.9)


@pytest.mark.parametrize(
    "members",
    [{"model/1/saved_model.pb": b"x"}, {"metrics.json": b'{"accuracy": 2}'}],
    ids=["missing", "invalid"],
)
def test_bad_archives_are_named_errors(members: dict[str, bytes]) -> None:
    with pytest.raises(IncompatibleModel):
        metrics_from_model_tar(_tar(members))


def test_not_an_archive_is_a_named_error() -> None:
    with pytest.raises(IncompatibleModel):
        metrics_from_model_tar(io.BytesIO(b"definitely not gzip"))


CHAMPION = "s3://bucket/tenants/t/classifiers/c/models/run-1/job-0/output/model.tar.gz"


def _with_champion(metrics_bytes: bytes, **score: Any) -> ModelMetrics:
    champion = ChampionScore(evaluated_on="test", rows=100, unknown_label_rows=0, **score)
    return ModelMetrics.model_validate_json(metrics_bytes).model_copy(update={"champion": champion})


def test_both_figures_come_from_the_challengers_metrics(metrics_bytes: bytes) -> None:
    metrics = _with_champion(metrics_bytes, accuracy=0.95, macro_f1=0.94)
    decided = compare(metrics, serving=CHAMPION, scored=CHAMPION, min_accuracy=0.7, tolerance=0.01)
    assert decided.deploy is False
    assert decided.champion == HeadlineMetrics(accuracy=0.95, macro_f1=0.94)
    assert decided.challenger.accuracy == pytest.approx(0.9)
    assert "same 100-row test split" in decided.reason


def test_no_serving_champion_leaves_the_minimum_to_decide(metrics_bytes: bytes) -> None:
    metrics = ModelMetrics.model_validate_json(metrics_bytes)
    decided = compare(metrics, serving=None, scored=None, min_accuracy=0.7, tolerance=0.01)
    assert (decided.deploy, decided.champion, decided.champion_model) == (True, None, None)


@pytest.mark.parametrize("scored", [None, CHAMPION.replace("run-1", "run-0")])
def test_a_champion_that_is_not_the_one_scored_rejects(metrics_bytes: bytes, scored: str | None) -> None:
    metrics = _with_champion(metrics_bytes, accuracy=0.5, macro_f1=0.5)
    decided = compare(metrics, serving=CHAMPION, scored=scored, min_accuracy=0.7, tolerance=0.01)
    assert (decided.deploy, decided.champion, decided.champion_model) == (False, None, CHAMPION)
    assert "changed the champion" in decided.reason


def test_a_missing_champion_figure_rejects(metrics_bytes: bytes) -> None:
    metrics = ModelMetrics.model_validate_json(metrics_bytes)
    decided = compare(metrics, serving=CHAMPION, scored=CHAMPION, min_accuracy=0.7, tolerance=0.01)
    assert decided.deploy is False
    assert "no champion figure" in decided.reason


def test_a_champion_that_could_not_be_scored_leaves_the_minimum_to_decide(metrics_bytes: bytes) -> None:
    metrics = _with_champion(metrics_bytes, error="IncompatibleModel: trained on cleaning version '0'")
    decided = compare(metrics, serving=CHAMPION, scored=CHAMPION, min_accuracy=0.7, tolerance=0.01)
    assert (decided.deploy, decided.champion) == (True, None)
    assert "could not be scored" in decided.reason
    assert "IncompatibleModel" in decided.reason


def test_labels_unknown_to_the_champion_count_as_its_errors() -> None:
    """The challenger's data has a label (``refund``) the champion was never trained on."""
    truth = ["card_lost", "card_lost", "refund", "refund"]
    predicted = ["card_lost", "card_lost", "card_lost", "card_lost"]  # the best the champion can do
    score = score_predictions(predicted, truth, ("card_lost", "top_up"), "test")
    assert (score.rows, score.unknown_label_rows) == (4, 2)
    assert score.accuracy == pytest.approx(0.5)
    # card_lost: precision 0.5, recall 1 → F1 2/3; refund: F1 0 → macro 1/3.
    assert score.macro_f1 == pytest.approx(1 / 3)


def test_a_prediction_of_a_label_the_data_no_longer_has_is_an_error() -> None:
    score = score_predictions(["top_up", "refund"], ["card_lost", "refund"], ("top_up", "refund"), "test")
    assert (score.unknown_label_rows, score.accuracy) == (1, 0.5)


@pytest.mark.parametrize(
    "fields",
    [{"accuracy": 0.5, "macro_f1": 0.5, "error": "x"}, {}, {"accuracy": 0.5}],
    ids=["figures-and-error", "neither", "half"],
)
def test_a_champion_score_is_scored_or_explained(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="champion score"):
        ChampionScore(evaluated_on="test", rows=1, unknown_label_rows=0, **fields)
