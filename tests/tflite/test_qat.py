"""QAT and pruning bridge (tfmot on tf_keras, in a TF_USE_LEGACY_KERAS=1 worker): the
accuracy proof on scikit-learn digits at 32x32, the rebuild's parity, and argument errors."""

import numpy as np
import pytest

import mnas_keras
from mnas_keras.tflite import (
    QATError,
    check_builtin_ops,
    convert,
    delegation,
    list_operators,
    load_interpreter,
    prune,
    quantization_aware_training,
    run_tflite,
    tf_keras_parity,
)
from tests._fit import build_fit_state


def _accuracy(tflite, x, y):
    return float(np.mean(run_tflite(tflite, x)[0].argmax(-1) == y))


@pytest.fixture(scope="module")
def trained(digits32):
    """MobileNetV3Small (hard-swish, SE with hard-sigmoid) trained on digits; float TFLite accuracy A."""
    import keras

    (x_train, y_train), (x_test, y_test) = digits32
    keras.utils.set_random_seed(0)
    model = mnas_keras.create_model(
        "mobilenet_v3_small", input_shape=(32, 32, 3), classes=10,
        classifier_activation=None, dropout_rate=0.0, bn_momentum=0.9,
    )
    epochs, batch = 12, 128  # 144 steps: at 32x32 the per-step overhead dominates, so half of 276 steps
    schedule = keras.optimizers.schedules.CosineDecay(5e-3, epochs * int(np.ceil(len(x_train) / batch)))
    model.compile(
        keras.optimizers.Adam(schedule),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
    )
    build_fit_state(model, x_train, y_train)  # fit then traces its step once (tests/_fit.py)
    model.fit(x_train, y_train, batch_size=batch, epochs=epochs, verbose=0)
    accuracy = _accuracy(convert(model), x_test, y_test)
    assert accuracy >= 0.9, accuracy  # a real classifier, so that the comparisons mean something
    return model, accuracy


def test_tf_keras_rebuild_matches(trained, digits32):
    model, _ = trained
    report = tf_keras_parity(model, digits32[1][0][:32])
    assert report.max_rel_diff < 1e-4, report
    assert report.top1_agreement == 1.0


def test_post_training_int8_within_1_point(trained, digits32):
    """Default int8 (hard-swish folded into int8 ADD+MUL) keeps accuracy within 1 point of
    float and agrees with the float model at least as well as the native HARD_SWISH int8
    conversion (the graph keras.applications' MobileNetV3 converts to)."""
    model, float_accuracy = trained
    (x_train, _), (x_test, y_test) = digits32
    int8 = convert(model, "int8", representative_data=x_train[:100])
    native = convert(model, "int8", representative_data=x_train[:100], hard_swish="native")
    assert "HARD_SWISH" not in list_operators(int8) and "HARD_SWISH" in list_operators(native)
    reference = model.predict(x_test, verbose=0).argmax(-1)
    agreement = {name: float(np.mean(run_tflite(t, x_test)[0].argmax(-1) == reference))
                 for name, t in (("fold", int8), ("native", native))}
    accuracy = _accuracy(int8, x_test, y_test)
    print(f"float {float_accuracy:.4f} post-training int8 {accuracy:.4f}; top-1 agreement {agreement}")
    assert accuracy >= float_accuracy - 0.01
    assert agreement["fold"] >= agreement["native"] - 0.01, agreement
    assert delegation(int8).undelegated.keys() <= {"SHAPE", "STRIDED_SLICE", "PACK", "RESHAPE"}


def test_qat_int8_within_1_point(trained, digits32):
    model, float_accuracy = trained
    (x_train, y_train), (x_test, y_test) = digits32
    result = quantization_aware_training(model, x_train, y_train, epochs=1, batch_size=64)
    assert result.method == "qat" and len(result.history["loss"]) == 1
    ops = check_builtin_ops(result.tflite)
    assert ops["HARD_SWISH"] == 19  # the tf_keras hard-swish still fuses into the native op
    interpreter = load_interpreter(result.tflite)
    assert np.dtype(interpreter.get_input_details()[0]["dtype"]) == np.float32
    dtypes = {t["index"]: np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()}
    heavy = [op for op in interpreter._get_ops_details() if op["op_name"] in ("CONV_2D", "HARD_SWISH")]
    assert len(heavy) == 43 + 19
    for op in heavy:  # activations and weights int8 (biases int32): a full-integer model
        assert {dtypes[i] for i in op["inputs"] if i >= 0} <= {"int8", "int32"}, op
    accuracy = _accuracy(result.tflite, x_test, y_test)
    print(f"float {float_accuracy:.4f} QAT int8 {accuracy:.4f}")
    assert accuracy >= float_accuracy - 0.01, (accuracy, float_accuracy)


def test_pruned_half_within_2_points(trained, digits32):
    model, float_accuracy = trained
    (x_train, y_train), (x_test, y_test) = digits32
    result = prune(model, x_train, y_train, sparsity=0.5, epochs=4, learning_rate=1e-3, batch_size=64)
    assert result.sparsity == pytest.approx(0.5, abs=0.01)
    assert "QUANTIZE" in list_operators(result.tflite)  # converted int8 after pruning
    accuracy = _accuracy(result.tflite, x_test, y_test)
    print(f"float {float_accuracy:.4f} pruned {result.sparsity:.3f} int8 {accuracy:.4f}")
    assert accuracy >= float_accuracy - 0.02, (accuracy, float_accuracy)


def test_argument_errors(tiny_model):
    x = np.zeros((4, 32, 32, 3), np.float32)
    y = np.zeros(4, np.int64)
    with pytest.raises(QATError, match="not a mnas_keras.MnasNet"):
        quantization_aware_training(tiny_model, x, y)
    small = mnas_keras.create_model("mnasnet_small", input_shape=(32, 32, 3), classes=10, alpha=0.5)
    with pytest.raises(QATError, match=r"received x \(4, 32, 32, 3\), y \(3,\)"):
        prune(small, x, y[:3])
    with pytest.raises(QATError, match="QAT converts to"):
        quantization_aware_training(small, x, y, quantization="float16")
    with pytest.raises(QATError, match="sparsity must be in"):
        prune(small, x, y, sparsity=1.5)
    assert issubclass(QATError, ValueError)
