"""COCO detection metrics through ``pycocotools`` (the official evaluator).

:class:`CocoEvaluator` collects ground truth and detections in the package's layout
(normalized ``(ymin, xmin, ymax, xmax)`` boxes, classes ``1..C``), maps them to COCO's
(absolute ``[x, y, width, height]`` in the original image's pixels, the dataset's category
ids) and runs ``pycocotools.cocoeval.COCOeval``.

Example:
    >>> ev = CocoEvaluator(category_ids=[1, 2])
    >>> ev.add_groundtruth(7, 100, 200, [[0.1, 0.1, 0.5, 0.5]], [1])
    >>> ev.add_detections(7, 100, 200, [[0.1, 0.1, 0.5, 0.5]], [1], [0.9])
    >>> {k: round(v, 3) for k, v in ev.evaluate().items()}
    {'mAP': 1.0, 'mAP@0.5': 1.0, 'mAP@0.75': 1.0}
"""

from __future__ import annotations

import contextlib
import io

import numpy as np


class CocoEvaluator:
    """Accumulates one evaluation pass and computes COCO mAP@[.5:.95], mAP@.5, mAP@.75.

    Args:
        category_ids: COCO category id of class ``k`` at index ``k - 1``.
    """

    def __init__(self, category_ids):
        self.category_ids = [int(c) for c in category_ids]
        self.reset()

    def reset(self):
        self._images, self._gt, self._dt = {}, [], []

    def _absolute(self, height, width, boxes):
        b = np.asarray(boxes, np.float64).reshape(-1, 4)
        y0, x0, y1, x1 = b[:, 0] * height, b[:, 1] * width, b[:, 2] * height, b[:, 3] * width
        return np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)

    def _category(self, k):
        if not 1 <= int(k) <= len(self.category_ids):
            raise ValueError(f"class {k} out of range 1..{len(self.category_ids)}")
        return self.category_ids[int(k) - 1]

    def add_groundtruth(self, image_id, height, width, boxes, classes, iscrowd=None):
        """One image's true boxes (normalized yxyx) and classes (``1..C``; 0 = padding, skipped).

        ``iscrowd`` (optional, ``[G]``): 1 marks a crowd region; pycocotools ignores the
        detections it matches (neither true nor false positives) and never counts it as missed.
        """
        image_id = int(image_id)
        self._images[image_id] = {"id": image_id, "height": int(height), "width": int(width)}
        classes = np.asarray(classes).reshape(-1)
        crowd = np.zeros(len(classes), int) if iscrowd is None else np.asarray(iscrowd).reshape(-1)
        for box, k, c in zip(self._absolute(height, width, boxes), classes, crowd):
            if k > 0:
                self._gt.append({
                    "id": len(self._gt) + 1, "image_id": image_id, "category_id": self._category(k),
                    "bbox": [float(v) for v in box], "area": float(box[2] * box[3]), "iscrowd": int(c > 0),
                })

    def add_detections(self, image_id, height, width, boxes, classes, scores):
        """One image's detections (normalized yxyx, classes ``1..C``, scores); class 0 rows skipped."""
        for box, k, s in zip(self._absolute(height, width, boxes), np.asarray(classes).reshape(-1),
                             np.asarray(scores).reshape(-1)):
            if k > 0:
                self._dt.append({"image_id": int(image_id), "category_id": self._category(k),
                                 "bbox": [float(v) for v in box], "score": float(s)})

    def evaluate(self) -> dict:
        """``{"mAP", "mAP@0.5", "mAP@0.75"}`` in [0, 1] (0 when there is nothing to score)."""
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        if not self._gt or not self._dt:
            return {"mAP": 0.0, "mAP@0.5": 0.0, "mAP@0.75": 0.0}
        gt = COCO()
        gt.dataset = {
            "images": list(self._images.values()),
            "annotations": self._gt,
            "categories": [{"id": c, "name": str(c)} for c in self.category_ids],
        }
        with contextlib.redirect_stdout(io.StringIO()):
            gt.createIndex()
            dt = gt.loadRes(list(self._dt))
            ev = COCOeval(gt, dt, "bbox")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        stats = [max(float(v), 0.0) for v in ev.stats[:3]]
        return {"mAP": stats[0], "mAP@0.5": stats[1], "mAP@0.75": stats[2]}
