"""Conversion: the fast traced path, quantization modes, built-in-ops check, errors."""

import os

import numpy as np
import pytest

from mnas_keras.tflite import (
    InputShapeError,
    QuantizationError,
    TFLiteConversionError,
    UnsupportedOpsError,
    compare,
    convert,
    list_operators,
    load_interpreter,
)


def test_fast_path_matches_stock_converter(mnv3_small, mnv3_small_tflite, images32):
    """The traced path yields the stock converter's operators and identical outputs."""
    stock = convert(mnv3_small, method="keras")
    assert list_operators(stock) == list_operators(mnv3_small_tflite)
    from mnas_keras.tflite import run_tflite

    fast_out = run_tflite(mnv3_small_tflite, images32)[0]
    stock_out = run_tflite(stock, images32)[0]
    np.testing.assert_allclose(fast_out, stock_out, rtol=1e-6, atol=1e-7 * np.abs(stock_out).max())
    assert np.isfinite(fast_out).all() and np.abs(fast_out).max() > 0


def test_hard_swish_maps_to_native_op(mnv3_small, mnv3_small_tflite):
    ops = list_operators(mnv3_small_tflite)
    hswish = sum(
        1
        for layer in mnv3_small.layers
        if layer.get_config().get("activation") in ("hard_swish", "hard_silu")
    )
    assert hswish > 10
    assert ops["HARD_SWISH"] == hswish
    # hard-sigmoid is ADD(+3, fused RELU6) then MUL(1/6): no standalone clamp chains.
    for chain_op in ("RELU6", "RELU", "MINIMUM", "MAXIMUM", "DIV", "LOGISTIC"):
        assert chain_op not in ops


def _operators(tflite):
    """``[(op_name, input dtypes, output dtypes)]`` as LiteRT's interpreter reads the model
    (no delegate, so every operator is listed as itself)."""
    interpreter = load_interpreter(tflite, use_xnnpack=False)
    tensors = {t["index"]: np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()}
    return [
        (op["op_name"], [tensors.get(i) for i in op["inputs"]], [tensors[i] for i in op["outputs"]])
        for op in interpreter._get_ops_details()
    ]


_COMPUTE = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL", "MEAN")


def test_quantization_modes(tiny_model, images32):
    fp32 = convert(tiny_model, input_shape=(32, 32, 3))
    sizes = {None: len(fp32)}
    # tiny_model's constants: conv 3x3 (+ the folded BN bias), conv 1x1 + bias, depthwise +
    # bias, dense + bias: 8 tensors.
    for mode in ("float16", "dynamic", "int8", "int8_io"):
        data = images32 / 255.0 if mode.startswith("int8") else None
        fb = convert(tiny_model, mode, representative_data=data, input_shape=(32, 32, 3))
        sizes[mode] = len(fb)
        ops = _operators(fb)
        compute = [op for op in ops if op[0] in _COMPUTE]
        interpreter = load_interpreter(fb)
        inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        if mode == "float16":  # float16 constants, dequantized once, float32 arithmetic
            dequantize = [op for op in ops if op[0] == "DEQUANTIZE"]
            assert [(i, o) for _, i, o in dequantize] == [(["float16"], ["float32"])] * 8
            assert all(set(i) <= {"float32", "int32", None} for _, i, _ in compute)
        if mode == "dynamic":  # int8 weights of the two large convolutions, float activations
            convs = [i for name, i, _ in ops if name == "CONV_2D"]
            assert convs == [["float32", "int8", "float32"]] * 2
        if mode in ("int8", "int8_io"):  # integer arithmetic everywhere, int32 biases
            # conv, hard-swish folded to ADD+MUL+MUL, mean, conv, gate MUL, excite MUL,
            # depthwise, residual ADD, mean, dense.
            assert len(compute) == 12 and all(o == ["int8"] for _, _, o in compute)
            assert all(i[0] == "int8" for _, i, _ in compute)
        if mode == "int8":  # float32 interface: QUANTIZE in, DEQUANTIZE out
            assert (ops[0][0], ops[-1][0]) == ("QUANTIZE", "DEQUANTIZE")
            assert np.dtype(inp["dtype"]).name == np.dtype(out["dtype"]).name == "float32"
        if mode == "int8_io":
            assert np.dtype(inp["dtype"]).name == np.dtype(out["dtype"]).name == "int8"
            assert "QUANTIZE" not in [op[0] for op in ops] and "DEQUANTIZE" not in [op[0] for op in ops]
            # Calibration on [0, 1): int8 asymmetric scale (max - min) / 255, zero point -128.
            scale, zero_point = inp["quantization"]
            assert scale == pytest.approx(1 / 255, rel=1e-3) and zero_point == -128
        report = compare(tiny_model, fb, images32[:8] / 255.0)
        assert report.top1_agreement >= 0.75, (mode, report)
    assert sizes["float16"] < sizes[None]


@pytest.mark.parametrize(
    "make_data",
    [
        lambda x: x,  # numpy array
        lambda x: (lambda: [x[:4], x[4:8]]),  # callable returning batches
        lambda x: __import__("tensorflow").data.Dataset.from_tensor_slices((x, np.zeros(len(x)))).batch(4),
        lambda x: __import__("tensorflow").data.Dataset.from_tensor_slices(x),  # unbatched
    ],
    ids=["array", "callable", "dataset_pairs", "dataset_unbatched"],
)
def test_representative_data_forms(tiny_model, make_data, images32):
    fb = convert(tiny_model, "int8", make_data(images32[:8] / 255.0), input_shape=(32, 32, 3))
    assert compare(tiny_model, fb, images32[:8] / 255.0).max_rel_diff < 0.2


def test_quantization_errors(tiny_model, images32):
    with pytest.raises(QuantizationError, match="needs representative_data"):
        convert(tiny_model, "int8", input_shape=(32, 32, 3))
    with pytest.raises(QuantizationError, match="unknown quantization 'int4'"):
        convert(tiny_model, "int4", input_shape=(32, 32, 3))
    with pytest.raises(QuantizationError, match=r"does not fit the model input shape \(None, 32, 32, 3\)"):
        convert(tiny_model, "int8", images32[:, :16], input_shape=(32, 32, 3))
    with pytest.raises(QuantizationError, match="yielded no input batches"):
        convert(tiny_model, "int8", lambda: [], input_shape=(32, 32, 3))
    with pytest.raises(QuantizationError, match="only used by"):
        convert(tiny_model, "float16", images32, input_shape=(32, 32, 3))
    assert issubclass(QuantizationError, ValueError)


def test_unknown_spatial_size(tiny_model, tiny_tflite):
    interpreter = load_interpreter(tiny_tflite)
    assert list(interpreter.get_input_details()[0]["shape_signature"]) == [-1, 32, 32, 3]
    dynamic = convert(tiny_model)  # spatial size left open
    with pytest.raises(InputShapeError, match="unknown dimensions"):
        load_interpreter(dynamic)
    assert list(load_interpreter(dynamic, input_shape=(48, 40, 3)).get_input_details()[0]["shape"]) == [1, 48, 40, 3]
    fixed_batch = convert(tiny_model, input_shape=(1, 24, 24, 3))
    assert list(load_interpreter(fixed_batch).get_input_details()[0]["shape_signature"]) == [1, 24, 24, 3]


def test_input_shape_errors(tiny_model, mnv3_small):
    with pytest.raises(InputShapeError, match=r"conflicts with it at dimension 1 \(64 != 32\)"):
        convert(mnv3_small, input_shape=(64, 64, 3))
    with pytest.raises(InputShapeError, match="has rank 2"):
        convert(tiny_model, input_shape=(32, 32))
    with pytest.raises(InputShapeError, match="non-positive"):
        convert(tiny_model, input_shape=(0, 32, 3))


def test_non_builtin_op_is_named():
    import keras
    import tensorflow as tf

    inputs = keras.Input((4, 4))
    outputs = keras.layers.Lambda(lambda x: tf.linalg.det(x), name="determinant")(inputs)
    model = keras.Model(inputs, outputs)
    with pytest.raises(UnsupportedOpsError, match="MatrixDeterminant") as info:
        convert(model)
    assert any("determinant" in layer for layer in info.value.layers)
    assert isinstance(info.value, ValueError)


def test_keras_file_and_path(tiny_model, tmp_path):
    source = tmp_path / "tiny.keras"
    tiny_model.save(source)
    target = tmp_path / "out" / "tiny.tflite"
    fb = convert(str(source), input_shape=(32, 32, 3), path=target)
    assert target.read_bytes() == fb
    assert not [p for p in os.listdir(target.parent) if p.endswith(".tmp")]
    with pytest.raises(TFLiteConversionError, match="does not exist"):
        convert(str(tmp_path / "missing.keras"))
    with pytest.raises(TFLiteConversionError, match="not a Keras 3 '.keras' file"):
        convert(str(tmp_path / "model.h5"))
    with pytest.raises(TFLiteConversionError, match="expected a keras.Model"):
        convert(42)


def test_list_operators_matches_litert_s_own_listing(mnv3_small_tflite):
    from collections import Counter

    assert list_operators(mnv3_small_tflite) == dict(Counter(name for name, _, _ in _operators(mnv3_small_tflite)))
