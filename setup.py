"""Build step of convclass's compiled cleaning (everything else is in pyproject.toml).

Cleaning runs on every email of every tenant, in the preprocess Lambda and in serving, so it ships compiled:
``_scan.pyx`` holds its byte-level passes, and the other cleaning modules are compiled as they are
(Cython keeps their Python semantics; ``annotation_typing=False`` makes their type hints mean nothing more).
``make install`` builds the modules in place and rebuilds them when their source changes; images build them
for their own Python. ``benchmarks/bench_preprocess.py`` measures what this buys.
"""

from pathlib import Path

from Cython.Build import cythonize
from setuptools import setup

# Every module of the cleaning package but its __init__ (convclass_local/cleaning_build.py checks the same).
COMPILED = sorted(
    str(path)
    for path in Path("convclass/cleaning").iterdir()
    if path.suffix in (".py", ".pyx") and path.name != "__init__.py"
)

setup(
    ext_modules=cythonize(
        COMPILED,
        compiler_directives={"language_level": 3, "annotation_typing": False},
        quiet=True,
    )
)
