"""Stack outputs: where the operator tools find the deployed stack's names and ARNs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from convclass.errors import InvalidInput
from convclass.stack import MissingStackOutput, StackOutputs


def test_outputs_merge_file_environment_and_flags_later_ones_winning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"data_bucket": "from-file", "region": "eu-west-1", "unknown_output": [1]}))
    monkeypatch.setenv("CONVCLASS_DATA_BUCKET", "from-env")
    outputs = StackOutputs.load(path, region="us-east-2")
    assert outputs.data_bucket == "from-env"
    assert outputs.region == "us-east-2"
    with pytest.raises(MissingStackOutput, match="CONVCLASS_TRAINING_STATE_MACHINE_ARN"):
        outputs.require("training_state_machine_arn")


def test_outputs_file_that_is_not_an_object_is_named(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text("[1, 2]")
    with pytest.raises(InvalidInput, match="must hold a JSON object"):
        StackOutputs.load(path)
    path.write_text("{not json")
    with pytest.raises(InvalidInput, match="is not JSON"):
        StackOutputs.load(path)
