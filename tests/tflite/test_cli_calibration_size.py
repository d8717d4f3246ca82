"""``mnas-tflite convert|benchmark --calibration=random:N|digits:N`` makes the calibration
images at a ``.keras`` model's own fixed size and channel count.

Found by a new user's pass: a 32x32 model saved as ``.keras`` could not be converted to
int8 without also passing ``--input_size=32``: the random images were made at the default
224x224x3 and refused ("batch of shape (8, 224, 224, 3) does not fit (None, 32, 32, 3)").
"""

import numpy as np
import pytest

from mnas_keras import MnasNet


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("calibration")
    paths = {}
    for channels in (3, 1):
        model = MnasNet(["r1_k3_s11_e1_i8_o8"], input_shape=(32, 32, channels), classes=3, stem_filters=8,
                        head_filters=16, name=f"tiny{channels}")
        paths[channels] = str(folder / f"tiny{channels}.keras")
        model.save(paths[channels])
    return paths


def _run(argv):
    from mnas_keras import _cli
    from mnas_keras.tflite.cli import main

    return _cli.guard("mnas-tflite", main, ["mnas-tflite", *argv])


@pytest.mark.parametrize("channels, calibration", [(3, "random:4"), (1, "digits:4")])
def test_convert_calibrates_at_the_models_size(keras_files, tmp_path, channels, calibration):
    from mnas_keras.tflite import load_interpreter

    output = str(tmp_path / "m.tflite")
    assert _run(["convert", f"--model={keras_files[channels]}", "--quantization=int8",
                 f"--calibration={calibration}", f"--output={output}"]) == 0
    (detail,) = load_interpreter(output).get_input_details()
    assert list(detail["shape"][1:]) == [32, 32, channels]  # the model's own input, not 224x224x3


def test_benchmark_calibrates_at_the_models_size(keras_files, capsys):
    assert _run(["benchmark", f"--models={keras_files[3]}", "--quantization=int8", "--runs=2", "--warmup=0",
                 "--json"]) == 0
    assert '"quantization": "int8"' in capsys.readouterr().out
