"""Builds SageMaker-shaped job directories over a real dataset (generator → convclass.dataset builder)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from convclass.dataset import BuildOptions, build_dataset
from convclass.training.data import CHANNEL_FILES, DATASET_CHANNEL
from convclass_local.generator import DEFAULT_LABEL_FIELD, generate_emails, write_parquet

#: A fast configuration: the convolutional model on the built-in sample tenant.
FAST = {"architecture": "cnn", "epochs": "4", "seed": "7"}


def build_dataset_dir(target: Path, emails: int = 600, seed: int = 3) -> Path:
    export = target.parent / f"{target.name}-export.parquet"
    write_parquet(generate_emails(emails, seed=seed), export)
    build_dataset(
        [export], target, BuildOptions(label_field=DEFAULT_LABEL_FIELD, vocab_size=2000, max_length=48)
    )
    return target


def job_root(
    root: Path, dataset: Path, hyperparameters: dict[str, str], *, per_channel: bool = False
) -> Path:
    """Lay ``dataset`` out as SageMaker channels under ``root`` and write hyperparameters.json."""
    data = root / "input" / "data"
    if per_channel:
        for channel, name in CHANNEL_FILES.items():
            (data / channel).mkdir(parents=True, exist_ok=True)
            shutil.copy(dataset / name, data / channel / name)
    else:
        shutil.copytree(dataset, data / DATASET_CHANNEL)
    config = root / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    return root


def train_command(root: Path) -> list[str]:
    return [sys.executable, "-m", "convclass.training", "train", "--root", str(root)]


def quiet_env() -> dict[str, str]:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}


def run_job(root: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        train_command(root), capture_output=True, text=True, timeout=timeout, env=quiet_env(), check=False
    )
