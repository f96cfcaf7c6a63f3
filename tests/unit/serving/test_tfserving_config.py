"""TF Serving's model config file as the multi-model server writes it (no TensorFlow, no model server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from convclass.errors import InvalidInput
from convclass.serving.tfserving import ServedModel, render_model_config, write_model_config


def test_each_model_is_one_config_entry_and_a_pinned_version_is_a_specific_policy() -> None:
    text = render_model_config(
        [
            ServedModel("encoder", Path("/opt/convclass/encoder/model")),
            ServedModel("tenant-1", Path("/m/a"), 3),
        ]
    )
    assert text == (
        "model_config_list {\n"
        "  config {\n"
        '    name: "encoder"\n'
        '    base_path: "/opt/convclass/encoder/model"\n'
        '    model_platform: "tensorflow"\n'
        "  }\n"
        "  config {\n"
        '    name: "tenant-1"\n'
        '    base_path: "/m/a"\n'
        '    model_platform: "tensorflow"\n'
        "    model_version_policy { specific { versions: 3 } }\n"
        "  }\n"
        "}\n"
    )
    assert render_model_config([]) == "model_config_list {\n}\n"


def test_quotes_and_backslashes_are_escaped_and_control_characters_refused() -> None:
    text = render_model_config([ServedModel("m", Path('/models/a "b"\\c'))])
    assert 'base_path: "/models/a \\"b\\"\\\\c"' in text
    with pytest.raises(InvalidInput, match="control characters"):
        render_model_config([ServedModel("m", Path("/models/a\nconfig {"))])


def test_the_file_is_replaced_whole_and_no_temporary_file_stays(tmp_path: Path) -> None:
    path = tmp_path / "tfs" / "models.config"
    write_model_config(path, [ServedModel("a", Path("/a"), 1)])
    write_model_config(path, [ServedModel("b", Path("/b"), 2)])
    assert '"b"' in path.read_text()
    assert '"a"' not in path.read_text()
    with pytest.raises(InvalidInput):
        write_model_config(path, [ServedModel("c", Path("/c\x00"))])
    assert '"b"' in path.read_text()
    assert [p.name for p in path.parent.iterdir()] == ["models.config"]
