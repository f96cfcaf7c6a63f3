"""Static checks of the rendered definitions: asl-validator (npm), statelint (PyPI) and moto's parser.

Each checker is first shown a broken definition and must reject it, so a checker that silently passes
everything cannot hide a broken workflow.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from statemachine import PipelineSettings, render_inference_workflow, render_training_pipeline
from statemachine.placeholders import inference_resources, training_resources
from statemachine.training import names as t

ROOT = Path(__file__).resolve().parents[3]
ASL_VALIDATOR = ROOT / "node_modules" / ".bin" / "asl-validator"


def _definitions() -> dict[str, dict[str, Any]]:
    return {
        "training": render_training_pipeline(training_resources()),
        "training-rolling": render_training_pipeline(
            training_resources(), PipelineSettings(blue_green=False)
        ),
        "training-inline-export": render_training_pipeline(
            training_resources(), PipelineSettings(export_map="inline")
        ),
        "inference": render_inference_workflow(inference_resources()),
    }


def _broken() -> dict[str, Any]:
    definition = copy.deepcopy(render_training_pipeline(training_resources()))
    definition["States"][t.EXPORT]["Next"] = "NoSuchState"
    return definition


def _write(tmp_path: Path, definitions: dict[str, dict[str, Any]]) -> list[Path]:
    paths = []
    for name, definition in definitions.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(definition))
        paths.append(path)
    return paths


def _asl_validator(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    if not ASL_VALIDATOR.exists():
        pytest.fail("asl-validator is missing: run `make install` (npm install) first")
    args = [str(ASL_VALIDATOR)]
    for path in paths:
        args += ["--json-path", str(path)]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def _statelint(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "statelint", *map(str, paths)]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def test_asl_validator_accepts_the_workflows_and_rejects_a_broken_one(tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    broken = _asl_validator(_write(tmp_path / "bad", {"broken": _broken()}))
    assert broken.returncode != 0, broken.stdout
    result = _asl_validator(_write(tmp_path, _definitions()))
    assert result.returncode == 0, result.stdout + result.stderr


def test_statelint_accepts_the_workflows_and_rejects_a_broken_one(tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    broken = _statelint(_write(tmp_path / "bad", {"broken": _broken()}))
    assert broken.returncode != 0
    assert "NoSuchState" in broken.stdout
    result = _statelint(_write(tmp_path, _definitions()))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "", result.stdout


def test_moto_create_state_machine_accepts_the_workflows() -> None:
    config = {"stepfunctions": {"execute_state_machine": True}}
    with mock_aws(config=config):
        sfn = boto3.client("stepfunctions", region_name="eu-west-1")
        role = "arn:aws:iam::123456789012:role/convclass-states"
        for name, definition in _definitions().items():
            kind = "EXPRESS" if name == "inference" else "STANDARD"
            sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=role, type=kind)
        with pytest.raises(ClientError):
            sfn.create_state_machine(
                name="nonsense",
                definition='{"StartAt": "A", "States": {"A": {"Type": "Nope"}}}',
                roleArn=role,
            )


def test_make_asl_writes_what_the_renderers_return(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "statemachine", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "training.json").read_text()) == _definitions()["training"]
    assert json.loads((tmp_path / "inference.json").read_text()) == _definitions()["inference"]
