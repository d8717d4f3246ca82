"""A misspelt keyword argument is an error, as in keras.applications, never silently dropped.

``keras.Model``'s functional constructor ignores keyword arguments it does not know, so
``MnasNet(..., dropout=0.3)`` (for ``dropout_rate``) built a model with the default dropout
and no word. keras.applications' constructors (explicit signatures) raise ``TypeError``
for the same call; ours raise ``UnknownArgumentError`` (a ``TypeError`` and a
``ValueError``) naming the argument and the closest known name.
"""

import keras
import pytest

import mnas_keras
from mnas_keras.applications import MnasNetSmall, MobileNetV3Small
from mnas_keras.heads import LRASPP, SSDLite
from mnas_keras.models.arguments import UnknownArgumentError

BLOCKS = ["r1_k3_s11_e1_i16_o16", "r1_k3_s22_e3_i16_o24"]


def test_keras_applications_reject_the_same_typo():
    # The independent reference: keras.applications' explicit signature.
    with pytest.raises(TypeError, match="dropout"):
        keras.applications.MobileNetV3Small(input_shape=(32, 32, 3), weights=None, dropout=0.3)


@pytest.mark.parametrize("build", [
    lambda: mnas_keras.MnasNet(BLOCKS, input_shape=(32, 32, 3), dropout=0.3),
    lambda: MnasNetSmall(input_shape=(32, 32, 3), weights=None, dropout=0.3),
    lambda: MobileNetV3Small(input_shape=(32, 32, 3), weights=None, dropout=0.3),
    lambda: mnas_keras.create_model("mnasnet_small", input_shape=(32, 32, 3), dropout=0.3),
], ids=["MnasNet", "MnasNetSmall", "MobileNetV3Small", "create_model"])
def test_backbone_typo_is_named(build):
    with pytest.raises(UnknownArgumentError, match=r"'dropout'.*did you mean 'dropout_rate'") as info:
        build()
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)


@pytest.fixture(scope="module")
def small_backbone():
    return MobileNetV3Small(input_shape=(64, 64, 3), include_top=False, weights=None, output_stride=16)


def test_heads_typo_is_named(small_backbone):
    with pytest.raises(UnknownArgumentError, match=r"LRASPP.*'filter'.*did you mean 'filters'"):
        LRASPP(small_backbone, 3, filter=64)
    with pytest.raises(UnknownArgumentError, match=r"SSDLite.*'extra_filter'.*did you mean 'extra_filters'"):
        SSDLite(small_backbone, 3, extra_filter=(32, 16, 16, 8))


def test_known_keras_arguments_still_work(small_backbone):
    assert mnas_keras.MnasNet(BLOCKS, input_shape=(32, 32, 3), classes=4, trainable=False).trainable is False
    assert LRASPP(small_backbone, 3, trainable=False).trainable is False
