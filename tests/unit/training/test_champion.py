"""The champion channel of a training job: finding its archive, and a champion that cannot be scored."""

from __future__ import annotations

from pathlib import Path

from convclass.training.champion import CHAMPION_CHANNEL, champion_archive, score_champion


def test_no_channel_means_no_champion(tmp_path: Path) -> None:
    assert champion_archive(tmp_path) is None


def test_the_channels_single_file_is_the_archive(tmp_path: Path) -> None:
    channel = tmp_path / CHAMPION_CHANNEL
    channel.mkdir()
    (channel / "model.tar.gz").write_bytes(b"x")
    assert champion_archive(tmp_path) == channel / "model.tar.gz"


def test_an_empty_or_ambiguous_channel_is_reported_not_guessed(tmp_path: Path) -> None:
    channel = tmp_path / CHAMPION_CHANNEL
    channel.mkdir()
    assert champion_archive(tmp_path) == channel / "model.tar.gz"  # missing: scoring says so
    (channel / "a.tar.gz").write_bytes(b"a")
    (channel / "b.tar.gz").write_bytes(b"b")
    assert champion_archive(tmp_path) == channel / "model.tar.gz"


def test_an_unreadable_champion_is_not_scored_and_says_why(tmp_path: Path) -> None:
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(b"not a tar archive")
    score = score_champion(archive, ["hello"], ["refund"], cleaning_version="1", evaluated_on="test")
    assert (score.accuracy, score.macro_f1, score.rows) == (None, None, 1)
    assert score.error is not None
    assert score.error.startswith("InvalidInput: model archive cannot be extracted")


def test_a_missing_champion_archive_is_not_scored(tmp_path: Path) -> None:
    score = score_champion(
        tmp_path / "model.tar.gz", ["hello"], ["refund"], cleaning_version="1", evaluated_on="validation"
    )
    assert score.error is not None
    assert score.evaluated_on == "validation"
