"""The codec's activation names against their definitions at hand-computed points
(MobileNetV3 paper: hard-swish ``x * relu6(x + 3) / 6``, hard-sigmoid ``relu6(x + 3) / 6``)."""

import math

import numpy as np
import pytest

from mnas_keras.layers.activations import activation_layer

X = np.array([-4.0, -1.0, 0.0, 1.0, math.log(3.0), 4.0, 7.0], "float32")
EXPECTED = {
    "relu": [0.0, 0.0, 0.0, 1.0, math.log(3.0), 4.0, 7.0],
    "relu6": [0.0, 0.0, 0.0, 1.0, math.log(3.0), 4.0, 6.0],
    "hswish": [0.0, -1.0 / 3.0, 0.0, 2.0 / 3.0, math.log(3.0) * (math.log(3.0) + 3.0) / 6.0, 4.0, 7.0],
    "hsig": [0.0, 1.0 / 3.0, 0.5, 2.0 / 3.0, (math.log(3.0) + 3.0) / 6.0, 1.0, 1.0],
    "sigmoid": [1 / (1 + math.e ** 4), 1 / (1 + math.e), 0.5, 1 / (1 + 1 / math.e), 0.75,
                1 / (1 + math.e ** -4), 1 / (1 + math.e ** -7)],
}
EXPECTED["swish"] = [x * s for x, s in zip(X.tolist(), EXPECTED["sigmoid"])]


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_activation_values_by_hand(kind):
    got = np.asarray(activation_layer(kind, name=kind)(X))
    np.testing.assert_allclose(got, EXPECTED[kind], rtol=1e-5, atol=1e-6)


def test_unknown_activation():
    with pytest.raises(ValueError, match="unknown activation 'mish'"):
        activation_layer("mish")
