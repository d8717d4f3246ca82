"""Decoding SSD outputs to detections with TensorFlow's NMS ops.

Two modes:

- ``"regular"``: per-class NMS (``tf.image.combined_non_max_suppression``), as the TF OD
  API's evaluation (``batch_multiclass_non_max_suppression``).
- ``"fast"``: each anchor keeps its best class, then one class-agnostic NMS
  (``tf.image.non_max_suppression_with_scores``): what LiteRT's
  ``TFLite_Detection_PostProcess`` does with ``use_regular_nms=False,
  max_classes_per_detection=1`` (its default and the TF OD API's mobile export).
"""

from __future__ import annotations

import tensorflow as tf

from mnas_keras.heads.box_coder import SCALES, decode_boxes


def class_scores(logits, score_function: str = "sigmoid"):
    """Foreground scores ``[B, A, C]`` from logits ``[B, A, C + 1]`` (background column dropped)."""
    logits = tf.cast(logits, tf.float32)
    if score_function == "sigmoid":
        scores = tf.sigmoid(logits)
    elif score_function == "softmax":
        scores = tf.nn.softmax(logits, axis=-1)
    else:
        raise ValueError(f"Expected score_function 'sigmoid' or 'softmax'. Received: {score_function!r}")
    return scores[..., 1:]


def _static_shape(tensor) -> tuple:
    shape = getattr(tensor, "shape", None)
    if shape is None:
        shape = tf.convert_to_tensor(tensor).shape
    return tuple(None if d is None else int(d) for d in shape)


def _check_outputs(outputs, anchors) -> None:
    """A ``ValueError`` naming what does not fit, instead of TensorFlow's broadcasting error."""
    if not hasattr(outputs, "keys") or not {"box_encodings", "class_logits"} <= set(outputs.keys()):
        found = sorted(outputs.keys()) if hasattr(outputs, "keys") else type(outputs).__name__
        raise ValueError("postprocess expects an SSD model's outputs: a dict of 'box_encodings' [B, A, 4] and "
                         f"'class_logits' [B, A, C + 1]; received {found}")
    boxes, logits, anchor_shape = (_static_shape(outputs["box_encodings"]), _static_shape(outputs["class_logits"]),
                                   _static_shape(anchors))
    if len(boxes) != 3 or boxes[-1] not in (None, 4) or len(logits) != 3 or len(anchor_shape) != 2 \
            or anchor_shape[-1] not in (None, 4):
        raise ValueError(f"postprocess expects box_encodings [B, A, 4], class_logits [B, A, C + 1] and anchors "
                         f"[A, 4]; received {list(boxes)}, {list(logits)} and {list(anchor_shape)}")
    counts = {n for n in (boxes[1], logits[1], anchor_shape[0]) if n is not None}
    if len(counts) > 1:
        raise ValueError(f"the outputs have {boxes[1]} anchors (box_encodings {list(boxes)}, class_logits "
                         f"{list(logits)}) but anchors has {anchor_shape[0]}; pass the anchors of the model that "
                         "made the outputs (model.anchors())")


def postprocess(outputs, anchors, *, max_detections: int = 100, score_threshold: float = 0.01,
                iou_threshold: float = 0.6, score_function: str = "sigmoid", mode: str = "regular",
                scales=SCALES):
    """Detections of a batch of SSD outputs.

    Args:
        outputs: dict with ``box_encodings`` ``[B, A, 4]`` and ``class_logits`` ``[B, A, C + 1]``.
        anchors: ``[A, 4]`` center_yxhw normalized.
        max_detections: detections kept per image (TF OD API 100).
        score_threshold, iou_threshold: NMS settings (TF OD API SSDLite: 1e-8 and 0.6).
        score_function: ``"sigmoid"`` (focal-loss models) or ``"softmax"``.
        mode: ``"regular"`` (per-class NMS) or ``"fast"`` (LiteRT's default, see module doc).

    Returns:
        dict of ``boxes`` ``[B, N, 4]`` normalized yxyx (not clipped), ``classes`` ``[B, N]``
        int32 ids ``1..C``, ``scores`` ``[B, N]``, ``num_detections`` ``[B]`` int32; rows past
        ``num_detections`` are zero.

    Raises:
        ValueError: an unknown ``mode`` or ``score_function``; ``outputs`` without both
            tensors, or whose shapes or anchor count do not fit ``anchors``.
    """
    if mode not in ("regular", "fast"):
        raise ValueError(f"Expected mode 'regular' or 'fast'. Received: {mode!r}")
    _check_outputs(outputs, anchors)
    boxes = decode_boxes(outputs["box_encodings"], anchors, scales)
    scores = class_scores(outputs["class_logits"], score_function)
    if mode == "regular":
        nms = tf.image.combined_non_max_suppression(
            boxes[:, :, None, :], scores, max_output_size_per_class=max_detections,
            max_total_size=max_detections, iou_threshold=iou_threshold,
            score_threshold=score_threshold, clip_boxes=False,
        )
        return {
            "boxes": nms.nmsed_boxes,
            "classes": tf.cast(nms.nmsed_classes, tf.int32) + tf.cast(nms.nmsed_scores > 0, tf.int32),
            "scores": nms.nmsed_scores,
            "num_detections": tf.cast(nms.valid_detections, tf.int32),
        }

    def one(args):
        b, s = args
        best = tf.reduce_max(s, -1)
        cls = tf.cast(tf.argmax(s, -1), tf.int32) + 1
        keep, kept_scores = tf.image.non_max_suppression_with_scores(
            b, best, max_detections, iou_threshold=iou_threshold, score_threshold=score_threshold
        )
        n = tf.shape(keep)[0]
        pad = max_detections - n
        return (
            tf.pad(tf.gather(b, keep), [[0, pad], [0, 0]]),
            tf.pad(tf.gather(cls, keep), [[0, pad]]),
            tf.pad(kept_scores, [[0, pad]]),
            n,
        )

    b, c, s, n = tf.map_fn(
        one, (boxes, scores),
        fn_output_signature=(tf.float32, tf.int32, tf.float32, tf.int32),
    )
    return {"boxes": b, "classes": c, "scores": s, "num_detections": n}
