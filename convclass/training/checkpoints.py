"""Per-epoch checkpoints so a managed-spot job that is stopped and restarted continues where it was.

SageMaker syncs ``/opt/ml/checkpoints`` with S3 while the job runs and restores it on restart. A checkpoint is
a directory ``epoch-NNNN`` with every model and optimizer variable (NumPy ``.npz``, loaded with
``allow_pickle=False``) and ``state.json`` written last: a directory without it is an interrupted write and
is ignored. ``state.json`` carries a fingerprint of config and data: checkpoints of another job never load.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

STATE_FILE = "state.json"
MODEL_FILE = "model.npz"
OPTIMIZER_FILE = "optimizer.npz"
KEEP = 2


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    epoch: int
    history: list[dict[str, float]]
    elapsed_seconds: float


def _save_variables(path: Path, variables: list[Any]) -> None:
    arrays: dict[str, Any] = {f"v{i:05d}": np.asarray(v.numpy()) for i, v in enumerate(variables)}
    np.savez(path, **arrays)


def _load_variables(path: Path, variables: list[Any]) -> None:
    with np.load(path, allow_pickle=False) as stored:
        if len(stored.files) != len(variables):
            raise ValueError(
                f"{path.name} holds {len(stored.files)} variables, the model has {len(variables)}"
            )
        for i, variable in enumerate(variables):
            value = stored[f"v{i:05d}"]
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(
                    f"{path.name}: variable {i} has shape {value.shape}, expected {variable.shape}"
                )
            variable.assign(value)


def save(
    directory: Path,
    *,
    epoch: int,
    fingerprint: str,
    model_variables: list[Any],
    optimizer_variables: list[Any],
    history: list[dict[str, float]],
    elapsed_seconds: float,
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"epoch-{epoch:04d}"
    partial = directory / f".partial-epoch-{epoch:04d}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    _save_variables(partial / MODEL_FILE, model_variables)
    _save_variables(partial / OPTIMIZER_FILE, optimizer_variables)
    state = {
        "epoch": epoch,
        "fingerprint": fingerprint,
        "history": history,
        "elapsed_seconds": elapsed_seconds,
    }
    (partial / STATE_FILE).write_text(json.dumps(state), encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    for old in sorted(directory.glob("epoch-*"))[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest(directory: Path, fingerprint: str) -> Checkpoint | None:
    """Newest complete checkpoint written by a job with the same fingerprint, or None."""
    if not directory.is_dir():
        return None
    for path in sorted(directory.glob("epoch-*"), reverse=True):
        try:
            state = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if state.get("fingerprint") != fingerprint:
            continue
        if (path / MODEL_FILE).is_file() and (path / OPTIMIZER_FILE).is_file():
            return Checkpoint(
                path=path,
                epoch=int(state["epoch"]),
                history=list(state.get("history", [])),
                elapsed_seconds=float(state.get("elapsed_seconds", 0.0)),
            )
    return None


def restore(checkpoint: Checkpoint, *, model_variables: list[Any], optimizer_variables: list[Any]) -> None:
    _load_variables(checkpoint.path / MODEL_FILE, model_variables)
    _load_variables(checkpoint.path / OPTIMIZER_FILE, optimizer_variables)
