"""The local run's workflows are the deployed ones.

Both definitions are rendered both ways: by the Pulumi program (under mocks, with the example stack's config,
as ``pulumi up`` renders them) and by the local stack on the embedded AWS (as ``convclass-local`` and the
scenario tests create it). Once every resource's name or ARN is replaced by what it stands for, the two may
differ only in the local run's documented settings (``PipelineSettings.for_local_run``, listed in
docs/local-and-cli.md): any other field that differs fails this test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from convclass.layout import PIPELINE_FUNCTIONS
from convclass_local import stack as local_stack
from convclass_local.embedded import EmbeddedAws
from convclass_local.runtime import LocalRuntime
from infra.mocks import Recording
from tests.infra.conftest import only

#: A field one definition has and the other has not.
ABSENT = "<absent>"


def local_settings(deployed_poll_seconds: int) -> dict[tuple[str, ...], tuple[Any, Any]]:
    """The local run's settings (docs/local-and-cli.md) where the training definition shows them:
    path → (deployed value, local value)."""
    return {
        # endpoint_poll_seconds: the stack config's deployed; 1 s locally (endpoints start in seconds).
        ("States", "WaitForEndpoint", "Seconds"): (deployed_poll_seconds, 1),
        ("States", "WaitForDeletion", "Seconds"): (deployed_poll_seconds, 1),
        # export_map: a Distributed Map deployed; inline locally (moto's engine has no Distributed Map).
        ("States", "ExportChunks", "ItemProcessor", "ProcessorConfig", "Mode"): ("DISTRIBUTED", "INLINE"),
        ("States", "ExportChunks", "ItemProcessor", "ProcessorConfig", "ExecutionType"): ("STANDARD", ABSENT),
    }


def _replace(value: Any, names: dict[str, str]) -> Any:
    """``value`` with every string that is a resource's name or ARN replaced by what the resource is."""
    if isinstance(value, dict):
        return {key: _replace(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace(item, names) for item in value]
    return names.get(value, value) if isinstance(value, str) else value


def differences(
    deployed: Any, local: Any, path: tuple[str, ...] = ()
) -> dict[tuple[str, ...], tuple[Any, Any]]:
    """Every leaf where the two documents differ: path → (deployed value, local value)."""
    if isinstance(deployed, dict) and isinstance(local, dict):
        found: dict[tuple[str, ...], tuple[Any, Any]] = {}
        for key in sorted(deployed.keys() | local.keys()):
            found.update(differences(deployed.get(key, ABSENT), local.get(key, ABSENT), (*path, key)))
        return found
    if isinstance(deployed, list) and isinstance(local, list) and len(deployed) == len(local):
        found = {}
        for index, (left, right) in enumerate(zip(deployed, local, strict=True)):
            found.update(differences(left, right, (*path, str(index))))
        return found
    return {} if deployed == local else {path: (deployed, local)}


#: Stack outputs that name a resource the definitions refer to.
RESOURCE_OUTPUTS = (
    "data_bucket",
    "kms_key_arn",
    "event_bus_name",
    "sagemaker_role_arn",
    "shared_endpoint_name",
)


def _names(
    function_arns: dict[str, str], outputs: dict[str, str], training_image: str, serving_image: str
) -> dict[str, str]:
    """One world's names and ARNs → what each resource is (the same in both worlds)."""
    return {
        **{arn: f"<{key}>" for key, arn in function_arns.items()},
        **{outputs[output]: f"<{output}>" for output in RESOURCE_OUTPUTS},
        training_image: "<training_image>",
        serving_image: "<serving_image>",
    }


def _deployed_names(recording: Recording) -> dict[str, str]:
    functions = {
        key: only(recording, "aws:lambda/function:Function", f"functions-{key}-function").outputs["arn"]
        for key in PIPELINE_FUNCTIONS
    }
    images = recording.stack_outputs["image_uris"]
    return _names(functions, recording.stack_outputs, images["training"], images["serving"])


def _deployed(recording: Recording, workflow: str) -> dict[str, Any]:
    machine = only(recording, "aws:sfn/stateMachine:StateMachine", f"orchestration-{workflow}")
    return _replace(json.loads(machine.inputs["definition"]), _deployed_names(recording))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def local_definitions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The local stack's definitions as the engine holds them (deployed with the local run's settings), names
    and ARNs replaced."""
    settings = LocalRuntime(workdir=tmp_path_factory.mktemp("local")).pipeline_settings
    with EmbeddedAws() as aws:
        outputs = local_stack.deploy(aws, settings)
        lam, sfn = aws.client("lambda"), aws.client("stepfunctions")
        functions = {
            key: lam.get_function(FunctionName=local_stack.function_name(key))["Configuration"]["FunctionArn"]
            for key in PIPELINE_FUNCTIONS
        }
        resources = {output: outputs.require(output) for output in RESOURCE_OUTPUTS}
        names = _names(functions, resources, local_stack.TRAINING_IMAGE_URI, local_stack.SERVING_IMAGE_URI)
        yield {
            workflow: _replace(
                json.loads(sfn.describe_state_machine(stateMachineArn=outputs.require(arn))["definition"]),
                names,
            )
            for workflow, arn in (
                ("training", "training_state_machine_arn"),
                ("inference", "inference_state_machine_arn"),
            )
        }


def test_training_definitions_differ_only_in_names_and_the_local_settings(
    recording: Recording, local_definitions: dict[str, Any], settings: dict[str, Any]
) -> None:
    assert differences(_deployed(recording, "training"), local_definitions["training"]) == local_settings(
        settings["pipeline"]["endpointPollSeconds"]
    )


def test_inference_definitions_differ_only_in_names(
    recording: Recording, local_definitions: dict[str, Any]
) -> None:
    assert differences(_deployed(recording, "inference"), local_definitions["inference"]) == {}


def test_every_resource_of_the_definitions_is_named_by_what_it_is(
    recording: Recording, local_definitions: dict[str, Any]
) -> None:
    """The comparison above is between the same resources, not between two sets of strings that never met."""
    placeholders = set(_deployed_names(recording).values())
    text = json.dumps(local_definitions)
    assert {name for name in placeholders if name in text} == placeholders


def test_differences_sees_every_kind_of_change() -> None:
    base = {"States": {"A": {"Seconds": 60, "Next": "B", "Retry": [{"MaxAttempts": 3}]}}}
    changed = {"States": {"A": {"Seconds": 60, "Next": "C", "Retry": [{"MaxAttempts": 3}, {}]}, "D": {}}}
    assert differences(base, base) == {}
    assert differences(base, changed) == {
        ("States", "A", "Next"): ("B", "C"),
        ("States", "A", "Retry"): ([{"MaxAttempts": 3}], [{"MaxAttempts": 3}, {}]),
        ("States", "D"): (ABSENT, {}),
    }


def test_the_local_settings_are_documented() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "local-and-cli.md").read_text(encoding="utf-8")
    for setting in ("endpoint_poll_seconds", "export_map"):
        assert f"`{setting}`" in docs
