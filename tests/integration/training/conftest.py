from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# Helpers live beside this file; with --import-mode=importlib pytest does not put test folders on sys.path.
sys.path.insert(0, str(Path(__file__).parent))
from training_support import FAST, build_dataset_dir, job_root, run_job


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_dataset_dir(tmp_path_factory.mktemp("dataset") / "dataset")


@pytest.fixture(scope="module")
def fast_job(
    tmp_path_factory: pytest.TempPathFactory, dataset: Path
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One uninterrupted fast training job through the contract directories."""
    root = job_root(tmp_path_factory.mktemp("job"), dataset, FAST)
    return root, run_job(root)
