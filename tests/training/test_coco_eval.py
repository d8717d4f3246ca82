"""CocoEvaluator equals pycocotools run directly on hand-written COCO dicts."""

import contextlib
import io

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mnas_keras.training.coco_eval import CocoEvaluator

# Two images (100 high x 200 wide, 50 x 50); categories 3 and 7 (classes 1 and 2).
# Absolute COCO boxes [x, y, w, h], written by hand.
IMAGES = {11: (100, 200), 12: (50, 50)}
GT = [  # image, category, bbox
    (11, 3, [20, 10, 60, 40]), (11, 7, [120, 50, 40, 30]), (12, 3, [5, 5, 20, 20]), (12, 7, [25, 25, 20, 20]),
]
DT = [  # image, category, bbox, score
    (11, 3, [22, 12, 60, 40], 0.9), (11, 3, [100, 60, 30, 30], 0.8), (11, 7, [118, 48, 44, 30], 0.7),
    (12, 3, [5, 5, 20, 20], 0.95), (12, 7, [10, 10, 20, 20], 0.6), (12, 7, [27, 27, 16, 16], 0.5),
]


def _pycocotools_stats():
    gt = COCO()
    gt.dataset = {
        "images": [{"id": i, "height": h, "width": w} for i, (h, w) in IMAGES.items()],
        "annotations": [{"id": k + 1, "image_id": i, "category_id": c, "bbox": b, "area": b[2] * b[3], "iscrowd": 0}
                        for k, (i, c, b) in enumerate(GT)],
        "categories": [{"id": 3, "name": "a"}, {"id": 7, "name": "b"}],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes([{"image_id": i, "category_id": c, "bbox": b, "score": s} for i, c, b, s in DT])
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate(), ev.accumulate(), ev.summarize()
    return ev.stats[:3]


def _normalized(image, bbox):
    h, w = IMAGES[image]
    x, y, bw, bh = bbox
    return [y / h, x / w, (y + bh) / h, (x + bw) / w]


def test_evaluator_equals_pycocotools_on_hand_made_detections():
    ev = CocoEvaluator(category_ids=[3, 7])
    cls = {3: 1, 7: 2}
    for image, (h, w) in IMAGES.items():
        gts = [(c, b) for i, c, b in GT if i == image]
        # a padding row (class 0) must be ignored
        ev.add_groundtruth(image, h, w, [_normalized(image, b) for _, b in gts] + [[0, 0, 0, 0]],
                           [cls[c] for c, _ in gts] + [0])
        dts = [(c, b, s) for i, c, b, s in DT if i == image]
        ev.add_detections(image, h, w, [_normalized(image, b) for _, b, _ in dts],
                          [cls[c] for c, _, _ in dts], [s for _, _, s in dts])
    got = ev.evaluate()
    want = _pycocotools_stats()
    assert 0.3 < want[0] < 0.9  # the hand-made case is neither trivial nor empty
    np.testing.assert_allclose([got["mAP"], got["mAP@0.5"], got["mAP@0.75"]], want, atol=1e-9)


def test_a_detection_on_a_crowd_is_ignored_not_a_false_positive():
    # One 100x100 image: person A at x 0..40 (class 1) and a crowd B at x 50..100. Detections:
    # on B (score 0.9), then on A (0.8). With B a crowd, the 0.9 detection matches it and is
    # ignored: one true positive, AP 1. With B dropped, the 0.9 detection is a false positive
    # ranked first: precision 1/2 at recall 1, so every interpolated precision is 0.5, AP 0.5.
    a, b = [0.0, 0.0, 1.0, 0.4], [0.0, 0.5, 1.0, 1.0]
    with_crowd, without = CocoEvaluator([1]), CocoEvaluator([1])
    with_crowd.add_groundtruth(1, 100, 100, [a, b], [1, 1], iscrowd=[0, 1])
    without.add_groundtruth(1, 100, 100, [a], [1])
    for ev in (with_crowd, without):
        ev.add_detections(1, 100, 100, [b, a], [1, 1], [0.9, 0.8])
    assert abs(with_crowd.evaluate()["mAP@0.5"] - 1.0) < 1e-9
    assert abs(without.evaluate()["mAP@0.5"] - 0.5) < 1e-9
