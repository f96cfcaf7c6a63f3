"""One tiny SavedModel artifact per test session (building it takes about a second after importing TF)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

# Helpers live beside this file; with --import-mode=importlib pytest does not put test folders on sys.path.
sys.path.insert(0, str(Path(__file__).parent))
from serving_support import build_artifact


@pytest.fixture(scope="session")
def artifact_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("artifact")
    np.save(root.parent / "table.npy", build_artifact(root))
    return root


@pytest.fixture(scope="session")
def logit_table(artifact_dir: Path) -> np.ndarray:
    return np.load(artifact_dir.parent / "table.npy")
