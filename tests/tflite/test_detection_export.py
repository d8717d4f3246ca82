"""convert_detector: TFLite_Detection_PostProcess in the .tflite, parity with the Keras decoder."""

import numpy as np
import pytest

from mnas_keras.heads import SSDLite, postprocess
from mnas_keras.tflite import list_operators
from mnas_keras.tflite.detection import convert_detector, run_detector
from mnas_keras.tflite.errors import QuantizationError, TFLiteConversionError
from tests.tflite.conftest import randomize_batchnorm


@pytest.fixture(scope="module")
def detector():
    # a small backbone keeps the conversions (through a SavedModel) cheap
    import keras

    keras.utils.set_random_seed(4)
    image = keras.Input((64, 64, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(image)
    x = keras.layers.Conv2D(16, 3, strides=4, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("hard_swish")(x)
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU(name="c4")(x)
    x = keras.layers.Conv2D(24, 3, strides=2, padding="same", name="c5")(x)
    model = SSDLite(keras.Model(image, x), 3, feature_layers=("c4", "c5"), extra_filters=(16, 8),
                    class_bias_init=0.0)
    return randomize_batchnorm(model, seed=1)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(2).uniform(0, 255, (4, 64, 64, 3)).astype("float32")


@pytest.fixture(scope="module")
def float_tflite(detector):
    return convert_detector(detector, max_detections=10, score_threshold=0.2, iou_threshold=0.5)


def test_postprocess_op_is_in_the_model(float_tflite):
    ops = list_operators(float_tflite)
    assert ops["TFLite_Detection_PostProcess"] == 1
    assert "VAR_HANDLE" not in ops  # weights frozen into the graph


def test_float_detections_equal_the_keras_decoder(detector, images, float_tflite):
    for image in images:
        got = run_detector(float_tflite, image)
        want = postprocess(detector(image[None], training=False), detector.anchors(), max_detections=10,
                           score_threshold=0.2, iou_threshold=0.5, mode="fast")
        n = int(want["num_detections"][0])
        assert n > 0 and len(got["scores"]) == n
        np.testing.assert_allclose(got["boxes"], want["boxes"][0, :n], atol=1e-4)
        np.testing.assert_array_equal(got["classes"], want["classes"][0, :n])
        np.testing.assert_allclose(got["scores"], want["scores"][0, :n], atol=1e-5)


def test_raw_export_keeps_encodings_and_scores(detector, images):
    raw = convert_detector(detector, postprocess=False)
    assert "TFLite_Detection_PostProcess" not in list_operators(raw)
    out = run_detector(raw, images[0])
    want = detector(images[:1], training=False)
    np.testing.assert_allclose(out["box_encodings"], want["box_encodings"], atol=1e-4)
    sig = 1 / (1 + np.exp(-np.asarray(want["class_logits"], np.float64)))
    np.testing.assert_allclose(out["class_scores"], sig, atol=1e-5)


def test_int8_network_with_float_postprocessing(detector, images):
    from ai_edge_litert import schema_py_generated as schema

    int8 = convert_detector(detector, "int8", images, max_detections=10, score_threshold=0.2, iou_threshold=0.5)
    ops = list_operators(int8)
    assert ops["TFLite_Detection_PostProcess"] == 1 and ops.get("QUANTIZE", 0) >= 1
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(int8, 0))
    graph = model.subgraphs[0]
    float32 = schema.TensorType.FLOAT32
    assert all(graph.tensors[i].type == float32 for i in graph.outputs)
    conv_types = {graph.tensors[op.outputs[0]].type for op in graph.operators
                  if model.operatorCodes[op.opcodeIndex].builtinCode == schema.BuiltinOperator.CONV_2D}
    assert conv_types == {schema.TensorType.INT8}
    got = run_detector(int8, images[0])
    assert got["boxes"].dtype == np.float32 and 0 < len(got["scores"]) <= 10


def test_bad_arguments(detector, images):
    with pytest.raises(QuantizationError, match="needs representative_data"):
        convert_detector(detector, "int8")
    with pytest.raises(QuantizationError, match="unknown detector quantization 'float16'"):
        convert_detector(detector, "float16")
    import keras

    plain = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 1)])
    with pytest.raises(TFLiteConversionError, match="needs an SSD model with anchors"):
        convert_detector(plain)


def test_cli_detect_draws_the_detections(float_tflite, images, tmp_path, capsys):
    import json

    from PIL import Image

    from mnas_keras.tflite.cli import main

    model = tmp_path / "det.tflite"
    model.write_bytes(float_tflite)
    image = tmp_path / "in.png"
    Image.fromarray(images[0].astype(np.uint8)).save(image)
    out = tmp_path / "out.png"
    assert main(["mnas-tflite", "detect", f"--model={model}", f"--image={image}", f"--output={out}", "--min_score=0"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    want = run_detector(float_tflite, images[0].astype(np.uint8).astype(np.float32))
    assert [d["class"] for d in printed["detections"]] == want["classes"].tolist()
    drawn = np.asarray(Image.open(out))
    assert drawn.shape == (64, 64, 3) and np.any(np.all(drawn == [255, 0, 0], axis=-1))
    assert main(["mnas-tflite", "detect", f"--model={model}", f"--image={tmp_path / 'missing.jpg'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mnas-tflite detect: error: --image") and "missing.jpg" in err[0]


def test_int8_map_is_within_one_and_a_half_points_of_float():
    # The detector of the shared short training run (tests/training/_detection_helpers.py),
    # converted float and int8 (calibrated on its 32 images) with the post-processing op;
    # pycocotools scores both .tflite files on those images. The bound: 1.5 points.
    from mnas_keras.training.coco_eval import CocoEvaluator
    from tests.training._detection_helpers import trained_shapes_detector

    run = trained_shapes_detector()
    model, source = run["model"], run["source"]
    examples = [{k: v.numpy() for k, v in e.items()} for e in source.dataset("train")]
    images = np.stack([e["image"] for e in examples]).astype("float32")
    settings = dict(max_detections=100, score_threshold=1e-3, iou_threshold=0.6)
    metrics = {}
    for quantization in (None, "int8"):
        tflite = convert_detector(model, quantization, representative_data=images, calibration_steps=len(images),
                                  **settings)
        ev = CocoEvaluator(source.category_ids)
        for e, image in zip(examples, images):
            got = run_detector(tflite, image)
            ev.add_groundtruth(e["image_id"], 64, 64, e["boxes"], e["classes"])
            ev.add_detections(e["image_id"], 64, 64, got["boxes"], got["classes"], got["scores"])
        metrics[quantization] = ev.evaluate()
    # the float model finds the shapes (as in the training test: Keras with regular NMS 0.28
    # mAP@.5), so the comparison is not between two zeros
    assert metrics[None]["mAP@0.5"] > 0.1, metrics
    for key in ("mAP", "mAP@0.5"):
        assert abs(metrics["int8"][key] - metrics[None][key]) <= 0.015, metrics
