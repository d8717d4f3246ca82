"""``profile`` answers bad input with a ``ValueError`` naming it.

Found by a new user's pass: ``profile("mnasnet_a1")`` was an ``AttributeError``,
``input_shape=(0, 0, 3)`` counted a 0x0 network without a word, and asking a fixed-size
keras.applications model for another size said it had no fixed size.
"""

import keras
import pytest

from mnas_keras import MnasNet, profile

BLOCKS = ["r1_k3_s11_e1_i8_o8"]


def test_not_a_model():
    with pytest.raises(ValueError, match="profile\\(\\) expects a keras.Model; received str: 'mnasnet_a1'"):
        profile("mnasnet_a1")


@pytest.mark.parametrize("shape", [(0, 0, 3), (32, 32), (32.0, 32, 3), (-1, 32, 3)])
def test_bad_input_shape(shape):
    model = MnasNet(BLOCKS, input_shape=(None, None, 3), stem_filters=8, head_filters=16, classes=3)
    with pytest.raises(ValueError, match=r"Expected input_shape \(height, width, channels\) of positive integers"):
        profile(model, input_shape=shape)


def test_another_size_of_a_fixed_non_mnasnet_model():
    model = keras.applications.MobileNetV3Small(input_shape=(64, 64, 3), weights=None, include_preprocessing=False)
    with pytest.raises(ValueError, match=r"rebuilds only a mnas_keras.MnasNet .* fixed input shape \(64, 64, 3\)"):
        profile(model, input_shape=(96, 96, 3))


def test_mnasnet_at_another_size_by_hand():
    # stem 3x3 conv stride 2 (8 filters, no bias) + BN, then the block: depthwise 3x3 + BN,
    # project 1x1 8->8 + BN, head 1x1 8->16 + BN, dense 16->3. MAdds at 32x32 (16x16 maps):
    model = MnasNet(BLOCKS, input_shape=(None, None, 3), stem_filters=8, head_filters=16, classes=3,
                    include_preprocessing=False)
    by_hand = 16 * 16 * (3 * 3 * 3 * 8) + 16 * 16 * (3 * 3 * 8) + 16 * 16 * 8 * 8 + 16 * 16 * 8 * 16 + 16 * 3
    assert profile(model, input_shape=(32, 32, 3)).madds == by_hand
