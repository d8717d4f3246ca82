"""Published constants of the MnasNet family, checked against their sources (not the code).

- Batch norm: tensorflow/tpu ``mnasnet_models.py`` uses ``batch_norm_momentum=0.99`` and
  ``batch_norm_epsilon=1e-3``; keras.applications' MobileNetV3 uses momentum 0.999, epsilon 1e-3.
- ImageNet normalization: ``mean = (0.485, 0.456, 0.406) * 255``, ``std = (0.229, 0.224,
  0.225) * 255`` (torchvision / keras ``preprocess_input(mode="torch")``).
- Drop connect: EfficientNet's ``drop_connect_rate * block_index / num_blocks``, with
  ``block_index`` counted from 0 over all blocks of all stages.
"""

import keras
import numpy as np
import pytest

import mnas_keras
from mnas_keras import MnasNet
from mnas_keras.layers import DropConnect

TINY = ["r1_k3_s11_e1_i32_o16", "r2_k3_s22_e6_i16_o24_se0.25", "r2_k5_s22_e3_i24_o40_se0.25"]


def _batch_norms(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def test_default_batch_norm_is_tensorflow_tpu_mnasnet():
    m = MnasNet(TINY, input_shape=(32, 32, 3), classes=10)
    stem = m.get_layer("stem_bn")
    assert (stem.epsilon, stem.momentum) == (1e-3, 0.99)
    bns = _batch_norms(m)
    assert len(bns) == 16  # stem 1 + block e1: 2 + four e>1 blocks: 3 each + head 1
    assert {(bn.epsilon, bn.momentum) for bn in bns} == {(1e-3, 0.99)}


@pytest.mark.parametrize("name, momentum", [("mnasnet_a1", 0.99), ("mobilenet_v3_small", 0.999)])
def test_application_batch_norm(name, momentum):
    m = mnas_keras.create_model(name, input_shape=(32, 32, 3), classes=10)
    assert {(bn.epsilon, bn.momentum) for bn in _batch_norms(m)} == {(1e-3, momentum)}


def test_imagenet_normalization_maps_the_published_mean_to_zero():
    m = MnasNet(TINY, input_shape=(2, 2, 3), classes=10, include_preprocessing=True)
    layer = m.get_layer("normalization")
    x = np.zeros((1, 2, 2, 3), "float32")
    x[0, 0, 0] = [123.675, 116.28, 103.53]  # the mean, published in 0-255 units
    x[0, 0, 1] = [255.0, 255.0, 255.0]
    y = np.asarray(layer(x))
    np.testing.assert_allclose(y[0, 0, 0], [0.0, 0.0, 0.0], atol=1e-5)
    # (255 - 255 * mean) / (255 * std), by hand: 131.325 / 58.395, 138.72 / 57.12, 151.47 / 57.375.
    np.testing.assert_allclose(y[0, 0, 1], [2.2488995, 2.4285715, 2.64], rtol=1e-5)
    # And against keras.applications' own implementation of the same published constants.
    reference = keras.applications.imagenet_utils.preprocess_input(x.copy(), mode="torch")
    np.testing.assert_allclose(y, reference, rtol=1e-5, atol=1e-5)


def test_scale_minus_one_to_one_normalization():
    m = mnas_keras.create_model("mobilenet_v3_small", input_shape=(32, 32, 3), include_preprocessing=True)
    layer = m.get_layer("rescaling")
    x = np.array([0.0, 127.5, 255.0, 63.75], "float32").reshape(1, 2, 2, 1) * np.ones(3, "float32")
    np.testing.assert_allclose(np.asarray(layer(x))[0, :, :, 0], [[-1.0, 0.0], [1.0, -0.5]], atol=1e-6)


def test_drop_connect_rates_follow_efficientnet():
    # TINY expands to 5 blocks; residual adds in blocks 2 (stage2_block2) and 4 (stage3_block2).
    m = MnasNet(TINY, input_shape=(32, 32, 3), classes=10, drop_connect_rate=0.5)
    rates = {layer.name: layer.rate for layer in m.layers if isinstance(layer, DropConnect)}
    assert rates == pytest.approx({"stage2_block2_drop": 0.5 * 2 / 5, "stage3_block2_drop": 0.5 * 4 / 5})


def test_expansion_endpoints_are_the_activated_expansion_outputs():
    # SSDLite / LR-ASPP (MobileNetV3 paper) read the expansion layer's output after its
    # activation, in front of each stride-2 depthwise convolution.
    m = MnasNet(TINY, input_shape=(32, 32, 3), include_top=False)
    assert {k: v for k, v in m.endpoints.items() if k.startswith("expansion")} == {
        "expansion_2": "stage2_block1_expand_act", "expansion_4": "stage3_block1_expand_act"}
    assert m.endpoints["stride_2"] == "stage1_block1_project_bn"


def test_dropout_defaults_and_override():
    # tensorflow/tpu MnasNet: dropout_rate=0.2 before the classifier; an argument overrides it.
    a1 = mnas_keras.create_model("mnasnet_a1", input_shape=(32, 32, 3), classes=10)
    assert a1.get_layer("dropout").rate == 0.2
    tuned = mnas_keras.create_model("mnasnet_a1", input_shape=(32, 32, 3), classes=10, dropout_rate=0.5)
    assert tuned.get_layer("dropout").rate == 0.5


@pytest.mark.parametrize("pooling, reduce", [("max", np.max), ("avg", np.mean)])
def test_pooling_reduces_the_feature_map_as_keras_applications(pooling, reduce):
    m = MnasNet(TINY[:2], input_shape=(32, 32, 3), include_top=False, pooling=pooling)
    probe = keras.Model(m.input, [m.get_layer("head_act").output, m.output])
    x = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    features, pooled = (np.asarray(t) for t in probe(x))
    np.testing.assert_allclose(pooled, reduce(features, axis=(1, 2)), rtol=1e-5, atol=1e-6)
