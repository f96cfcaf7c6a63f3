"""Challenger vs champion, and reading metrics.json out of a model archive."""

from __future__ import annotations

import io
import tarfile

import pytest

from convclass.comparison import decide, metrics_from_model_tar
from convclass.errors import IncompatibleModel
from convclass.events import HeadlineMetrics


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
