"""LR-ASPP: published parameter count, wiring against a NumPy computation, shapes, saving."""

import numpy as np
import pytest
import tensorflow as tf

import keras

from mnas_keras.heads import LRASPP, LRASPPMnasNetA1, LRASPPMobileNetV3Large, LRASPPMobileNetV3Small
from tests.heads._helpers import real_scale_statistics


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_torchvision_configuration_parameter_count():
    # torchvision lraspp_mobilenet_v3_large, 21 classes: 3,221,538 trainable parameters
    # (DENSE_HEADS.md): backbone 2,971,952 + head 249,586.
    model = LRASPPMobileNetV3Large(num_classes=21, reduced_tail=False, pooling="global")
    assert _trainable(model) == 3_221_538
    head = sum(int(np.prod(w.shape)) for layer in model.layers if layer.name.startswith("lraspp")
               for w in layer.trainable_weights)
    # by hand: 960*128 + 2*128 (BN) + 960*128 + (40*21 + 21) + (128*21 + 21)
    assert head == 960 * 128 + 256 + 960 * 128 + 40 * 21 + 21 + 128 * 21 + 21 == 249_586
    assert model.get_layer("lraspp_low_classifier").input.shape[-1] == 40
    assert model.get_layer("lraspp_cbr_conv").input.shape[-1] == 960


@pytest.fixture(scope="module")
def small_segmenter():
    return real_scale_statistics(LRASPPMobileNetV3Small(input_shape=(None, None, 3), num_classes=3, alpha=0.75))



@pytest.mark.parametrize("size", [(37, 51), (64, 64), (33, 97), (97, 33)])
def test_output_is_exactly_input_size(small_segmenter, size):
    x = np.zeros((1, *size, 3), "float32")
    assert tuple(small_segmenter(x).shape) == (1, *size, 3)


def test_keras_file_round_trip_safe_mode(small_segmenter, tmp_path):
    path = str(tmp_path / "seg.keras")
    small_segmenter.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    assert isinstance(loaded, LRASPP)
    x = np.random.default_rng(1).uniform(0, 255, (2, 41, 57, 3)).astype("float32")
    np.testing.assert_array_equal(loaded(x).numpy(), small_segmenter(x).numpy())
    assert loaded.get_config() == small_segmenter.get_config()


def _numpy_head(low, high, w, pooling_mean):
    """The head by hand on given features (BN in inference form)."""
    def conv1x1(x, kernel, bias=None):
        y = np.einsum("bhwc,cd->bhwd", x, kernel[0, 0])
        return y if bias is None else y + bias

    gamma, beta, mean, var = w["bn"]
    x = conv1x1(high, w["cbr"])
    x = np.maximum((x - mean) / np.sqrt(var + 1e-3) * gamma + beta, 0)
    s = pooling_mean(high)
    s = 1 / (1 + np.exp(-conv1x1(s, w["scale"])))
    x = x * s
    x = tf.compat.v1.image.resize_bilinear(x, low.shape[1:3], half_pixel_centers=True).numpy()
    x = conv1x1(x, *w["high_cls"]) + conv1x1(low, *w["low_cls"])
    return x


def test_head_matches_numpy_on_any_functional_backbone():
    inputs = keras.Input((None, None, 3))
    low = keras.layers.Conv2D(6, 3, strides=8, padding="same", name="low")(inputs)
    high = keras.layers.Conv2D(10, 3, strides=2, padding="same", name="high")(low)
    backbone = keras.Model(inputs, high)
    model = LRASPP(backbone, 4, filters=8, low_endpoint="low", high_endpoint="high")
    rng = np.random.default_rng(0)
    for v in model.weights:
        v.assign(rng.uniform(0.5, 1.5, v.shape).astype("float32") if "variance" in v.path
                 else rng.normal(0, 0.5, v.shape).astype("float32"))
    get = lambda name: [v.numpy() for v in model.get_layer(name).weights]  # noqa: E731
    weights = {
        "cbr": get("lraspp_cbr_conv")[0], "bn": get("lraspp_cbr_bn"),
        "scale": get("lraspp_scale_conv")[0], "high_cls": get("lraspp_high_classifier"),
        "low_cls": get("lraspp_low_classifier"),
    }
    x = rng.uniform(-1, 1, (2, 45, 35, 3)).astype("float32")
    feats = keras.Model(inputs, [low, high])(x)
    expected = _numpy_head(feats[0].numpy(), feats[1].numpy(), weights,
                           lambda h: h.mean(axis=(1, 2), keepdims=True))
    expected = tf.compat.v1.image.resize_bilinear(expected, (45, 35), half_pixel_centers=True).numpy()
    np.testing.assert_allclose(model(x).numpy(), expected, rtol=1e-4, atol=1e-4)


def test_paper_pooling_gate_is_resized():
    # (kernel 5, stride (2, 3)) on a 8x12 high feature pools to 2x3, then resizes to 8x12.
    model = LRASPPMobileNetV3Small(input_shape=(128, 192, 3), num_classes=2, pooling=(5, (2, 3)))
    assert tuple(model.get_layer("lraspp_pool").output.shape) == (None, 2, 3, 288)
    assert tuple(model.get_layer("lraspp_scale_resize").output.shape) == (None, 8, 12, 128)
    assert model.output_shape == (None, 128, 192, 2)


def test_mnasnet_output_stride_8_taps_end_of_stride_8_stage():
    model = LRASPPMnasNetA1(num_classes=2, output_stride=8, input_shape=(64, 64, 3))
    # MnasNet-A1's stride-8 stage ends with 40 filters; the 1280 head runs at stride 8.
    assert tuple(model.get_layer("lraspp_low_classifier").input.shape) == (None, 8, 8, 40)
    assert tuple(model.get_layer("lraspp_cbr_conv").input.shape) == (None, 8, 8, 1280)


def test_bad_arguments_are_named():
    inputs = keras.Input((16, 16, 3))
    backbone = keras.Model(inputs, keras.layers.Conv2D(2, 1, name="c")(inputs))
    with pytest.raises(ValueError, match="low_endpoint and high_endpoint"):
        LRASPP(backbone, 2)
    with pytest.raises(ValueError, match="Unknown low_endpoint 'nope'"):
        LRASPP(backbone, 2, low_endpoint="nope", high_endpoint="c")
    with pytest.raises(ValueError, match="pooling='avg'"):
        LRASPPMobileNetV3Small(num_classes=2, pooling="avg")
    with pytest.raises(ValueError, match="num_classes=0"):
        LRASPPMobileNetV3Small(num_classes=0)
    with pytest.raises(ValueError, match="backbone_weights='missing.h5'"):
        LRASPPMobileNetV3Small(num_classes=2, backbone_weights="missing.h5")
