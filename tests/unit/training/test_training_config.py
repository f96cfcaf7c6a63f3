from __future__ import annotations

import json
from pathlib import Path

import pytest

from convclass.errors import InvalidInput
from convclass.training import TrainingConfig, parse_hyperparameters
from convclass.training.config import load_hyperparameters


def test_sagemaker_strings_become_typed_values() -> None:
    config = parse_hyperparameters(
        {
            "architecture": "cnn",
            "epochs": "3",
            "learning_rate": "0.01",
            "class_weighting": "none",
            "seed": "9",
        }
    )
    assert config.epochs == 3
    assert config.learning_rate == pytest.approx(0.01)
    assert config.seed == 9
    assert config.class_weighting == "none"


def test_architecture_defaults_are_filled_in() -> None:
    default = parse_hyperparameters({})
    assert default.architecture == "minilm"
    cnn = parse_hyperparameters({"architecture": "cnn"})
    assert (default.epochs, cnn.epochs) == (4, 12)
    assert default.learning_rate is not None
    assert cnn.learning_rate is not None
    assert default.learning_rate < cnn.learning_rate
    assert parse_hyperparameters({"architecture": "cnn", "epochs": "2"}).epochs == 2


def test_unknown_key_is_named() -> None:
    with pytest.raises(InvalidInput, match="learning_rat") as caught:
        parse_hyperparameters({"learning_rat": "0.1", "epochs": "2"})
    assert "epochs" not in str(caught.value).split("(known")[0]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("epochs", "three"),
        ("epochs", "0"),
        ("architecture", "bert-large"),
        ("max_length", "4"),
        ("dropout", "1.5"),
    ],
)
def test_invalid_value_is_named(key: str, value: str) -> None:
    with pytest.raises(InvalidInput, match=f"invalid hyperparameter {key}"):
        parse_hyperparameters({key: value})


def test_base_model_dir_only_for_the_pretrained_encoder() -> None:
    with pytest.raises(InvalidInput, match="base_model_dir"):
        parse_hyperparameters({"architecture": "cnn", "base_model_dir": "/opt/models/x"})


def test_missing_file_means_defaults_and_bad_json_is_rejected(tmp_path: Path) -> None:
    assert load_hyperparameters(tmp_path / "absent.json") == TrainingConfig().resolved()
    bad = tmp_path / "hyperparameters.json"
    bad.write_text("{epochs: 3")
    with pytest.raises(InvalidInput, match=r"hyperparameters\.json is not valid JSON"):
        load_hyperparameters(bad)
    bad.write_text(json.dumps(["epochs", "3"]))
    with pytest.raises(InvalidInput, match="JSON object"):
        load_hyperparameters(bad)
