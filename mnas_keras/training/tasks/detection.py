"""Object detection with SSDLite: targets matched in the step, focal / softmax loss, COCO mAP.

The batches carry padded ground truth (``mnas_keras.training.data.detection``); each
replica matches anchors to it inside the step (``mnas_keras.heads.assign_targets``), so
the input pipeline does not depend on the model. Evaluation decodes with per-class NMS
(``mnas_keras.heads.postprocess``) and scores with ``pycocotools`` on the host
(``host_outputs``): mAP@[.5:.95], mAP@.5 and mAP@.75 with absolute boxes in each image's
original pixels and the dataset's category ids. After the final evaluation
(``write_visuals``) a few evaluation images are written with their true boxes (green) and
predicted boxes (red) drawn, as PNGs and TensorBoard images.

Example:
    >>> from mnas_keras.training.recipes import get_recipe
    >>> cfg = get_recipe("ssdlite_shapes")
    >>> cfg.task.name, cfg.data.name, cfg.data.image_size
    ('detection', 'shapes', 128)
"""

from __future__ import annotations

import os
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from mnas_keras.heads import AnchorConfig, SSDLite, assign_targets, detection_loss, postprocess
from mnas_keras.training.coco_eval import CocoEvaluator
from mnas_keras.training.config import ExperimentConfig
from mnas_keras.training.data.detection import (
    DetectionSource,
    detection_eval_dataset,
    detection_train_dataset,
    load_detection_source,
)
from mnas_keras.training.detection_config import DetectionConfig
from mnas_keras.training.errors import ConfigError
from mnas_keras.training.tasks.base import Task, register_task
from mnas_keras.training.tasks.classification import _batching


def build_detector(config: ExperimentConfig, num_classes: int) -> SSDLite:
    """``SSDLite`` on the registry backbone ``config.model.name`` (random init, [0, 255] inputs)."""
    from mnas_keras.applications import UnknownModelError, create_model

    task, size = config.task, config.data.image_size
    kwargs = dict(input_shape=(size, size, 3), include_top=False, reduced_tail=task.reduced_tail)
    if config.model.alpha != 1.0:
        kwargs["alpha"] = config.model.alpha
    if config.model.bn_momentum is not None:
        kwargs["bn_momentum"] = config.model.bn_momentum
    try:
        backbone = create_model(config.model.name, **kwargs)
    except UnknownModelError as err:
        raise ConfigError(f"model.name: {err}") from None
    anchors = AnchorConfig(
        min_scale=task.min_scale, max_scale=task.max_scale,
        reduce_boxes_in_lowest_layer=task.reduce_boxes_in_lowest_layer,
    )
    bias = -4.6 if task.classification_loss == "focal" else 0.0
    return SSDLite(backbone, num_classes, extra_filters=task.extra_filters, anchor_config=anchors,
                   class_bias_init=bias, name=f"ssdlite_{backbone.name}".lower())


@register_task("detection", DetectionConfig)
class DetectionTask(Task):
    """SSDLite object detection.

    Args:
        config: the experiment config; ``config.task`` is a ``DetectionConfig``.
        source: a ``DetectionSource`` (default: ``load_detection_source(config.data)``).
        model_fn: optional ``() -> SSDLite`` used instead of ``config.model``.
    """

    host_outputs = True

    def __init__(self, config: ExperimentConfig, source: DetectionSource | None = None,
                 model_fn: Callable[[], keras.Model] | None = None):
        super().__init__(config)
        if not isinstance(config.task, DetectionConfig):
            raise ConfigError(f"DetectionTask needs a DetectionConfig; received {config.task!r}")
        self._source = source
        self._model_fn = model_fn
        self._anchors = None
        self._evaluator = None

    @property
    def source(self) -> DetectionSource:
        if self._source is None:
            self._source = load_detection_source(self.config.data)
        return self._source

    @property
    def num_classes(self) -> int:
        return self.config.task.num_classes or self.source.num_classes

    def build_model(self):
        model = self._model_fn() if self._model_fn is not None else build_detector(self.config, self.num_classes)
        if not hasattr(model, "anchors"):
            raise ConfigError("the detection task needs an SSDLite model (one with .anchors())")
        self._anchors = tf.constant(model.anchors())
        return model

    def num_examples(self, training):
        data = self.config.data
        return self.source.num_examples(data.train_split if training else data.eval_split)

    def train_inputs(self, input_context, *, global_batch_size, epoch, skip_steps, seed):
        data, task = self.config.data, self.config.task
        per_replica, replicas_here = _batching(input_context, global_batch_size)
        return detection_train_dataset(
            self.source, data.train_split, batch_size=per_replica, image_size=data.image_size,
            augmentation=task.augmentation, max_boxes=task.max_boxes, seed=seed, epoch=epoch,
            skip_examples=skip_steps * per_replica * replicas_here, shuffle_buffer=data.shuffle_buffer,
            input_context=input_context,
        )

    def eval_inputs(self, input_context, *, global_batch_size, steps):
        data, task = self.config.data, self.config.task
        per_replica, replicas_here = _batching(input_context, global_batch_size)
        return detection_eval_dataset(
            self.source, data.eval_split, batch_size=per_replica, image_size=data.image_size,
            max_boxes=task.max_boxes, replicas=replicas_here, steps=steps, input_context=input_context,
        )

    def unpack(self, batch, training):
        if len(batch) == 3:
            return batch
        images, targets = batch
        return images, targets, None

    def per_example_loss(self, targets, outputs, model=None):
        task = self.config.task
        anchors = self._anchors

        def one(args):
            boxes, classes = args
            return assign_targets(boxes, classes, anchors, task.match_iou)

        classes = targets["classes"]
        if "iscrowd" in targets:  # evaluation batches keep crowds for pycocotools: no targets
            classes = tf.where(targets["iscrowd"] > 0, 0, classes)
        box_t, cls_t = tf.map_fn(one, (targets["boxes"], classes),
                                 fn_output_signature=(tf.float32, tf.int32))
        return detection_loss(box_t, cls_t, outputs, classification=task.classification_loss,
                              alpha=task.focal_alpha, gamma=task.focal_gamma, neg_pos_ratio=task.neg_pos_ratio)

    def metric_sums(self, targets, outputs, weights):
        classes = targets["classes"]
        if weights is None:
            weights = tf.ones([tf.shape(classes)[0]], tf.float32)
        weights = tf.cast(weights, tf.float32)
        boxes = tf.reduce_sum(tf.cast(classes > 0, tf.float32), -1)
        return {"count": tf.reduce_sum(weights), "boxes": tf.reduce_sum(boxes * weights)}

    def summarize(self, sums, *, num_steps, training):
        count = max(float(sums["count"]), 1e-12)
        if training:
            return {"loss": float(sums["loss"]) / max(num_steps, 1)}
        return {"loss": float(sums["loss_sum"]) / count, "examples": int(round(float(sums["count"])))}

    # ---- COCO evaluation on the host -------------------------------------------------------
    def eval_outputs(self, batch, outputs):
        task = self.config.task
        _, targets, weights = self.unpack(batch, training=False)
        score_function = "sigmoid" if task.classification_loss == "focal" else "softmax"
        det = postprocess(outputs, self._anchors, max_detections=task.max_detections,
                          score_threshold=task.score_threshold, iou_threshold=task.nms_iou,
                          score_function=score_function)
        return {**{f"det_{k}": v for k, v in det.items()}, **{f"gt_{k}": v for k, v in targets.items()},
                "weights": weights}

    def eval_begin(self):
        self._evaluator = CocoEvaluator(self.source.category_ids[: self.num_classes])

    def eval_update(self, outputs):
        ev = self._evaluator
        for out in outputs:
            for i in range(len(out["weights"])):
                if out["weights"][i] <= 0:
                    continue
                h, w, image_id = out["gt_height"][i], out["gt_width"][i], out["gt_image_id"][i]
                ev.add_groundtruth(image_id, h, w, out["gt_boxes"][i], out["gt_classes"][i], out["gt_iscrowd"][i])
                n = int(out["det_num_detections"][i])
                ev.add_detections(image_id, h, w, out["det_boxes"][i][:n], out["det_classes"][i][:n],
                                  out["det_scores"][i][:n])

    def eval_end(self):
        return self._evaluator.evaluate() if self._evaluator is not None else {}

    # ---- visual output ---------------------------------------------------------------
    def write_visuals(self, model, model_dir: str, step: int, summary_writer=None) -> list[str]:
        """Writes ``task.num_visuals`` PNGs: image | true boxes (green) | predicted boxes (red).

        The first evaluation images, resized to ``data.image_size`` as the model sees them;
        predictions (decoded as in evaluation) scoring at least ``task.visual_min_score``
        are drawn with their class and score. Files go to
        ``model_dir/visuals/step_<step>_<i>.png`` (``uint8 [S, 3S, 3]``); with a
        ``summary_writer`` the same images are logged as ``detection/boxes``.

        Returns:
            The written paths.
        """
        from mnas_keras.heads.drawing import GT_COLOR, PREDICTION_COLOR, draw_boxes
        from mnas_keras.training.tasks.segmentation import write_image_summary

        task, data = self.config.task, self.config.data
        if task.num_visuals <= 0:
            return []
        if self._anchors is None:
            self._anchors = tf.constant(model.anchors())
        ds = detection_eval_dataset(self.source, data.eval_split, batch_size=1, image_size=data.image_size,
                                    max_boxes=task.max_boxes).take(task.num_visuals)
        score_function = "sigmoid" if task.classification_loss == "focal" else "softmax"
        names = getattr(self.source, "class_names", None)
        folder = os.path.join(model_dir, "visuals")
        os.makedirs(folder, exist_ok=True)
        panels, paths = [], []
        for i, (image, targets, weight) in enumerate(ds):
            if float(weight[0]) <= 0:
                break
            det = postprocess(model(image, training=False), self._anchors, max_detections=task.max_detections,
                              score_threshold=task.visual_min_score, iou_threshold=task.nms_iou,
                              score_function=score_function)
            n = int(det["num_detections"][0])
            pixels = image[0].numpy()
            real = targets["classes"][0].numpy() > 0
            truth = draw_boxes(pixels, targets["boxes"][0].numpy()[real], targets["classes"][0].numpy()[real],
                               color=GT_COLOR, names=names)
            predicted = draw_boxes(pixels, det["boxes"][0, :n].numpy(), det["classes"][0, :n].numpy(),
                                   det["scores"][0, :n].numpy(), color=PREDICTION_COLOR, names=names)
            panel = np.concatenate([np.clip(pixels, 0, 255).astype(np.uint8), truth, predicted], axis=1)
            path = os.path.join(folder, f"step_{step}_{i}.png")
            tf.io.write_file(path, tf.io.encode_png(panel))
            panels.append(panel)
            paths.append(path)
        if summary_writer is not None and panels:
            write_image_summary(summary_writer, "detection/boxes", panels, step)
        return paths
