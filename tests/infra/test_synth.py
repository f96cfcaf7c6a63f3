"""`make synth`: the reviewable plan of what the program creates, with secrets redacted."""

from __future__ import annotations

import json
from pathlib import Path

import yaml  # type: ignore[import-untyped]

from infra.mocks import MOCK_REGISTRY_PASSWORD, REDACTED, Recording
from infra.synth import main, plan_entry
from tests.infra.conftest import DEV_STACK


def test_plan_lists_every_resource_with_type_name_and_inputs(recording: Recording) -> None:
    plan = [plan_entry(r) for r in recording.resources]
    assert len(plan) == len(recording.resources) > 50
    assert all(set(entry) == {"type", "name", "inputs"} for entry in plan)
    machines = [e for e in plan if e["type"] == "aws:sfn/stateMachine:StateMachine"]
    assert all(json.loads(m["inputs"]["definition"])["States"] for m in machines)


def test_building_images_keeps_registry_credentials_out_of_the_plan(tmp_path: Path) -> None:
    """With images.build, the registry password (an ECR token) is a secret input: the plan redacts it."""
    document = yaml.safe_load(DEV_STACK.read_text(encoding="utf-8"))
    document["config"]["convclass:images"] = {"build": True, "buildTag": "3f2c1ab"}
    config = tmp_path / "Pulumi.build.yaml"
    config.write_text(yaml.safe_dump(document), encoding="utf-8")
    out = tmp_path / "stack.json"

    assert main([str(out), "--stack", "build", "--config", str(config)]) == 0

    text = out.read_text(encoding="utf-8")
    plan = json.loads(text)
    images = [e for e in plan if e["type"] == "docker-build:index:Image"]
    assert len(images) == 3
    assert all(image["inputs"]["registries"] == REDACTED for image in images)
    assert MOCK_REGISTRY_PASSWORD not in text
    functions = [e for e in plan if e["type"] == "aws:lambda/function:Function"]
    assert all("@sha256:" in f["inputs"]["imageUri"] for f in functions)
