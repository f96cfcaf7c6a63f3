from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convclass.training import checkpoints


class FakeVariable:
    """The two methods checkpoints use of a Keras variable."""

    def __init__(self, value: np.ndarray) -> None:
        self.value = value

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    def numpy(self) -> np.ndarray:
        return self.value

    def assign(self, value: np.ndarray) -> None:
        self.value = np.array(value)


def _save(directory: Path, epoch: int, fingerprint: str = "f1") -> Path:
    return checkpoints.save(
        directory,
        epoch=epoch,
        fingerprint=fingerprint,
        model_variables=[FakeVariable(np.full((2, 3), epoch, dtype=np.float32))],
        optimizer_variables=[FakeVariable(np.array(epoch * 10, dtype=np.int64))],
        history=[{"epoch": e, "loss": 1.0 / e} for e in range(1, epoch + 1)],
        elapsed_seconds=epoch * 1.5,
    )


def test_newest_complete_checkpoint_is_restored(tmp_path: Path) -> None:
    for epoch in (1, 2, 3):
        _save(tmp_path, epoch)
    assert sorted(p.name for p in tmp_path.glob("epoch-*")) == [
        "epoch-0002",
        "epoch-0003",
    ]  # keeps the last two
    found = checkpoints.latest(tmp_path, "f1")
    assert found is not None
    assert (found.epoch, found.elapsed_seconds, len(found.history)) == (3, 4.5, 3)
    model, optimizer = [FakeVariable(np.zeros((2, 3), np.float32))], [FakeVariable(np.array(0))]
    checkpoints.restore(found, model_variables=model, optimizer_variables=optimizer)
    assert (model[0].value == 3).all()
    assert int(optimizer[0].value) == 30


def test_interrupted_write_and_other_jobs_are_ignored(tmp_path: Path) -> None:
    _save(tmp_path, 1)
    (_save(tmp_path, 2) / checkpoints.STATE_FILE).unlink()  # died before state.json was written
    found = checkpoints.latest(tmp_path, "f1")
    assert found is not None
    assert found.epoch == 1
    assert checkpoints.latest(tmp_path, "another-config") is None
    assert checkpoints.latest(tmp_path / "absent", "f1") is None


def test_restore_refuses_a_different_model(tmp_path: Path) -> None:
    found = checkpoints.latest(_save(tmp_path, 1).parent, "f1")
    assert found is not None
    with pytest.raises(ValueError, match="shape"):
        checkpoints.restore(
            found,
            model_variables=[FakeVariable(np.zeros((3, 3)))],
            optimizer_variables=[FakeVariable(np.array(0))],
        )
