"""What ships: the product packages never reach into the development package, and no image copies it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_PACKAGES = ("convclass", "functions", "statemachine", "infra")
DEV_PACKAGE = "convclass_local"


def _imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


@pytest.mark.parametrize("package", PRODUCT_PACKAGES)
def test_product_code_never_imports_the_development_package(package: str) -> None:
    offenders = sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / package).rglob("*.py")
        if any(module.split(".")[0] == DEV_PACKAGE for module in _imported_modules(path))
    )
    assert offenders == []


def test_the_import_scan_sees_the_development_package_where_it_is_used() -> None:
    """The scan above would pass vacuously if it missed imports: it must find the CLI's own."""
    assert any(module.startswith(DEV_PACKAGE) for module in _imported_modules(ROOT / DEV_PACKAGE / "cli.py"))


@pytest.mark.parametrize(
    "dockerfile", sorted((ROOT / "images").glob("*/Dockerfile")), ids=lambda p: p.parent.name
)
def test_no_image_copies_development_code_or_outside_data(dockerfile: Path) -> None:
    sources = [
        word
        for line in dockerfile.read_text().splitlines()
        if re.match(r"^COPY\s", line) and "--from=" not in line
        for word in line.split()[1:-1]
        if not word.startswith("--")
    ]
    assert sources, "every image copies something from the build context"
    assert not [s for s in sources if s.split("/")[0] in {DEV_PACKAGE, "tests", "benchmarks"} or ".." in s]


def test_the_lambda_image_carries_every_repository_package_its_code_imports() -> None:
    """The console Lambda imports ``statemachine`` (state names): a package the image lacks breaks it."""
    local_packages = {path.name for path in ROOT.iterdir() if (path / "__init__.py").exists()}
    imported = {
        module.split(".")[0]
        for package in ("convclass", "functions")
        for path in (ROOT / package).rglob("*.py")
        for module in _imported_modules(path)
    }
    copied = {
        line.split()[1].strip("/")
        for line in (ROOT / "images" / "lambda" / "Dockerfile").read_text().splitlines()
        if re.match(r"^COPY\s", line) and "--from=" not in line
    }
    needed = (imported & local_packages) - {"convclass", "functions"}
    assert needed, "the scan must see the repository packages the code imports"
    assert needed <= copied
    assert {"convclass", "functions"} <= copied
