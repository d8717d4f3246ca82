"""NASNet cells as data: NASNetMobile against keras.applications.NASNetMobile, published
counts, the builder's other ops (hand-counted parameters) and TFLite built-in conversion."""

import re

import keras
import numpy as np
import pytest

import mnas_keras
from mnas_keras.applications import NASNetMobile
from mnas_keras.codec.cells import NASNET_A_NORMAL, NASNET_A_REDUCTION, CellSpec
from mnas_keras.models import profile
from mnas_keras.models.cells import CellNetworkError, build_cell, build_cell_network
from tests.tflite.conftest import randomize_batchnorm



def keras_cell_ids(n):
    """keras.applications' NASNet cell ids in build order: 2 stem cells, n normal, a reduction,
    n normal, a reduction, n normal (for n = 4: stem_1 stem_2 0..3 reduce_4 5..8 reduce_8 9..12)."""
    return (["stem_1", "stem_2"] + [str(i) for i in range(n)] + [f"reduce_{n}"]
            + [str(i) for i in range(n + 1, 2 * n + 1)] + [f"reduce_{2 * n}"]
            + [str(i) for i in range(2 * n + 1, 3 * n + 1)])


SEPARABLE = re.compile(r"^separable_conv_([12])(_bn)?_(normal|reduction)_(left|right)(\d)_(.+)$")


def our_layer_name(keras_name, n=4):
    """The name of our layer holding the weights of keras.applications' layer ``keras_name``."""
    fixed = {"stem_conv1": "stem_conv", "stem_bn1": "stem_bn", "predictions": "predictions"}
    if keras_name in fixed:
        return fixed[keras_name]
    match = SEPARABLE.match(keras_name)
    if match:
        conv, bn, kind, side, block, cell_id = match.groups()
        block = int(block)
        if kind == "reduction" and side == "left" and block == 4:
            block = 5  # keras names the separable op of reduction block 5 "reduction_left4"
        spec = CellSpec.from_string(NASNET_A_NORMAL if kind == "normal" else NASNET_A_REDUCTION)
        op = spec.blocks[block - 1].ops[0 if side == "left" else 1]
        cell = keras_cell_ids(n).index(cell_id)
        return f"cell{cell}_b{block}{'a' if side == 'left' else 'b'}_{op}_sep{conv}{'_bn' if bn else ''}"
    patterns = [
        (r"^adjust_conv_([12])_(.+)$", lambda m: f"_adjust_conv{m.group(1)}"),
        (r"^adjust_conv_projection_(.+)$", lambda m: "_adjust_conv"),
        (r"^adjust_bn_(.+)$", lambda m: "_adjust_bn"),
        (r"^(?:normal|reduction)_conv_1_(.+)$", lambda m: "_h_conv"),
        (r"^(?:normal|reduction)_bn_1_(.+)$", lambda m: "_h_bn"),
    ]
    for pattern, suffix in patterns:
        match = re.match(pattern, keras_name)
        if match:
            return f"cell{keras_cell_ids(n).index(match.groups()[-1])}{suffix(match)}"
    raise AssertionError(f"unmapped keras layer {keras_name}")


def copy_keras_weights(theirs, ours, n=4):
    copied = set()
    for layer in theirs.layers:
        if layer.weights:
            target = ours.get_layer(our_layer_name(layer.name, n))
            target.set_weights(layer.get_weights())
            copied.add(target.name)
    assert copied == {layer.name for layer in ours.layers if layer.weights}


@pytest.fixture(scope="module")
def mobile_pair():
    """(ours, keras') NASNetMobile at 224, logits, random BN statistics, weights copied."""
    theirs = keras.applications.NASNetMobile(weights=None, classifier_activation=None)
    randomize_batchnorm(theirs, seed=3)
    ours = NASNetMobile(weights=None, classifier_activation=None)
    copy_keras_weights(theirs, ours)
    return ours, theirs


def test_nasnet_mobile_counts_are_the_published_ones(mobile_pair):
    ours, _ = mobile_pair
    # keras.io applications table / keras.applications summary: 5,326,716 total,
    # 5,289,978 trainable, 1,126 weight tensors (742 trainable).
    assert ours.count_params() == 5_326_716
    assert sum(int(np.prod(w.shape)) for w in ours.trainable_weights) == 5_289_978
    assert (len(ours.weights), len(ours.trainable_weights)) == (1126, 742)
    assert ours.output_shape == (None, 1000) and ours.input_shape == (None, 224, 224, 3)


def test_nasnet_mobile_outputs_equal_keras_applications(mobile_pair):
    ours, theirs = mobile_pair
    raw = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype("float32")
    expected = np.asarray(theirs(keras.applications.nasnet.preprocess_input(raw.copy())))
    got = np.asarray(ours(raw))  # our model rescales [0, 255] to [-1, 1] itself
    assert np.abs(got - expected).max() / np.abs(expected).max() < 1e-5
    assert np.abs(expected).max() > 1.0  # random BN statistics give a real scale


def test_small_nasnet_with_skip_reduction_equals_keras_applications():
    # keras.applications' NASNet builder with other settings (F = 192 // 24 = 8, one normal cell
    # per stage, 8 stem filters, NASNet-A Large's skip_reduction) as the oracle.
    from keras.src.applications.nasnet import NASNet

    theirs = NASNet(input_shape=(32, 32, 3), penultimate_filters=192, num_blocks=1, stem_block_filters=8,
                    skip_reduction=True, weights=None, classes=5, default_size=32, classifier_activation=None)
    randomize_batchnorm(theirs, seed=5)
    ours = build_cell_network(NASNET_A_NORMAL, NASNET_A_REDUCTION, input_shape=(32, 32, 3), num_cells=1,
                              filters=8, stem_filters=8, skip_reduction=True, classes=5,
                              classifier_activation=None)
    assert ours.count_params() == theirs.count_params()
    copy_keras_weights(theirs, ours, n=1)
    x = np.random.default_rng(2).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    expected = np.asarray(theirs(x))
    assert np.abs(np.asarray(ours(x)) - expected).max() / np.abs(expected).max() < 1e-5


def test_nasnet_mobile_multiply_adds_match_the_paper(mobile_pair):
    # NASNet Table 3: 564M multiply-adds for NASNet-A (4 @ 1056) at 224x224.
    madds = profile(mobile_pair[0]).madds
    assert abs(madds - 564e6) / 564e6 < 0.03


def test_hand_counted_normal_cell_with_factorized_conv_and_pool():
    # F = 8 on an 8x8x16 input: h = 1x1 conv (16*8) + BN (4*8); p (16 channels != 8) gets the
    # same projection; conv1x3_3x1 = 3*8*8 + 3*8*8 + BN 32; max5x5 on 8 channels adds none.
    x = keras.Input((8, 8, 16))
    out, passed = build_cell(x, None, "conv1x3_3x1@0+max5x5@1", 8, reduction=False, name="c")
    model = keras.Model(x, out)
    assert passed is x and out.shape[1:] == (8, 8, 8)
    assert model.count_params() == (128 + 32) * 2 + 192 + 192 + 32


def test_hand_counted_reduction_cell_with_identity_dilated_conv_and_concat():
    # F = 8 on 8x8x8 (p = x): h = 64 + 32; id with stride 2 = ReLU, 1x1/2 conv 64 + BN 32;
    # dil3x3 = 3*3*8*8 + BN 32; the concat block is 4x4x16 and is the only unused state.
    x = keras.Input((8, 8, 8))
    out, _ = build_cell(x, None, "id@0&dil3x3@1", 8, reduction=True, name="c")
    model = keras.Model(x, out)
    assert out.shape[1:] == (4, 4, 16)
    assert model.count_params() == 96 + 96 + 576 + 32


def test_dilated_op_is_a_rate_2_conv_by_numpy():
    x = keras.Input((9, 9, 2))
    out, _ = build_cell(x, None, "dil3x3@0+id@0;out=2", 2, reduction=False, name="c")
    model = keras.Model(x, out)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            rng = np.random.default_rng(len(layer.name))
            layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()])
    data = np.random.default_rng(1).normal(size=(1, 9, 9, 2)).astype("float32")
    # By hand: h = BN(conv1x1(relu(x))) with fresh BN = x' / sqrt(1 + 1e-3); the block adds
    # BN(dilated_conv(relu(h))) and h.
    scale = 1 / np.sqrt(1 + 1e-3)
    h = np.maximum(data, 0) @ model.get_layer("c_h_conv").get_weights()[0][0, 0] * scale
    k = model.get_layer("c_b1a_dil3x3_conv1").get_weights()[0]
    padded = np.pad(np.maximum(h, 0), ((0, 0), (2, 2), (2, 2), (0, 0)))
    conv = np.zeros_like(h)
    for i in range(9):
        for j in range(9):
            patch = padded[0, i:i + 5:2, j:j + 5:2, :]  # rate 2: every second pixel
            conv[0, i, j] = np.einsum("abc,abcd->d", patch, k)
    np.testing.assert_allclose(np.asarray(model(data)), conv * scale + h, rtol=1e-4, atol=1e-4)


def test_every_op_builds_in_both_cells_and_converts_to_builtin_tflite():
    from mnas_keras.tflite import check_builtin_ops, compare, convert

    ops = ["id", "conv1x3_3x1", "conv1x7_7x1", "dil3x3", "avg3x3", "max3x3", "max5x5", "max7x7", "conv1x1",
           "conv3x3", "sep3x3", "sep5x5", "sep7x7"]
    blocks = [f"{a}@{i % 2}{'&' if i == 3 else '+'}{b}@{i + 1}" for i, (a, b) in enumerate(zip(ops[::2], ops[1::2]))]
    cell = ",".join(blocks) + ",sep7x7@0+id@2;out=0.5.6.7"  # concat block, states 0/1 in the output
    # A reduction cell (9x9 -> 5x5, p = the input) then a normal cell (p = 9x9, factorized
    # down to 5x5); the output concatenates F (state 0) + 2F (concat block) + F + F = 5F.
    x = keras.Input((9, 9, 6))
    y, p = build_cell(x, None, cell, 4, reduction=True, name="r")
    y, _ = build_cell(y, p, cell, 4, reduction=False, name="n")
    assert y.shape[1:] == (5, 5, 20)
    model = randomize_batchnorm(keras.Model(x, y), seed=2)
    tflite = convert(model)
    check_builtin_ops(tflite)
    images = np.random.default_rng(0).uniform(-1, 1, (2, 9, 9, 6)).astype("float32")
    assert compare(model, tflite, images).max_rel_diff < 1e-4


def test_registry_name_with_width_suffix():
    # alpha 0.25: F = round(44 * 0.25) = 11; the last normal cells are 4F wide and output
    # 6 * 4F = 264 channels (1056 * 0.25).
    model = mnas_keras.create_model("nasnet_mobile_025", input_shape=(32, 32, 3), include_top=False,
                                    pooling="avg", num_cells=1)
    assert model.name == "nasnet_mobile" and model.output_shape == (None, 264)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(input_shape=(None, None, 3)), "fixed input size"),
        (dict(input_shape=(24, 24, 3)), "at least 32x32"),
        (dict(normal="sep3x3@0+id@7"), "input 7 does not exist yet"),
        (dict(weights="imagenet"), "keras.applications.NASNetMobile"),
    ],
)
def test_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        NASNetMobile(**{"weights": None, **kwargs})


def test_builder_error_is_a_value_error():
    with pytest.raises(CellNetworkError, match="num_cells=0"):
        build_cell_network(NASNET_A_NORMAL, NASNET_A_REDUCTION, input_shape=(32, 32, 3), num_cells=0)


def test_batch_norm_settings_reach_every_layer():
    # Training configs pass bn_momentum through the application's **kwargs.
    x, p = keras.Input((8, 8, 4)), keras.Input((16, 16, 4))  # p is factorized down to 8x8
    out, _ = build_cell(x, p, NASNET_A_REDUCTION, 4, reduction=True, name="c", bn_momentum=0.9, bn_epsilon=1e-5)
    bns = [layer for layer in keras.Model([x, p], out).layers
           if isinstance(layer, keras.layers.BatchNormalization)]
    assert bns and {(b.momentum, b.epsilon) for b in bns} == {(0.9, 1e-5)}


def test_constructor_has_the_package_signature():
    # The uniform keras.applications-style argument list of every constructor here.
    import inspect

    expected = ["input_shape", "alpha", "include_top", "weights", "input_tensor", "classes", "pooling",
                "dropout_rate", "classifier_activation", "include_preprocessing", "name", "kwargs"]
    assert list(inspect.signature(NASNetMobile).parameters) == expected
    assert NASNetMobile.__name__ == "NASNetMobile" and "Args:" in NASNetMobile.__doc__
