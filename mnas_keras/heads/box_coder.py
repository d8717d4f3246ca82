"""SSD box coding and anchor matching on top of ``keras.utils.bounding_boxes``.

Boxes are normalized ``(ymin, xmin, ymax, xmax)`` ("yxyx"); anchors are normalized
``(ycenter, xcenter, h, w)`` ("center_yxhw"). Encoding is the Faster R-CNN coder of the TF OD
API with scales ``(10, 10, 5, 5)`` for ``(y, x, h, w)``: ``ty = 10 (y - ya) / ha``,
``th = 5 log(h / ha)``; Keras' ``encode_box_to_deltas`` divides by ``variance``, so the scales
are ``variance = (0.1, 0.1, 0.2, 0.2)``.

Matching (TF OD API ``ArgMaxMatcher`` with ``matched_threshold = unmatched_threshold = 0.5``
and ``force_match_for_each_row``; the SSD paper's "best anchor for each ground truth, then any
anchor with IoU > 0.5"): each anchor takes its highest-IoU ground-truth box if that IoU is at
least the threshold; then every ground-truth box claims its own highest-IoU anchor (the
lowest-index box wins an anchor claimed twice). Ground-truth rows with class ``< 1`` are
padding and never match.
"""

from __future__ import annotations

import tensorflow as tf
from keras.utils import bounding_boxes

SCALES = (10.0, 10.0, 5.0, 5.0)


def _variance(scales):
    return [1.0 / float(s) for s in scales]


def encode_boxes(boxes, anchors, scales=SCALES):
    """Box offsets of ``boxes`` ``[..., A, 4]`` (yxyx) relative to ``anchors`` ``[A, 4]``.

    Returns:
        ``[..., A, 4]`` offsets ``(ty, tx, th, tw)``, float32.

    Example:
        >>> import numpy as np
        >>> anchors = np.array([[0.5, 0.5, 0.2, 0.2]], "float32")
        >>> t = encode_boxes(np.array([[0.4, 0.45, 0.6, 0.65]], "float32"), anchors)
        >>> [round(float(v), 4) + 0.0 for v in t[0]]
        [0.0, 2.5, 0.0, 0.0]
    """
    return bounding_boxes.encode_box_to_deltas(
        tf.convert_to_tensor(anchors, tf.float32), tf.convert_to_tensor(boxes, tf.float32),
        anchor_format="center_yxhw", box_format="yxyx", variance=_variance(scales),
    )


def decode_boxes(encodings, anchors, scales=SCALES):
    """Inverse of :func:`encode_boxes`: yxyx boxes ``[..., A, 4]`` from offsets."""
    return bounding_boxes.decode_deltas_to_boxes(
        tf.convert_to_tensor(anchors, tf.float32), tf.convert_to_tensor(encodings, tf.float32),
        anchor_format="center_yxhw", box_format="yxyx", variance=_variance(scales),
    )


def anchor_iou(anchors, boxes):
    """IoU ``[A, G]`` of anchors (center_yxhw) with yxyx boxes ``[G, 4]``."""
    corners = bounding_boxes.convert_format(
        tf.convert_to_tensor(anchors, tf.float32), source="center_yxhw", target="yxyx"
    )
    return bounding_boxes.compute_iou(corners, tf.convert_to_tensor(boxes, tf.float32), "yxyx")


def match_anchors(gt_boxes, gt_classes, anchors, iou_threshold: float = 0.5):
    """Index of the ground-truth box matched to each anchor, ``-1`` for background.

    Args:
        gt_boxes: ``[G, 4]`` yxyx normalized boxes of one image (``G`` may be 0).
        gt_classes: ``[G]`` class ids, ``>= 1`` for real boxes, ``< 1`` for padding rows.
        anchors: ``[A, 4]`` center_yxhw.
        iou_threshold: IoU at or above which an anchor matches (TF OD API 0.5).

    Returns:
        int32 ``[A]``: a row of ``gt_boxes`` or ``-1``.

    Example:
        >>> import numpy as np
        >>> anchors = np.array([[0.25, 0.25, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5]], "float32")
        >>> match_anchors(np.array([[0.0, 0.0, 0.5, 0.5]], "float32"), [1], anchors).numpy()
        array([ 0, -1], dtype=int32)
    """
    gt_boxes = tf.reshape(tf.convert_to_tensor(gt_boxes, tf.float32), [-1, 4])
    valid = tf.reshape(tf.convert_to_tensor(gt_classes), [-1]) >= 1
    num_anchors = tf.shape(anchors)[0]
    iou = anchor_iou(anchors, gt_boxes)  # [A, G]
    iou = tf.where(valid[None, :], iou, -1.0)
    has_gt = tf.shape(gt_boxes)[0] > 0

    def matched():
        best = tf.cast(tf.argmax(iou, axis=1), tf.int32)
        best_iou = tf.reduce_max(iou, axis=1)
        matches = tf.where(best_iou >= iou_threshold, best, -1)
        # every valid box claims its best anchor (lowest box index wins a shared anchor)
        best_anchor = tf.cast(tf.argmax(iou, axis=0), tf.int32)  # [G]
        claims = tf.one_hot(best_anchor, num_anchors, dtype=tf.float32)  # [G, A]
        claims *= tf.cast(valid & (tf.reduce_max(iou, axis=0) > 0), tf.float32)[:, None]
        forced = tf.reduce_max(claims, axis=0) > 0
        forced_gt = tf.cast(tf.argmax(claims, axis=0), tf.int32)
        return tf.where(forced, forced_gt, matches)

    return tf.cond(has_gt, matched, lambda: -tf.ones([num_anchors], tf.int32))


def assign_targets(gt_boxes, gt_classes, anchors, iou_threshold: float = 0.5, scales=SCALES):
    """Training targets of one image: box offsets ``[A, 4]`` and class ids ``[A]`` (0 background).

    Anchors matched to nothing get zero offsets (ignored by the box loss).
    """
    gt_boxes = tf.reshape(tf.convert_to_tensor(gt_boxes, tf.float32), [-1, 4])
    gt_classes = tf.reshape(tf.cast(gt_classes, tf.int32), [-1])
    matches = match_anchors(gt_boxes, gt_classes, anchors, iou_threshold)
    positive = matches >= 0
    safe = tf.maximum(matches, 0)
    boxes = tf.gather(tf.concat([gt_boxes, tf.zeros([1, 4])], 0), safe)
    classes = tf.gather(tf.concat([gt_classes, tf.zeros([1], tf.int32)], 0), safe)
    encoded = encode_boxes(boxes, anchors, scales)
    box_targets = tf.where(positive[:, None], encoded, 0.0)
    class_targets = tf.where(positive, classes, 0)
    return box_targets, class_targets
