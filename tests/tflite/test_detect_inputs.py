"""``run_detector`` / ``mnas-tflite detect`` on a .tflite that is not a detector: one clear error.

Found by a new user's pass: a classifier from ``mnas-tflite convert`` given to ``detect``
ended in a ``StopIteration`` traceback (it has no signature to run).
"""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def classifier_tflite(tmp_path_factory):
    from mnas_keras import MnasNet
    from mnas_keras.tflite import convert

    path = tmp_path_factory.mktemp("detect") / "classifier.tflite"
    convert(MnasNet(["r1_k3_s11_e1_i8_o8"], input_shape=(32, 32, 3), classes=3, stem_filters=8, head_filters=16),
            path=path)
    return path


def test_run_detector_names_a_classifier(classifier_tflite):
    from mnas_keras.tflite import InvalidModelError, run_detector

    with pytest.raises(InvalidModelError, match=rf"'{classifier_tflite}' is not a detector .*convert_detector"):
        run_detector(str(classifier_tflite), np.zeros((32, 32, 3), np.float32))


def test_cli_detect_is_one_line(classifier_tflite, tmp_path, capsys):
    from PIL import Image

    from mnas_keras import _cli
    from mnas_keras.tflite.cli import main

    image = tmp_path / "image.png"
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(image)
    argv = ["mnas-tflite", "detect", f"--model={classifier_tflite}", f"--image={image}", f"--output={tmp_path / 'o.png'}"]
    with pytest.raises(SystemExit) as info:
        raise SystemExit(_cli.guard("mnas-tflite", main, argv))  # as the console script
    lines = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(lines) == 1
    assert lines[0].startswith(f"mnas-tflite detect: error: '{classifier_tflite}' is not a detector")
    assert not (tmp_path / "o.png").exists()


def test_convert_detector_names_a_garbage_keras_file(tmp_path):
    from mnas_keras.tflite import TFLiteConversionError, convert_detector

    path = tmp_path / "ssd.keras"
    path.write_bytes(b"PK\x03\x04 truncated")
    # Keras alone said "File not found: filepath=...", although the file exists
    with pytest.raises(TFLiteConversionError, match=rf"'{path}' is not a valid \.keras archive"):
        convert_detector(str(path))

