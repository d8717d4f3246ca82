"""LR-ASPP on a functional model nesting the backbone (the README's transfer-learning wrapper).

Found by a new user's pass: ``LRASPP(wrapper, n)`` said the wrapper "is not a
mnas_keras.MnasNet", and explicit layer names of the nested backbone were not found. The
head on the wrapper must compute what the head on the bare backbone computes (same head
weights), stay one flat graph, and round-trip through a ``.keras`` file in safe mode.
"""

import keras
import numpy as np
import pytest

from mnas_keras.applications import MobileNetV3Small
from mnas_keras.heads import LRASPP
from tests.heads._helpers import real_scale_statistics


@pytest.fixture(scope="module")
def backbone():
    return real_scale_statistics(MobileNetV3Small(input_shape=(64, 64, 3), include_top=False, weights=None,
                                                 output_stride=16, alpha=0.75))


def _wrapper(backbone):
    inputs = keras.Input((64, 64, 3))
    return keras.Model(inputs, backbone(inputs, training=False), name="wrapper")


def _copy_head(source, target):
    for layer in source.layers:
        if layer.name.startswith("lraspp"):
            target.get_layer(layer.name).set_weights(layer.get_weights())


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 3)).astype("float32")


def test_head_on_the_wrapper_equals_the_head_on_the_backbone(backbone, images):
    flat = LRASPP(backbone, num_classes=3)
    nested = LRASPP(_wrapper(backbone), num_classes=3)
    _copy_head(flat, nested)
    np.testing.assert_allclose(nested(images).numpy(), flat(images).numpy(), rtol=1e-5, atol=1e-5)
    assert not any(isinstance(layer, keras.Model) for layer in nested.layers)  # one flat graph
    # explicit layer names of the nested backbone work too
    named = LRASPP(_wrapper(backbone), num_classes=3, low_endpoint=backbone.endpoints["stride_8"],
                   high_endpoint=backbone.endpoints["stride_16"])
    _copy_head(flat, named)
    np.testing.assert_allclose(named(images).numpy(), flat(images).numpy(), rtol=1e-5, atol=1e-5)


def test_nested_round_trip_safe_mode(backbone, images, tmp_path):
    model = LRASPP(_wrapper(backbone), num_classes=3)
    path = str(tmp_path / "nested_seg.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    np.testing.assert_array_equal(loaded(images).numpy(), model(images).numpy())


def test_pooling_kernel_larger_than_the_feature_is_named():
    from mnas_keras.heads import LRASPPMobileNetV3Small

    # 64x64 at output stride 16: a 4x4 high feature, smaller than the paper's 49x49 kernel
    with pytest.raises(ValueError, match=r"pooling kernel 49x49 is larger than the high feature 4x4 .*"
                                         r"use pooling='global'"):
        LRASPPMobileNetV3Small(input_shape=(64, 64, 3), num_classes=3, pooling=(49, (16, 20)))
