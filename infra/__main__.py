"""Pulumi entry point (``Pulumi.yaml``: ``main: infra/``): the only place that reads stack config.

Config keys live under the project's namespace (``convclass:<key>``) plus ``aws:region``; each top-level key
is one field of :class:`infra.config.StackArgs` (camelCase), documented in ``Pulumi.dev.yaml``.
"""

import sys
from pathlib import Path

# Pulumi starts this file from infra/; `infra` and the convclass packages are imported from the repo root.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import pulumi  # noqa: E402

from infra.config import StackArgs  # noqa: E402
from infra.stack import build  # noqa: E402


def read_stack_args() -> StackArgs:
    """Stack config → validated StackArgs: a config error stops ``pulumi up`` before anything changes."""
    config = pulumi.Config()
    values: dict[str, object] = {
        "project": pulumi.get_project(),
        "stack": pulumi.get_stack(),
        "region": pulumi.Config("aws").require("region"),
    }
    for name, field in StackArgs.model_fields.items():
        if name in values:
            continue
        key = field.alias or name
        value = config.get_object(key)
        if value is not None:
            values[key] = value
    return StackArgs.model_validate(values)


build(read_stack_args())
