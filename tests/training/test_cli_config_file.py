"""``mnas-train --config_file`` names the file when its content is bad (it said only
"config is not valid JSON"), and a binary file is a one-line error, not a traceback."""

import pytest

from mnas_keras.training.cli import build_config
from mnas_keras.training.errors import ConfigError


@pytest.mark.parametrize("content, reason", [
    (b'{"trainer": ', "config is not valid JSON: "),
    (b"[1]", "config must be a mapping; received [1]"),
    (b'{"trainer": {"epochz": 3}}', "unknown config key trainer.'epochz'"),
    (b"\xff\xfe\x00binary", "cannot be read: not UTF-8 text"),
])
def test_bad_config_file_is_named(tmp_path, content, reason):
    path = tmp_path / "config.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        build_config(config_file=str(path))
    assert str(info.value).startswith(f"--config_file '{path}'"), str(info.value)
    assert reason in str(info.value)


def test_model_and_blocks_together_are_refused():
    # blocks define the network (ModelConfig), so --model was dropped without a word
    with pytest.raises(ConfigError, match=r"--model=mnasnet_a1 and --blocks both name the network; give one of them"):
        build_config(recipe="digits", model="mnasnet_a1", blocks=["r1_k3_s11_e1_i16_o16"])
    assert build_config(recipe="digits", blocks=["r1_k3_s11_e1_i16_o16"]).model.blocks == ("r1_k3_s11_e1_i16_o16",)
