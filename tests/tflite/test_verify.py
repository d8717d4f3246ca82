"""Keras-vs-LiteRT parity for every application model (float32) and quantized runs."""

import numpy as np
import pytest

import mnas_keras
from mnas_keras.tflite import InputShapeError, ParityReport, compare, convert
from tests.tflite.conftest import randomize_batchnorm


@pytest.mark.parametrize("name", mnas_keras.list_models())
def test_float32_parity_every_application(name, images32, application_model):
    model = application_model(name)  # create_model(name, 32x32, 10 classes, alpha=0.5, logits)
    randomize_batchnorm(model, seed=1)
    report = compare(model, convert(model), images32[:8])
    assert isinstance(report, ParityReport) and report.num_samples == 8
    assert report.max_rel_diff < 1e-4, report
    assert report.top1_agreement == 1.0
    assert not report.quantized_io


def test_compare_values_match_an_independent_litert_run(tiny_model, tiny_tflite, images32):
    """The report against outputs computed here with LiteRT's interpreter and Keras' predict."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=tiny_tflite)
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    lite = []
    for image in images32[:6]:
        interpreter.set_tensor(inp["index"], image[None])
        interpreter.invoke()
        lite.append(interpreter.get_tensor(out["index"])[0].astype(np.float64))
    lite = np.stack(lite)
    ref = tiny_model.predict(images32[:6], verbose=0).astype(np.float64)
    report = compare(tiny_model, tiny_tflite, images32[:6])
    diff = np.abs(ref - lite)
    assert report.num_samples == 6
    assert report.max_abs_diff == pytest.approx(diff.max(), rel=1e-3, abs=1e-9)
    assert report.mean_abs_diff == pytest.approx(diff.mean(), rel=1e-3, abs=1e-9)
    assert report.max_rel_diff == pytest.approx(diff.max() / np.abs(ref).max(), rel=1e-3, abs=1e-12)
    assert report.top1_agreement == np.mean(ref.argmax(-1) == lite.argmax(-1))
    # Another model's outputs against the same flatbuffer: agreement as counted here.
    import keras

    other = keras.models.clone_model(tiny_model)  # fresh random weights
    other_ref = other.predict(images32[:6], verbose=0)
    report = compare(other, tiny_tflite, images32[:6])
    assert report.top1_agreement == np.mean(other_ref.argmax(-1) == lite.argmax(-1))
    assert report.max_abs_diff == pytest.approx(np.abs(other_ref - lite).max(), rel=1e-3)


def test_compare_detects_a_different_model(mnv3_small, mnv3_small_tflite, images32):
    other = mnas_keras.create_model(
        "mobilenet_v3_small", input_shape=(32, 32, 3), classes=10, classifier_activation=None
    )
    randomize_batchnorm(other, seed=7)
    report = compare(other, mnv3_small_tflite, images32)
    assert report.max_rel_diff > 0.05


def test_int8_io_report_and_dataset_input(tiny_model, images32):
    import tensorflow as tf

    data = images32 / 255.0
    fb = convert(tiny_model, "int8_io", data, input_shape=(32, 32, 3), batch_size=1)
    report = compare(tiny_model, fb, tf.data.Dataset.from_tensor_slices((data, np.zeros(16))).batch(5))
    assert report.quantized_io and report.num_samples == 16
    assert report.max_rel_diff < 0.1 and report.top1_agreement >= 0.75


def test_compare_shape_mismatch(tiny_model, tiny_tflite, images32):
    with pytest.raises(InputShapeError, match="conflicts with TFLite input 0"):
        compare(tiny_model, tiny_tflite, images32[:, :16, :16])
