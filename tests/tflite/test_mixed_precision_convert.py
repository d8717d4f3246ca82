"""A mixed-precision model converts to TFLite as its float32 twin.

Found by a new user's pass: a network trained with ``mixed_float16`` (``mnas-train
--mixed_precision=mixed_float16``, or ``MnasNet(..., dtype="mixed_float16")``) could not be
converted: every op was refused as non-builtin (``tf.Conv2D``, ``tf.Relu``...), with the advice
to "replace the layers that produce them".
"""

import keras
import numpy as np

from mnas_keras import MnasNet
from mnas_keras.tflite import compare, conversion_info, convert

BLOCKS = ["r1_k3_s11_e1_i8_o8", "r1_k3_s22_e3_i8_o16_se0.25_hswish_hsig"]


def _net(dtype=None):
    return MnasNet(BLOCKS, input_shape=(32, 32, 3), classes=3, stem_filters=8, head_filters=16, dtype=dtype)


def test_mixed_float16_model_and_its_wrapper_convert_like_a_float32_build():
    keras.utils.set_random_seed(0)
    mixed = _net("mixed_float16")
    reference = _net()  # the independent expectation: the same network built in float32
    reference.set_weights(mixed.get_weights())
    inputs = keras.Input((32, 32, 3))
    wrapper = keras.Model(inputs, keras.layers.Dense(2, dtype="mixed_float16", name="head")(mixed(inputs)))
    ref_inputs = keras.Input((32, 32, 3))
    ref_wrapper = keras.Model(ref_inputs, keras.layers.Dense(2, name="head")(reference(ref_inputs)))
    ref_wrapper.get_layer("head").set_weights(wrapper.get_layer("head").get_weights())
    x = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    for model, expected in ((mixed, reference), (wrapper, ref_wrapper)):
        flatbuffer = convert(model)
        assert compare(expected, flatbuffer, x).max_rel_diff < 1e-5
        assert conversion_info(flatbuffer)["float32_compute"]["layers"] > 0
    assert compare(mixed, convert(mixed, "int8", representative_data=x), x).top1_agreement is not None
