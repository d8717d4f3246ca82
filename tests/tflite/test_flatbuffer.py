"""Operator listing and the built-in-ops check on real flatbuffers."""

import pytest

from mnas_keras.tflite import InvalidModelError, UnsupportedOpsError, check_builtin_ops, list_operators, read_model


@pytest.fixture(scope="module")
def flex_tflite():
    """A model converted by the stock converter WITH select TF ops enabled."""
    import keras
    import tensorflow as tf

    inputs = keras.Input((4, 4))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: tf.linalg.det(x))(inputs))
    fn = tf.function(lambda x: model(x), input_signature=[tf.TensorSpec([None, 4, 4])])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], model)
    converter.experimental_lower_to_saved_model = False
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    return converter.convert()


def test_list_operators_counts(tiny_tflite):
    ops = list_operators(tiny_tflite)
    assert ops["HARD_SWISH"] == 1
    assert ops["CONV_2D"] == 2 and ops["DEPTHWISE_CONV_2D"] == 1
    assert ops["FULLY_CONNECTED"] == 1
    assert check_builtin_ops(tiny_tflite) == ops


def test_flex_op_rejected_by_name(flex_tflite):
    assert list_operators(flex_tflite) == {"FlexMatrixDeterminant": 1}
    with pytest.raises(UnsupportedOpsError, match="FlexMatrixDeterminant") as info:
        check_builtin_ops(flex_tflite)
    assert info.value.ops == ["FlexMatrixDeterminant"]


def test_bad_sources(tiny_tflite, tmp_path):
    with pytest.raises(InvalidModelError, match="does not exist"):
        read_model(str(tmp_path / "nope.tflite"))
    with pytest.raises(InvalidModelError, match="file identifier"):
        read_model(b"\x00" * 64)
    with pytest.raises(InvalidModelError, match="expected TFLite flatbuffer bytes or a path"):
        read_model(3.5)
    for cut in (12, 200, len(tiny_tflite) // 2):
        with pytest.raises(InvalidModelError, match="truncated or corrupt"):
            list_operators(tiny_tflite[:cut])
    path = tmp_path / "m.tflite"
    path.write_bytes(tiny_tflite)
    assert list_operators(path) == list_operators(tiny_tflite)
