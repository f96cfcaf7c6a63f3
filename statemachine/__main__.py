"""``python -m statemachine OUTDIR``: write training.json and inference.json rendered with
placeholder ARNs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from statemachine import render_inference_workflow, render_training_pipeline
from statemachine.placeholders import inference_resources, training_resources


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m statemachine OUTDIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    rendered = {
        "training.json": render_training_pipeline(training_resources()),
        "inference.json": render_inference_workflow(inference_resources()),
    }
    for name, definition in rendered.items():
        (out / name).write_text(json.dumps(definition, indent=2) + "\n")
        print(f"wrote {out / name} ({len(definition['States'])} top-level states)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
