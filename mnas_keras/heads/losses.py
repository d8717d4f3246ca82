"""SSD losses: smooth L1 on matched anchors plus focal (TF OD API) or softmax with 3:1 mining.

Facts (``shared/reference/DENSE_HEADS.md``): the TF OD API's SSDLite configs use
``weighted_smooth_l1`` (delta 1) and ``weighted_sigmoid_focal`` (alpha 0.75, gamma 2) on
``num_classes + 1`` sigmoid columns with ``encode_background_as_zeros`` (every column's
target is 0 on unmatched anchors, the background column's always), the box loss divided by
the code size 4 (``normalize_loc_loss_by_codesize``), both normalized by the number of
matches (``ssdlite_mobilenet_v3_large_320x320_coco.config``); torchvision's SSD uses softmax
cross-entropy with hard negative mining (the 3 negatives of highest loss per positive) and
no code-size division. Here both are
normalized per image by ``max(1, matches)``, so an image without boxes gives a finite loss
(all-background classification, no box term).
"""

from __future__ import annotations

import keras
import tensorflow as tf


def smooth_l1(box_targets, box_outputs, positive, delta: float = 1.0):
    """Per-image smooth L1 (Huber) summed over matched anchors and coordinates, ``[B]``."""
    diff = tf.abs(tf.cast(box_outputs, tf.float32) - tf.cast(box_targets, tf.float32))
    per = tf.where(diff < delta, 0.5 * diff * diff / delta, diff - 0.5 * delta)
    return tf.reduce_sum(tf.reduce_sum(per, -1) * tf.cast(positive, tf.float32), -1)


def focal_loss(class_targets, logits, alpha: float = 0.75, gamma: float = 2.0):
    """Per-image sigmoid focal loss summed over anchors and columns, ``[B]``.

    ``class_targets`` ``[B, A]`` ids (0 background), ``logits`` ``[B, A, C + 1]``; targets
    are one-hot with the background encoded as zeros (column 0 is always 0). The element loss is Keras' ``binary_focal_crossentropy`` with class balancing (weight
    ``alpha`` on target 1, ``1 - alpha`` on target 0; Lin et al. 2017).
    """
    logits = tf.cast(logits, tf.float32)
    onehot = tf.one_hot(class_targets, tf.shape(logits)[-1], dtype=tf.float32)
    onehot = onehot * tf.cast(tf.range(tf.shape(logits)[-1]) > 0, tf.float32)
    per = keras.losses.binary_focal_crossentropy(
        onehot[..., None], logits[..., None], apply_class_balancing=True, alpha=alpha,
        gamma=gamma, from_logits=True,
    )  # [B, A, C + 1]
    return tf.reduce_sum(per, axis=[1, 2])


def softmax_hard_negative_loss(class_targets, logits, neg_pos_ratio: float = 3.0):
    """Per-image softmax cross-entropy of positives plus the ``3 x positives`` hardest negatives."""
    logits = tf.cast(logits, tf.float32)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=class_targets, logits=logits)  # [B, A]
    positive = class_targets > 0
    num_neg = tf.cast(neg_pos_ratio * tf.reduce_sum(tf.cast(positive, tf.float32), -1), tf.int32)
    neg_ce = tf.where(positive, -1.0, ce)
    rank = tf.argsort(tf.argsort(neg_ce, axis=-1, direction="DESCENDING"), axis=-1)
    hard = (rank < num_neg[:, None]) & ~positive
    return tf.reduce_sum(ce * tf.cast(positive | hard, tf.float32), -1)


def detection_loss(box_targets, class_targets, outputs, *, classification: str = "focal",
                   alpha: float = 0.75, gamma: float = 2.0, neg_pos_ratio: float = 3.0,
                   box_weight: float = 1.0, normalize_box_by_codesize: bool | None = None):
    """Per-image SSD loss ``[B]``: ``(classification + box_weight * smooth L1) / max(1, matches)``.

    The smooth L1 is divided by 4 when ``normalize_box_by_codesize`` (default: for focal,
    as the TF OD API config; not for softmax, as torchvision).

    Args:
        box_targets: ``[B, A, 4]`` encoded offsets (``assign_targets``).
        class_targets: ``[B, A]`` int ids, 0 = background.
        outputs: the ``SSDLite`` output dict (``box_encodings``, ``class_logits``).
        classification: ``"focal"`` (TF OD API) or ``"softmax"`` (torchvision, 3:1 mining).

    Raises:
        ValueError: an unknown ``classification``.
    """
    class_targets = tf.cast(class_targets, tf.int32)
    positive = class_targets > 0
    logits = outputs["class_logits"]
    if classification == "focal":
        cls = focal_loss(class_targets, logits, alpha, gamma)
    elif classification == "softmax":
        cls = softmax_hard_negative_loss(class_targets, logits, neg_pos_ratio)
    else:
        raise ValueError(f"Expected classification 'focal' or 'softmax'. Received: {classification!r}")
    box = smooth_l1(box_targets, outputs["box_encodings"], positive)
    if normalize_box_by_codesize is None:
        normalize_box_by_codesize = classification == "focal"
    if normalize_box_by_codesize:
        box = box / 4.0
    matches = tf.maximum(tf.reduce_sum(tf.cast(positive, tf.float32), -1), 1.0)
    return (cls + box_weight * box) / matches
