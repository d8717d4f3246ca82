"""SSD detectors to ``.tflite`` ending in LiteRT's ``TFLite_Detection_PostProcess`` operator.

The converter turns a ``tf.function`` carrying an ``experimental_implements`` signature
named ``TFLite_Detection_PostProcess`` (attributes as the TF OD API's
``export_tflite_graph_lib_tf2.py`` encodes them) into that operator, which the LiteRT
interpreter has built in (tensorflow/tensorflow#34857, #42352 ask how). Its inputs are the
box encodings ``[1, A, 4]``, the class scores ``[1, A, C + 1]`` (column 0 the background,
which the operator skips) and the anchors ``[A, 4]`` ``(ycenter, xcenter, h, w)``; its
outputs, in this order: boxes ``[1, N, 4]`` (normalized ymin, xmin, ymax, xmax), classes
``[1, N]`` (0-based foreground index: class id - 1), scores ``[1, N]``, count ``[1]``.

With ``use_regular_nms=False`` (default, as the TF OD API's mobile models) the operator keeps
each anchor's best class and runs one class-agnostic NMS: ``mnas_keras.heads.postprocess``
with ``mode="fast"`` is the same computation in TensorFlow. Int8 models quantize the network
(backbone and heads) and keep float input, outputs and post-processing, so the int8
output-type failures of tensorflow/models#8872 and #9218 cannot arise.

Example:
    >>> import keras
    >>> from mnas_keras.heads import SSDLite
    >>> image = keras.Input((32, 32, 3))
    >>> c4 = keras.layers.Conv2D(8, 3, strides=8, padding="same", name="c4")(image)
    >>> c5 = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="c5")(c4)
    >>> det = SSDLite(keras.Model(image, c5), 3, feature_layers=("c4", "c5"), extra_filters=(8,))
    >>> from mnas_keras.tflite import list_operators
    >>> list_operators(convert_detector(det))["TFLite_Detection_PostProcess"]
    1
"""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np

from mnas_keras.tflite.conversion import (
    _calibration_samples,
    load_keras_model,
    _converter_error,
    _quiet_converter,
    save,
)
from mnas_keras.tflite.errors import InvalidModelError, QuantizationError, TFLiteConversionError
from mnas_keras.tflite.flatbuffer import METADATA_NAME, add_metadata, conversion_info

POSTPROCESS_OP = "TFLite_Detection_PostProcess"
DETECTOR_QUANTIZATIONS = (None, "int8")
SCALES = (10.0, 10.0, 5.0, 5.0)


def _signature(num_classes, max_detections, score_threshold, iou_threshold, use_regular_nms,
               detections_per_class, scales):
    attrs = [
        f'name: "{POSTPROCESS_OP}"',
        f'attr {{ key: "max_detections" value {{ i: {int(max_detections)} }} }}',
        'attr { key: "max_classes_per_detection" value { i: 1 } }',
        f'attr {{ key: "detections_per_class" value {{ i: {int(detections_per_class)} }} }}',
        f'attr {{ key: "use_regular_nms" value {{ b: {str(bool(use_regular_nms)).lower()} }} }}',
        f'attr {{ key: "nms_score_threshold" value {{ f: {float(score_threshold):.9g} }} }}',
        f'attr {{ key: "nms_iou_threshold" value {{ f: {float(iou_threshold):.9g} }} }}',
    ]
    for key, value in zip(("y_scale", "x_scale", "h_scale", "w_scale"), scales):
        attrs.append(f'attr {{ key: "{key}" value {{ f: {float(value):.9g} }} }}')
    attrs.append(f'attr {{ key: "num_classes" value {{ i: {int(num_classes)} }} }}')
    return " ".join(attrs)


def convert_detector(
    model,
    quantization: str | None = None,
    representative_data=None,
    *,
    max_detections: int = 100,
    score_threshold: float = 0.01,
    iou_threshold: float = 0.6,
    score_function: str = "sigmoid",
    use_regular_nms: bool = False,
    detections_per_class: int = 100,
    postprocess: bool = True,
    calibration_steps: int = 100,
    path: str | os.PathLike | None = None,
) -> bytes:
    """Converts an SSD detector (``mnas_keras.heads.SSDLite``) to a one-image ``.tflite``.

    Args:
        model: an ``SSDLite`` (any model with ``anchors()``, ``num_classes``, ``image_size``
            and the ``box_encodings`` / ``class_logits`` outputs), or a ``.keras`` path.
        quantization: ``None`` (float32) or ``"int8"`` (network int8, float input, outputs
            and post-processing).
        representative_data: calibration images for int8 (as ``mnas_keras.tflite.convert``).
        max_detections, score_threshold, iou_threshold: the operator's NMS settings.
        score_function: ``"sigmoid"`` (focal-loss models) or ``"softmax"``, applied before
            the operator.
        use_regular_nms: per-class NMS in the operator (slower) instead of the fast one.
        detections_per_class: per-class limit of the regular NMS.
        postprocess: ``False`` keeps the raw export: outputs box encodings ``[1, A, 4]`` and
            class scores ``[1, A, C + 1]``, no NMS.
        calibration_steps: calibration samples for int8.
        path: also write the flatbuffer there.

    Returns:
        The flatbuffer bytes; its ``mnas_keras`` metadata records the settings.

    Raises:
        QuantizationError: an unknown quantization, or int8 without representative data.
        TFLiteConversionError: a model without anchors, or a failed conversion.
    """
    import keras
    import tensorflow as tf

    if isinstance(model, (str, os.PathLike)):
        model = load_keras_model(model)  # safe mode; a missing or garbage file is named
    if not all(hasattr(model, a) for a in ("anchors", "num_classes", "image_size")):
        raise TFLiteConversionError(
            f"convert_detector needs an SSD model with anchors() (mnas_keras.heads.SSDLite); "
            f"received {type(model).__name__} {getattr(model, 'name', '')!r}"
        )
    if quantization not in DETECTOR_QUANTIZATIONS:
        raise QuantizationError(f"unknown detector quantization {quantization!r}; expected one of {DETECTOR_QUANTIZATIONS}")
    if score_function not in ("sigmoid", "softmax"):
        raise TFLiteConversionError(f"score_function must be 'sigmoid' or 'softmax'; received {score_function!r}")
    height, width = model.image_size
    shape = (1, height, width, 3)
    anchors = np.asarray(model.anchors(), np.float32)
    network = model
    if quantization == "int8":
        if representative_data is None:
            raise QuantizationError("quantization='int8' needs representative_data (about 100 images)")
        from mnas_keras.tflite.rewrite import rewrite_hard_swish

        network, _ = rewrite_hard_swish(model, "fold")
    signature = _signature(model.num_classes, max_detections, score_threshold, iou_threshold,
                           use_regular_nms, detections_per_class, SCALES)

    @tf.function(experimental_implements=signature)
    def detection_postprocess(box_encodings, class_predictions, anchor_boxes):
        zero = tf.constant(0.0, tf.float32)
        return zero, zero, zero, zero

    def serve(image):
        out = network(image, training=False)
        logits = tf.cast(out["class_logits"], tf.float32)
        scores = tf.sigmoid(logits) if score_function == "sigmoid" else tf.nn.softmax(logits, -1)
        boxes = tf.cast(out["box_encodings"], tf.float32)
        if not postprocess:
            return {"box_encodings": boxes, "class_scores": scores}
        b, c, s, n = detection_postprocess(boxes, scores, tf.constant(anchors))
        return {"detection_boxes": b, "detection_classes": c, "detection_scores": s, "num_detections": n}

    spec = tf.TensorSpec(shape, tf.float32, name="image")
    with _quiet_converter(), tempfile.TemporaryDirectory() as folder:
        # Through a SavedModel: the weights freeze, the post-processing function keeps its
        # implements signature (a frozen-graph conversion inlines it away) and the outputs
        # keep their names in the model's signature. A bare tf.Module holding the endpoint and
        # the variables it reads gives the same .tflite as Keras' ExportArchive, which also
        # walks and serializes every layer (about half of the conversion time).
        module = tf.Module()
        module.serve = tf.function(serve, input_signature=[spec])
        endpoint = module.serve.get_concrete_function()
        module.weights = list(endpoint.variables)
        tf.saved_model.save(module, folder, signatures={"serving_default": endpoint})
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        converter.allow_custom_ops = True
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization == "int8":
            samples = _calibration_samples(representative_data, [shape], [np.dtype("float32")], calibration_steps)
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: iter(samples)
        try:
            flatbuffer = bytes(converter.convert())
        except Exception as err:  # noqa: BLE001 - re-raised as ours
            raise _converter_error(err, model.name) from None
    info = {
        "quantization": quantization, "detector": True, "postprocess": bool(postprocess),
        "num_classes": int(model.num_classes), "max_detections": int(max_detections),
        "score_threshold": float(score_threshold), "iou_threshold": float(iou_threshold),
        "score_function": score_function, "use_regular_nms": bool(use_regular_nms),
    }
    flatbuffer = add_metadata(flatbuffer, METADATA_NAME, json.dumps(info, sort_keys=True).encode())
    if path is not None:
        save(flatbuffer, path)
    return flatbuffer


def run_detector(tflite, image: np.ndarray) -> dict:
    """Runs a ``convert_detector`` model (bytes or path) on one image ``[H, W, 3]`` (0-255).

    The image is resized to the model's input size first when it differs.

    Returns:
        ``boxes`` ``[n, 4]`` normalized yxyx, ``classes`` ``[n]`` ids ``1..C``, ``scores``
        ``[n]`` (the ``n`` valid detections); for a raw export its ``box_encodings`` and
        ``class_scores`` (batch of one).

    Raises:
        InvalidModelError: ``tflite`` is missing, not a flatbuffer, or not a detector
            written by :func:`convert_detector` (e.g. a classifier from ``convert``).
    """
    from ai_edge_litert.interpreter import Interpreter

    info = conversion_info(tflite) or {}  # also refuses a missing or garbage file
    if not info.get("detector"):
        label = repr(os.fspath(tflite)) if isinstance(tflite, (str, os.PathLike)) else "this TFLite model"
        raise InvalidModelError(
            f"{label} is not a detector (its metadata records {info or 'no mnas_keras conversion'}); expected "
            "a .tflite written by mnas_keras.tflite.convert_detector from an SSDLite model")

    interpreter = Interpreter(model_content=bytes(tflite) if not isinstance(tflite, (str, os.PathLike)) else None,
                              model_path=os.fspath(tflite) if isinstance(tflite, (str, os.PathLike)) else None,
                              num_threads=1)
    runner = interpreter.get_signature_runner(next(iter(interpreter.get_signature_list())))
    name, inp = next(iter(runner.get_input_details().items()))
    h, w = int(inp["shape"][1]), int(inp["shape"][2])
    image = np.asarray(image, np.float32)
    if image.shape[:2] != (h, w):
        import tensorflow as tf

        image = tf.image.resize(image, [h, w]).numpy()
    outs = runner(**{name: image[None]})
    if "num_detections" not in outs:
        return outs  # a raw export: box_encodings and class_scores
    n = int(outs["num_detections"].reshape(-1)[0])
    return {
        "boxes": outs["detection_boxes"][0, :n],
        "classes": outs["detection_classes"][0, :n].astype(np.int32) + 1,
        "scores": outs["detection_scores"][0, :n],
    }
