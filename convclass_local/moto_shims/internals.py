"""moto's internals as the shims reach them: looked up typed ``Any``, and pinned by their parameters.

A shim that replaces a moto function pins the parameters moto 5.2.5 gives it; a moto release that changes them
stops the install instead of letting the shim misbehave silently, and
``tests/integration/test_moto_contract.py`` pins the same functions without installing anything.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

#: Where moto's Step Functions engine lives, and its task states' service integrations.
SFN = "stepfunctions.parser"
TASK = f"{SFN}.asl.component.state.exec.state_task"
SERVICE = f"{TASK}.service"

#: moto's own functions, kept when the shims replace them (the contract test checks these).
originals: dict[str, Callable[..., Any]] = {}


def moto(module: str, name: str | None = None) -> Any:
    """A moto internal, typed ``Any``: these are exactly the attributes the contract test pins."""
    loaded = importlib.import_module(f"moto.{module}")
    return loaded if name is None else getattr(loaded, name)


def pinned(name: str, function: Callable[..., Any], parameters: list[str]) -> Callable[..., Any]:
    """Refuse to patch a moto function whose parameters changed: the shim would misbehave silently."""
    found = list(inspect.signature(function).parameters)
    if found != parameters:
        raise RuntimeError(f"moto internals moved: {name}{found} != {parameters}; update moto_shims")
    originals[name] = function
    return function
