"""The stack outputs an operator's tools need: one model shared by the Pulumi program, the CLI and the local
run.

Outputs are read from ``pulumi stack output --json`` (saved to a file), overridden by ``CONVCLASS_<NAME>``
environment variables or command-line flags, so the CLI works without the Pulumi CLI on the operator's
machine.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from convclass.errors import InvalidInput

ENV_PREFIX = "CONVCLASS_"


class MissingStackOutput(InvalidInput):
    """A command needs a stack output that neither the outputs file, the environment nor a flag provides."""


class StackOutputs(BaseModel):
    """What ``pulumi up`` exports (names are the Pulumi output names); unknown outputs are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    region: str | None = None
    data_bucket: str | None = None
    kms_key_arn: str | None = None
    event_bus_name: str | None = None
    training_state_machine_arn: str | None = None
    inference_state_machine_arn: str | None = None
    training_queue_url: str | None = None
    training_dlq_url: str | None = None
    inbound_queue_url: str | None = None
    inbound_dlq_url: str | None = None
    sagemaker_role_arn: str | None = None
    #: The shared multi-model endpoint and the S3 prefix its ``TargetModel`` keys are relative to.
    shared_endpoint_name: str | None = None
    shared_models_url: str | None = None

    def require(self, name: str) -> str:
        """The output's value, or a ``MissingStackOutput`` that says how to provide it."""
        value = getattr(self, name, None)
        if not value:
            raise MissingStackOutput(
                f"stack output {name!r} is missing: pass --outputs FILE (from `pulumi stack output --json`), "
                f"or set {ENV_PREFIX}{name.upper()}"
            )
        return str(value)

    @classmethod
    def load(cls, path: Path | None = None, **overrides: str | None) -> StackOutputs:
        """Merge the outputs file (if any), ``CONVCLASS_*`` variables and explicit overrides, later ones
        winning."""
        values: dict[str, object] = {}
        if path is not None:
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError as exc:
                raise MissingStackOutput(f"stack outputs file {str(path)!r} does not exist") from exc
            except (OSError, json.JSONDecodeError) as exc:
                raise InvalidInput(f"stack outputs file {str(path)!r} is not JSON: {exc}") from exc
            if not isinstance(loaded, dict):
                raise InvalidInput(f"stack outputs file {str(path)!r} must hold a JSON object")
            values.update(loaded)
        for name in cls.model_fields:
            env = os.environ.get(ENV_PREFIX + name.upper())
            if env:
                values[name] = env
        values.update({k: v for k, v in overrides.items() if v})
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            fields = sorted({".".join(str(p) for p in err["loc"]) for err in exc.errors()})
            raise InvalidInput(f"stack outputs are invalid (fields: {', '.join(fields)})") from exc

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2, exclude_none=True) + "\n", encoding="utf-8")
