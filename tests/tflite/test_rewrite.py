"""The int8 hard-swish rewrite: same function as the float Keras model, int8 operators that
XNNPACK runs, the choice recorded in the flatbuffer, and the default of ``convert``."""

import keras
import numpy as np
import pytest

import mnas_keras
from mnas_keras.tflite import (
    TFLiteConversionError,
    conversion_info,
    convert,
    delegation,
    list_operators,
    read_metadata,
    rewrite_hard_swish,
    run_tflite,
)
from mnas_keras.tflite.rewrite import is_hard_swish

from .conftest import randomize_batchnorm


def _max_rel(a, b):
    return float(np.abs(a - b).max() / (np.abs(b).max() + 1e-12))


@pytest.fixture(scope="module")
def mnv3_large():
    model = mnas_keras.create_model(
        "mobilenet_v3_large", input_shape=(32, 32, 3), classes=10, classifier_activation=None, alpha=0.75
    )
    return randomize_batchnorm(model, seed=1)


@pytest.mark.parametrize("which", ["small", "large"])
def test_rewrite_is_the_same_function(which, mnv3_small, mnv3_large, images32):
    model = mnv3_small if which == "small" else mnv3_large
    before = [w.numpy().copy() for w in model.weights]
    copy, report = rewrite_hard_swish(model)
    layers = sum(is_hard_swish(layer) for layer in model.layers)
    assert report["layers"] == layers == (19 if which == "small" else 21)
    # Large's stem activation feeds a residual Add beside an unscaled branch: written explicitly.
    assert (report["folded"], report["explicit"]) == ((19, 0) if which == "small" else (20, 1))
    rewritten = [layer.name for layer in copy.layers if is_hard_swish(layer)]
    assert rewritten == [], "every hard-swish layer of the copy computes a rewritten form"
    expected = model(images32, training=False).numpy()
    assert _max_rel(copy(images32, training=False).numpy(), expected) < 1e-5
    # The caller's model is untouched.
    assert all(np.array_equal(w.numpy(), b) for w, b in zip(model.weights, before))
    assert sum(is_hard_swish(layer) for layer in model.layers) == layers


def test_folded_float_tflite_matches_keras(mnv3_small, images32):
    tflite = convert(mnv3_small, hard_swish="fold")
    ops = list_operators(tflite)
    assert "HARD_SWISH" not in ops
    assert _max_rel(run_tflite(tflite, images32)[0], mnv3_small(images32, training=False).numpy()) < 1e-4
    assert conversion_info(tflite)["hard_swish"] == {"mode": "fold", "layers": 19, "folded": 19, "explicit": 0}


def test_int8_default_folds_and_float_default_keeps_the_native_op(mnv3_small, images32):
    int8 = convert(mnv3_small, "int8", representative_data=images32)
    assert "HARD_SWISH" not in list_operators(int8)
    info = conversion_info(int8)
    assert info["quantization"] == "int8" and info["hard_swish"]["mode"] == "fold"
    native = convert(mnv3_small, "int8", representative_data=images32, hard_swish="native")
    assert list_operators(native)["HARD_SWISH"] == 19
    assert conversion_info(native)["hard_swish"] == {"mode": "native", "layers": 19}
    fp32 = convert(mnv3_small)
    assert list_operators(fp32)["HARD_SWISH"] == 19
    assert conversion_info(fp32) == {"quantization": None, "hard_swish": {"mode": "native", "layers": 19}}
    assert "min_runtime_version" in read_metadata(int8)  # the converter's own entries survive


def test_unfoldable_cases_fall_back_to_explicit(images32):
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    a = keras.layers.Activation("hard_swish", name="into_bn")(x)
    a = keras.layers.BatchNormalization()(a)  # not linear in the scale: cannot absorb 6x
    shared = keras.layers.Conv2D(8, 1, name="shared")
    b = keras.layers.Activation("hard_swish", name="into_shared")(x)
    b = shared(b)
    c = shared(x)  # the same kernel also sees an unscaled input
    d = keras.layers.Activation("hard_swish", name="folds")(x)
    d = keras.layers.GlobalAveragePooling2D(keepdims=True)(d)
    d = keras.layers.Conv2D(8, 1, name="absorbs")(d)
    e = keras.layers.Activation("hard_swish", name="is_output")(x)
    f1 = keras.layers.Activation("hard_swish", name="pair_a")(x)
    f2 = keras.layers.Activation("hard_swish", name="pair_b")(c)
    f = keras.layers.Concatenate()([f1, f2])  # both 6x: the concatenation carries 6x
    f = keras.layers.Conv2D(4, 1, name="after_pair")(f)
    y = keras.layers.Add()([a, b, c, d])
    model = randomize_batchnorm(keras.Model(inputs, [y, e, f]))
    copy, report = rewrite_hard_swish(model)
    assert report == {"mode": "fold", "layers": 6, "folded": 3, "explicit": 3}
    for got, want in zip(copy(images32), model(images32)):
        assert _max_rel(got.numpy(), want.numpy()) < 1e-5
    assert np.allclose(copy.get_layer("absorbs").kernel.numpy() * 6, model.get_layer("absorbs").kernel.numpy())
    assert np.array_equal(copy.get_layer("shared").kernel.numpy(), model.get_layer("shared").kernel.numpy())


def test_models_without_hard_swish_are_not_copied(tiny_model):
    plain = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3)])
    same, report = rewrite_hard_swish(plain)
    assert same is plain and report["reason"] == "no hard-swish layers"
    with pytest.raises(ValueError, match="'fast'"):
        rewrite_hard_swish(tiny_model, "fast")
    with pytest.raises(TFLiteConversionError, match="hard_swish mode 'fast'"):
        convert(tiny_model, hard_swish="fast")


def test_delegation_report_names_the_fallback_ops(mnv3_small, images32):
    """The native int8 HARD_SWISH is left to the built-in kernel and splits XNNPACK's graph."""
    shape = (1, 32, 32, 3)
    native = delegation(convert(mnv3_small, "int8", representative_data=images32, hard_swish="native",
                                batch_size=1))
    folded = delegation(convert(mnv3_small, "int8", representative_data=images32, batch_size=1))
    assert native.undelegated.get("HARD_SWISH") == 19 and native.partitions >= 19
    assert folded.undelegated == {} and folded.partitions == 1, (folded, shape)
