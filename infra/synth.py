"""``python -m infra.synth OUT.json [--stack dev]``: what ``pulumi up`` would create, without Pulumi or AWS.

Runs the real program (``infra/__main__.py``) under mocks with the stack's committed config and writes every
resource it declares as ``[{"type", "name", "inputs"}]``: a reviewable plan for users without an AWS account.
Secret inputs are replaced by ``"[secret]"``; ids and ARNs of other resources are the mocks' (account
123456789012).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from infra.mocks import REDACTED, REPO_ROOT, RecordedResource, Recording, run_program, stack_config


def _redact(value: Any, path: str, secret_paths: set[str]) -> Any:
    if (path or "$") in secret_paths:
        return REDACTED
    if isinstance(value, dict):
        return {k: _redact(v, f"{path}.{k}" if path else k, secret_paths) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, f"{path}[{i}]", secret_paths) for i, v in enumerate(value)]
    return value


def plan_entry(resource: RecordedResource) -> dict[str, Any]:
    return {
        "type": resource.type,
        "name": resource.name,
        "inputs": _redact(resource.inputs, "", set(resource.secret_paths)),
    }


def synthesize(stack: str = "dev", config_file: Path | None = None) -> Recording:
    stack_file = config_file or REPO_ROOT / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        raise SystemExit(f"no stack config {stack_file}: create it (see Pulumi.dev.yaml)")
    return run_program(stack_config(stack_file), stack=stack)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.synth", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="where to write the resource list (JSON)")
    parser.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml to use (default dev)")
    parser.add_argument("--config", type=Path, default=None, help="a stack config file to use instead")
    args = parser.parse_args(argv)
    recording = synthesize(args.stack, args.config)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plan = [plan_entry(r) for r in recording.resources]
    args.out.write_text(json.dumps(plan, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{len(plan)} resources of stack {args.stack} written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
