"""``compare`` / ``run_tflite`` given one image without its batch axis say so.

Found by a new user's pass: ``compare(model, tflite, image)`` with ``image`` of shape
(32, 32, 3) read it as 32 samples of shape (32, 3) and said "input_shape (32, 3) does not
fit TFLite input 0".
"""

import numpy as np
import pytest

from mnas_keras import MnasNet
from mnas_keras.tflite import InputShapeError, compare, convert, run_tflite


@pytest.fixture(scope="module")
def model_and_tflite():
    model = MnasNet(["r1_k3_s11_e1_i8_o8"], input_shape=(32, 32, 3), classes=3, stem_filters=8, head_filters=16)
    return model, convert(model)


def test_one_sample_without_batch_axis_is_named(model_and_tflite):
    model, tflite = model_and_tflite
    image = np.zeros((32, 32, 3), "float32")
    message = r"data of shape \(32, 32, 3\) is one sample; expected a batch \(N, 32, 32, 3\): pass data\[None\]"
    with pytest.raises(InputShapeError, match=message):
        compare(model, tflite, image)
    with pytest.raises(InputShapeError, match=message):
        run_tflite(tflite, image)
    report = compare(model, tflite, image[None])  # the hint's fix works
    assert report.num_samples == 1 and report.max_abs_diff < 1e-5
