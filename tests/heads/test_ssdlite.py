"""SSDLite wiring: torchvision's parameter count, anchor layout by hand, .keras round trip."""

import math

import keras
import numpy as np
import pytest

from mnas_keras.heads import AnchorConfig, SSDLite, SSDLiteMnasNetA1, SSDLiteMobileNetV3Large, generate_anchors
from mnas_keras.applications import MobileNetV3Small


def _params(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_torchvision_ssdlite320_parameter_count():
    # torchvision ssdlite320_mobilenet_v3_large(num_classes=91): 91 = 90 COCO ids + background,
    # reduced tail, 6 anchors on every map; 3,440,060 trainable parameters (DENSE_HEADS.md:
    # features 1,620,512 + extra blocks 452,160 + predictors 1,367,388).
    model = SSDLiteMobileNetV3Large(
        num_classes=90, reduced_tail=True,
        anchor_config=AnchorConfig(reduce_boxes_in_lowest_layer=False),
    )
    assert _params(model) == 3_440_060
    assert _params(model.backbone) == 1_620_512
    assert model.feature_map_sizes == [(20, 20), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]
    channels = [model.get_layer(f"ssd_box{i}_dw").input.shape[-1] for i in range(1, 7)]
    assert channels == [672, 480, 512, 256, 256, 128]
    # 6 anchors x (400 + 100 + 25 + 9 + 4 + 1) cells
    assert model.output["box_encodings"].shape[1] == 3234
    assert model.output["class_logits"].shape[1:] == (3234, 91)


def test_tf_od_api_anchor_layout_by_hand():
    sizes = [(20, 20), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]
    anchors = generate_anchors(sizes)  # TF OD API default: 3 boxes on the lowest map
    assert anchors.shape == (3 * 400 + 6 * (100 + 25 + 9 + 4 + 1), 4)
    r2 = math.sqrt(2.0)
    # first cell of the 20x20 map: (0.1, 1), (0.2, 2), (0.2, 1/2); centre 0.5 / 20
    np.testing.assert_allclose(anchors[:3], [
        [0.025, 0.025, 0.1, 0.1],
        [0.025, 0.025, 0.2 / r2, 0.2 * r2],
        [0.025, 0.025, 0.2 * r2, 0.2 / r2],
    ], rtol=1e-6)
    # second cell moves along x
    np.testing.assert_allclose(anchors[3, :2], [0.025, 0.075], rtol=1e-6)
    # first cell of the 10x10 map: scale 0.35, next 0.5
    s, r3, r13 = 0.35, math.sqrt(3.0), math.sqrt(0.3333)
    np.testing.assert_allclose(anchors[1200:1206], [
        [0.05, 0.05, s, s],
        [0.05, 0.05, s / r2, s * r2],
        [0.05, 0.05, s * r2, s / r2],
        [0.05, 0.05, s / r3, s * r3],
        [0.05, 0.05, s / r13, s * r13],
        [0.05, 0.05, math.sqrt(0.35 * 0.5), math.sqrt(0.35 * 0.5)],
    ], rtol=1e-5)
    # the 1x1 map: scale 0.95, extra square sqrt(0.95 * 1.0), centred
    np.testing.assert_allclose(anchors[-6], [0.5, 0.5, 0.95, 0.95], rtol=1e-6)
    np.testing.assert_allclose(anchors[-1], [0.5, 0.5, math.sqrt(0.95), math.sqrt(0.95)], rtol=1e-6)


def test_non_square_image_base_size():
    # 320 high, 640 wide: base size (1, 0.5), so a square anchor is square in pixels
    a = generate_anchors([(1, 2)], AnchorConfig(reduce_boxes_in_lowest_layer=False), image_size=(320, 640))
    np.testing.assert_allclose(a[0], [0.5, 0.25, 0.2, 0.1], rtol=1e-6)


@pytest.fixture(scope="module")
def small_detector():
    bb = MobileNetV3Small(input_shape=(64, 64, 3), include_top=False, weights=None)
    return SSDLite(bb, num_classes=3, extra_filters=(32, 16, 16, 8))


def test_keras_round_trip_safe_mode(small_detector, tmp_path):
    path = tmp_path / "det.keras"
    small_detector.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, SSDLite) and loaded.num_classes == 3
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    a, b = small_detector(x), loaded(x)
    for key in ("box_encodings", "class_logits"):
        np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]))
    np.testing.assert_array_equal(loaded.anchors(), small_detector.anchors())


def test_class_bias_prior(small_detector):
    bias = small_detector.get_layer("ssd_class1_conv").bias.numpy()
    np.testing.assert_allclose(bias, -4.6)


def test_any_functional_backbone_by_layer_names():
    inp = keras.Input((64, 64, 3))
    x = keras.layers.Conv2D(8, 3, strides=4, padding="same", name="c4")(inp)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", name="c5")(x)
    backbone = keras.Model(inp, x)
    det = SSDLite(backbone, 2, feature_layers=("c4", "c5"), extra_filters=(8, 8))
    assert det.feature_map_sizes == [(16, 16), (8, 8), (4, 4), (2, 2)]
    with pytest.raises(ValueError, match="no endpoint or layer 'nope'"):
        SSDLite(backbone, 2, feature_layers=("nope", "c5"))


def _convs(inp):
    x = keras.layers.Conv2D(8, 3, strides=4, padding="same", name="c4")(inp)
    return keras.layers.Conv2D(16, 3, strides=2, padding="same", name="c5")(x)


def test_taps_inside_nested_backbones_equal_the_flat_backbone(tmp_path):
    # outer(pre -> middle(inner(c4 -> c5))): the taps are two levels down, one found by search,
    # one by path. The same layers in a flat backbone, weights copied, give the same outputs.
    i = keras.Input((32, 32, 3))
    inner = keras.Model(i, _convs(i), name="inner")
    i = keras.Input((32, 32, 3))
    middle = keras.Model(i, inner(i), name="middle")
    i = keras.Input((32, 32, 3))
    outer = keras.Model(i, middle(keras.layers.Rescaling(0.5, name="pre")(i)), name="outer")
    nested = SSDLite(outer, 2, feature_layers=("c4", "middle/inner/c5"), extra_filters=(8,))
    i = keras.Input((32, 32, 3))
    flat = SSDLite(keras.Model(i, _convs(keras.layers.Rescaling(0.5)(i))), 2, feature_layers=("c4", "c5"),
                   extra_filters=(8,))
    assert nested.feature_map_sizes == flat.feature_map_sizes == [(8, 8), (4, 4), (2, 2)]
    assert _params(nested) == _params(flat) == _params(outer) + _params(flat) - _params(flat.backbone)
    for layer in flat.layers:
        if layer.weights:
            source = inner.get_layer(layer.name) if layer.name in ("c4", "c5") else nested.get_layer(layer.name)
            layer.set_weights([w + 0.01 * k for k, w in enumerate(source.get_weights())])
            source.set_weights(layer.get_weights())
    x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    want, got = flat(x), nested(x)
    nested.save(tmp_path / "nested.keras")
    loaded = keras.saving.load_model(tmp_path / "nested.keras", safe_mode=True)
    for key in ("box_encodings", "class_logits"):
        np.testing.assert_allclose(np.asarray(got[key]), np.asarray(want[key]), rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(np.asarray(loaded(x)[key]), np.asarray(got[key]))
    with pytest.raises(ValueError, match="no endpoint or layer 'middle/nope'"):
        SSDLite(outer, 2, feature_layers=("middle/nope", "c5"))


def test_bad_arguments():
    with pytest.raises(ValueError, match="static input size"):
        SSDLite(MobileNetV3Small(include_top=False, weights=None), 3)
    with pytest.raises(ValueError, match="reduced_tail=False"):
        SSDLiteMnasNetA1(backbone_weights="imagenet", reduced_tail=True)
