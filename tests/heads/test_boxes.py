"""Box coder, matcher, losses and NMS decoding against hand computations and numpy."""

import math

import numpy as np
import pytest

from mnas_keras.heads.box_coder import assign_targets, decode_boxes, encode_boxes, match_anchors
from mnas_keras.heads.losses import detection_loss, focal_loss, smooth_l1, softmax_hard_negative_loss
from mnas_keras.heads.postprocess import postprocess

# a 2x2 grid of 0.5 squares (center_yxhw)
GRID = np.array([[0.25, 0.25, 0.5, 0.5], [0.25, 0.75, 0.5, 0.5],
                 [0.75, 0.25, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5]], "float32")


def _numpy_encode(boxes, anchors):
    # the TF OD API's FasterRcnnBoxCoder with scales (10, 10, 5, 5), written out
    yc, xc = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    h, w = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    ya, xa, ha, wa = anchors.T
    return np.stack([10 * (yc - ya) / ha, 10 * (xc - xa) / wa, 5 * np.log(h / ha), 5 * np.log(w / wa)], -1)


def test_encode_by_hand():
    anchors = np.array([[0.5, 0.5, 0.2, 0.4], [0.5, 0.5, 0.2, 0.4]], "float32")
    boxes = np.array([[0.45, 0.4, 0.65, 0.8], [0.3, 0.3, 0.7, 0.7]], "float32")
    # box 0: centre (0.55, 0.6), size (0.2, 0.4): (10*0.05/0.2, 10*0.1/0.4, 0, 0)
    # box 1: centre (0.5, 0.5), size (0.4, 0.4): (0, 0, 5 ln 2, 0)
    np.testing.assert_allclose(encode_boxes(boxes, anchors), [[2.5, 2.5, 0, 0], [0, 0, 5 * math.log(2), 0]], atol=1e-5)


def test_round_trip_and_numpy_coder():
    rng = np.random.default_rng(0)
    lo = rng.uniform(0, 0.6, (50, 2))
    boxes = np.concatenate([lo, lo + rng.uniform(0.05, 0.4, (50, 2))], -1).astype("float32")
    anchors = np.concatenate([rng.uniform(0.1, 0.9, (50, 2)), rng.uniform(0.05, 0.9, (50, 2))], -1).astype("float32")
    enc = np.asarray(encode_boxes(boxes, anchors))
    np.testing.assert_allclose(enc, _numpy_encode(boxes, anchors), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(decode_boxes(enc, anchors), boxes, atol=1e-5)


@pytest.mark.parametrize("boxes, classes, expected", [
    ([[0.0, 0.0, 0.5, 0.5]], [1], [0, -1, -1, -1]),  # exact quadrant
    ([[0.0, 0.0, 0.2, 0.2]], [1], [0, -1, -1, -1]),  # IoU 0.16 < 0.5: forced best anchor
    ([[0.0, 0.0, 0.2, 0.2], [0.05, 0.05, 0.25, 0.25]], [1, 2], [0, -1, -1, -1]),  # shared best: lower row wins
    # both boxes' best anchor is 3 (IoU 1 and 0.83): the forced match of the lower row wins
    ([[0.45, 0.45, 1.0, 1.0], [0.5, 0.5, 1.0, 1.0]], [1, 2], [-1, -1, -1, 0]),
    ([[0.0, 0.0, 0.5, 0.5]], [0], [-1, -1, -1, -1]),  # padding row never matches
    (np.zeros((0, 4)), [], [-1, -1, -1, -1]),  # no boxes
])
def test_matcher_hand_cases(boxes, classes, expected):
    got = match_anchors(np.asarray(boxes, "float32"), np.asarray(classes, "int32"), GRID)
    assert got.numpy().tolist() == expected


def test_matcher_threshold_and_argmax():
    # IoU with anchors 0 and 1: 0.25/0.45 = 0.556 and 0.2/0.5 = 0.4
    box = np.array([[0.0, 0.0, 0.5, 0.9]], "float32")
    assert match_anchors(box, [1], GRID).numpy().tolist() == [0, -1, -1, -1]
    assert match_anchors(box, [1], GRID, iou_threshold=0.35).numpy().tolist() == [0, 0, -1, -1]
    # a duplicate of anchor 3 is nobody's forced anchor: it takes its highest-IoU box
    anchors = np.concatenate([GRID, GRID[3:]])
    boxes = np.array([[0.45, 0.45, 1.0, 1.0], [0.5, 0.5, 1.0, 1.0]], "float32")
    assert match_anchors(boxes, [1, 1], anchors).numpy().tolist() == [-1, -1, -1, 0, 1]


def test_assign_targets():
    box_t, cls_t = assign_targets(np.array([[0.0, 0.0, 0.5, 0.5], [0, 0, 0, 0]], "float32"), [3, 0], GRID)
    assert cls_t.numpy().tolist() == [3, 0, 0, 0]
    np.testing.assert_allclose(box_t, np.zeros((4, 4)), atol=1e-5)  # exact fit: zero offsets


def test_focal_loss_by_hand():
    # one anchor, logits 0 (p = 0.5) on [background, class 1], target class 1:
    # 0.75 * 0.5^2 * ln 2 (class column) + 0.25 * 0.5^2 * ln 2 (background column)
    got = focal_loss(np.array([[1]]), np.zeros((1, 1, 2), "float32"))
    np.testing.assert_allclose(got, [0.25 * math.log(2)], rtol=1e-5)
    # against the formula in numpy on random logits
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 5, 4)).astype("float32")
    targets = rng.integers(0, 4, (2, 5))
    p = 1 / (1 + np.exp(-logits.astype("float64")))
    t = np.eye(4)[targets]
    t[..., 0] = 0  # background encoded as zeros (TF OD API encode_background_as_zeros)
    pt = np.where(t == 1, p, 1 - p)
    ref = -(np.where(t == 1, 0.75, 0.25) * (1 - pt) ** 2 * np.log(pt)).sum(axis=(1, 2))
    np.testing.assert_allclose(focal_loss(targets, logits), ref, rtol=1e-4)


def test_detection_loss_by_hand():
    # one image, 2 anchors, 1 matched (class 1): focal on 2 anchors x 2 columns at logit 0,
    # smooth L1 0.125 / 4 (code size), normalized by 1 match
    outputs = {"box_encodings": np.array([[[0.5, 0, 0, 0], [7, 7, 7, 7]]], "float32"),
               "class_logits": np.zeros((1, 2, 2), "float32")}
    loss = detection_loss(np.zeros((1, 2, 4)), np.array([[1, 0]]), outputs)
    focal = (0.75 + 3 * 0.25) * 0.25 * math.log(2)
    np.testing.assert_allclose(loss, [focal + 0.125 / 4], rtol=1e-5)


def test_smooth_l1_by_hand():
    got = smooth_l1(np.zeros((1, 2, 4)), np.array([[[0.5, 2, 0, 0], [9, 9, 9, 9]]]), np.array([[True, False]]))
    np.testing.assert_allclose(got, [0.125 + 1.5])


def test_hard_negative_mining_brute_force():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(1, 10, 3)).astype("float32")
    targets = np.array([[2, 0, 0, 0, 0, 0, 0, 0, 0, 0]])
    z = logits[0].astype("float64")
    ce = np.log(np.exp(z).sum(-1)) - z[np.arange(10), targets[0]]
    ref = ce[0] + np.sort(ce[1:])[::-1][:3].sum()  # the positive + its 3 hardest negatives
    np.testing.assert_allclose(softmax_hard_negative_loss(targets, logits), [ref], rtol=1e-5)


@pytest.mark.parametrize("classification", ["focal", "softmax"])
def test_no_boxes_gives_finite_loss(classification):
    outputs = {"box_encodings": np.full((1, 4, 4), 3.0, "float32"), "class_logits": np.zeros((1, 4, 3), "float32")}
    loss = detection_loss(np.zeros((1, 4, 4)), np.zeros((1, 4), "int32"), outputs, classification=classification)
    # per anchor: 3 columns of target 0 (background encoded as zeros), 0.25 * 0.5^2 * ln 2 each
    expected = 4 * 3 * 0.25 * 0.25 * math.log(2) if classification == "focal" else 0.0
    np.testing.assert_allclose(loss, [expected], rtol=1e-5)


@pytest.mark.parametrize("mode", ["regular", "fast"])
def test_decode_and_nms_hand_case(mode):
    anchors = np.array([[0.25, 0.25, 0.5, 0.5], [0.26, 0.26, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5]], "float32")
    enc = np.zeros((1, 3, 4), "float32")  # boxes are the anchors
    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    logits = np.full((1, 3, 3), -20.0, "float32")
    logits[0, 0, 1], logits[0, 1, 1], logits[0, 2, 2] = logit(0.6), logit(0.9), logit(0.7)
    det = postprocess({"box_encodings": enc, "class_logits": logits}, anchors, max_detections=5,
                      score_threshold=0.3, iou_threshold=0.5, mode=mode)
    assert int(det["num_detections"][0]) == 2  # anchor 0 suppressed by anchor 1 (IoU 0.92)
    np.testing.assert_allclose(det["scores"][0], [0.9, 0.7, 0, 0, 0], atol=1e-5)
    assert det["classes"][0].numpy().tolist() == [1, 2, 0, 0, 0]
    np.testing.assert_allclose(det["boxes"][0, :2], [[0.01, 0.01, 0.51, 0.51], [0.5, 0.5, 1.0, 1.0]], atol=1e-5)
