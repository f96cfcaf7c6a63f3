"""Whether this checkout's cleaning is the compiled build that ships (setup.py), and fresh.

Compiled modules sit beside their source and Python imports them first, so a module edited after the last
``make install`` would run its old build: tests refuse to start on a stale build, and benchmarks report
whether they measured the compiled one.
"""

from __future__ import annotations

import importlib.machinery
from dataclasses import dataclass
from pathlib import Path

import convclass.cleaning

CLEANING = Path(convclass.cleaning.__file__).parent


def compiled_sources(folder: Path = CLEANING) -> tuple[str, ...]:
    """The modules setup.py compiles, by file name: every module of the cleaning package but its __init__."""
    return tuple(
        sorted(
            path.name
            for path in folder.iterdir()
            if path.suffix in (".py", ".pyx") and path.name != "__init__.py"
        )
    )


@dataclass(frozen=True)
class CleaningBuild:
    compiled: tuple[str, ...]  # sources with a build
    missing: tuple[str, ...]  # sources without one (the pure-Python module runs; _scan cannot)
    stale: tuple[str, ...]  # sources edited after their build

    @property
    def fresh(self) -> bool:
        return not self.missing and not self.stale


def cleaning_build(folder: Path = CLEANING) -> CleaningBuild:
    compiled, missing, stale = [], [], []
    for source in compiled_sources(folder):
        stem = source.rsplit(".", 1)[0]
        builds = [folder / f"{stem}{suffix}" for suffix in importlib.machinery.EXTENSION_SUFFIXES]
        built = [path for path in builds if path.exists()]
        if not built:
            missing.append(source)
            continue
        compiled.append(source)
        if (folder / source).stat().st_mtime > max(path.stat().st_mtime for path in built):
            stale.append(source)
    return CleaningBuild(tuple(compiled), tuple(missing), tuple(stale))
