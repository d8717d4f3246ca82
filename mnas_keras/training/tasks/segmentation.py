"""Semantic segmentation: LR-ASPP on a MnasNet-family backbone, per-pixel loss, mIoU.

Loss: per-pixel softmax cross-entropy, averaged over each image's labelled pixels (mask
255 is ignored), then summed over the batch and divided by the global batch size like every
task of the loop. Metrics: per class, true positives, ground-truth and predicted pixel
counts summed over replicas and steps (scalars, as the trainer reduces them), giving
``miou`` (mean over the classes present in the ground truth or the predictions, as
``keras.metrics.MeanIoU`` counts them) and ``pixel_accuracy``.

Example:
    >>> from mnas_keras.training.recipes import get_recipe
    >>> cfg = get_recipe("lraspp_shapes")
    >>> task = SegmentationTask(cfg)
    >>> task.num_classes
    4
    >>> task.build_model().output_shape
    (None, None, None, 4)
"""

from __future__ import annotations

import os
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from mnas_keras.training.config import ExperimentConfig, SegmentationConfig
from mnas_keras.training.data.segmentation_data import (
    IGNORE_LABEL,
    SegmentationSource,
    load_segmentation_source,
    segmentation_eval_dataset,
    segmentation_train_dataset,
)
from mnas_keras.training.errors import ConfigError
from mnas_keras.training.tasks.base import Task, register_task


def build_segmenter(config: ExperimentConfig, num_classes: int) -> keras.Model:
    """The LR-ASPP model ``config`` describes (``model`` + ``task`` sections), logits out."""
    from mnas_keras.codec import reduced_tail as halve_tail
    from mnas_keras.heads import LRASPP
    from mnas_keras.models import MnasNet

    model_cfg, task_cfg = config.model, config.task
    kwargs = dict(input_shape=(None, None, 3), include_top=False, output_stride=task_cfg.output_stride)
    if model_cfg.bn_momentum is not None:
        kwargs["bn_momentum"] = model_cfg.bn_momentum
    if model_cfg.blocks:
        blocks = list(model_cfg.blocks)
        if task_cfg.reduced_tail:
            blocks = halve_tail(blocks)
        backbone = MnasNet(blocks, alpha=model_cfg.alpha, include_preprocessing=True, **kwargs)
    else:
        from mnas_keras.applications import UnknownModelError, create_model, parse_model_name

        if model_cfg.name.startswith("keras:"):
            raise ConfigError(f"model.name {model_cfg.name!r}: segmentation needs a mnas_keras backbone")
        try:
            _, options = parse_model_name(model_cfg.name)
        except UnknownModelError as err:
            raise ConfigError(f"model.name: {err}") from None
        if model_cfg.alpha != 1.0 and "alpha" not in options:
            kwargs["alpha"] = model_cfg.alpha
        backbone = create_model(model_cfg.name, reduced_tail=task_cfg.reduced_tail, **kwargs)
    pooling = "global"
    if task_cfg.pooling:
        kh, kw, sh, sw = task_cfg.pooling
        pooling = ((kh, kw), (sh, sw))
    model = LRASPP(backbone, num_classes, filters=task_cfg.filters, pooling=pooling)
    if model_cfg.sync_batch_norm:
        for layer in model._flatten_layers(include_self=False):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.synchronized = True
    return model


def confusion_sums(labels, logits, num_classes: int, weights=None) -> dict[str, tf.Tensor]:
    """Per-class ``tp_<c>``, ``gt_<c>`` and ``pred_<c>`` pixel counts (float32 scalars).

    Pixels labelled 255 and examples of weight 0 are left out.

    Example:
        >>> labels = tf.constant([[[0, 1], [1, 255]]])
        >>> logits = tf.one_hot([[[0, 0], [1, 1]]], 2)
        >>> {k: float(v) for k, v in sorted(confusion_sums(labels, logits, 2).items())}
        {'gt_0': 1.0, 'gt_1': 2.0, 'pred_0': 2.0, 'pred_1': 1.0, 'tp_0': 1.0, 'tp_1': 1.0}
    """
    labels = tf.cast(labels, tf.int32)
    predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)
    valid = labels != IGNORE_LABEL
    if weights is not None:
        valid &= tf.reshape(tf.cast(weights, tf.float32) > 0, [-1, 1, 1])
    matrix = tf.math.confusion_matrix(
        tf.reshape(tf.where(valid, labels, 0), [-1]),
        tf.reshape(predictions, [-1]),
        num_classes=num_classes,
        weights=tf.reshape(tf.cast(valid, tf.float32), [-1]),
        dtype=tf.float32,
    )
    tp, gt, pred = tf.linalg.diag_part(matrix), tf.reduce_sum(matrix, 1), tf.reduce_sum(matrix, 0)
    sums = {}
    for c in range(num_classes):
        sums[f"tp_{c}"], sums[f"gt_{c}"], sums[f"pred_{c}"] = tp[c], gt[c], pred[c]
    return sums


def miou_from_sums(sums: dict, num_classes: int) -> tuple[float, float, list]:
    """``(mIoU, pixel accuracy, per-class IoU or None)`` from :func:`confusion_sums` totals.

    A class absent from both ground truth and predictions has no IoU and is left out of the
    mean (as in ``keras.metrics.MeanIoU``).

    Example:
        >>> sums = {"tp_0": 1, "gt_0": 1, "pred_0": 2, "tp_1": 1, "gt_1": 2, "pred_1": 1}
        >>> miou_from_sums(sums, 2)
        (0.5, 0.6666666666666666, [0.5, 0.5])
    """
    ious = []
    for c in range(num_classes):
        tp, gt, pred = (float(sums[f"{k}_{c}"]) for k in ("tp", "gt", "pred"))
        union = gt + pred - tp
        ious.append(tp / union if union > 0 else None)
    present = [v for v in ious if v is not None]
    total = sum(float(sums[f"gt_{c}"]) for c in range(num_classes))
    correct = sum(float(sums[f"tp_{c}"]) for c in range(num_classes))
    miou = sum(present) / len(present) if present else 0.0
    return miou, (correct / total if total else 0.0), ious


def per_pixel_loss(labels, logits) -> tf.Tensor:
    """Softmax cross-entropy per image: mean over its labelled pixels, float32 ``[batch]``.

    An image without labelled pixels has loss 0 (never NaN).
    """
    labels = tf.cast(labels, tf.int32)
    valid = labels != IGNORE_LABEL
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.where(valid, labels, 0), logits=tf.cast(logits, tf.float32)
    )
    valid = tf.cast(valid, tf.float32)
    count = tf.reduce_sum(valid, axis=[1, 2])
    return tf.reduce_sum(ce * valid, axis=[1, 2]) / tf.maximum(count, 1.0)


@register_task("segmentation", SegmentationConfig)
class SegmentationTask(Task):
    """Semantic segmentation (LR-ASPP) in the ``tf.distribute`` loop.

    Args:
        config: the experiment config; ``config.task`` is a ``SegmentationConfig``.
        source: a :class:`~mnas_keras.training.data.segmentation_data.SegmentationSource`
            (default: the one ``config.data.name`` names).
        model_fn: optional ``() -> keras.Model`` (logits ``[B, H, W, classes]``).
    """

    def __init__(self, config: ExperimentConfig, source: SegmentationSource | None = None,
                 model_fn: Callable[[], keras.Model] | None = None):
        super().__init__(config)
        if not isinstance(config.task, SegmentationConfig):
            raise ConfigError(f"SegmentationTask needs a SegmentationConfig; received {config.task!r}")
        self._source = source
        self._model_fn = model_fn
        self._bases: dict = {}

    @property
    def source(self) -> SegmentationSource:
        if self._source is None:
            self._source = load_segmentation_source(self.config.data, self.config.task.num_classes)
        return self._source

    @property
    def num_classes(self) -> int:
        return self.config.task.num_classes or self.source.num_classes

    def build_model(self):
        if self._model_fn is not None:
            return self._model_fn()
        return build_segmenter(self.config, self.num_classes)

    def num_examples(self, training):
        data = self.config.data
        return self.source.num_examples(data.train_split if training else data.eval_split)

    def _base(self, split, input_context, seed):
        if not self.config.data.cache:
            return None
        key = (split, input_context.input_pipeline_id if input_context else 0)
        if key not in self._bases:
            self._bases[key] = self.source.dataset(split, seed=seed, input_context=input_context).cache()
        return self._bases[key]

    def train_inputs(self, input_context, *, global_batch_size, epoch, skip_steps, seed):
        data, task = self.config.data, self.config.task
        per_replica, replicas_here = _batching(input_context, global_batch_size)
        augment = data.augmentation != "none"
        return segmentation_train_dataset(
            self.source, data.train_split, batch_size=per_replica, crop_size=data.image_size,
            min_scale=task.min_scale if augment else 1.0, max_scale=task.max_scale if augment else 1.0,
            flip=augment, seed=seed, epoch=epoch, skip_examples=skip_steps * per_replica * replicas_here,
            shuffle_buffer=data.shuffle_buffer, input_context=input_context,
            base=self._base(data.train_split, input_context, seed),
        )

    def eval_inputs(self, input_context, *, global_batch_size, steps):
        data = self.config.data
        per_replica, replicas_here = _batching(input_context, global_batch_size)
        return segmentation_eval_dataset(
            self.source, data.eval_split, batch_size=per_replica, eval_size=self.config.task.eval_size,
            replicas=replicas_here, steps=steps, input_context=input_context,
            base=self._base(data.eval_split, input_context, 0),
        )

    def unpack(self, batch, training):
        if len(batch) == 3:
            return batch
        images, masks = batch
        return images, masks, None

    def per_example_loss(self, targets, outputs, model=None):
        return per_pixel_loss(targets, outputs)

    def metric_sums(self, targets, outputs, weights):
        if weights is None:  # training step: pixel accuracy only (cheap)
            labels = tf.cast(targets, tf.int32)
            valid = tf.cast(labels != IGNORE_LABEL, tf.float32)
            hit = tf.cast(tf.equal(tf.argmax(outputs, -1, output_type=tf.int32), labels), tf.float32)
            return {"pixels_correct": tf.reduce_sum(hit * valid), "pixels": tf.reduce_sum(valid)}
        sums = confusion_sums(targets, outputs, self.num_classes, weights)
        sums["count"] = tf.reduce_sum(tf.cast(weights, tf.float32))
        return sums

    def summarize(self, sums, *, num_steps, training):
        if training:
            return {
                "loss": float(sums["loss"]) / max(num_steps, 1),
                "pixel_accuracy": float(sums["pixels_correct"]) / max(float(sums["pixels"]), 1.0),
            }
        count = max(float(sums["count"]), 1e-12)
        miou, accuracy, ious = miou_from_sums(sums, self.num_classes)
        out = {"loss": float(sums["loss_sum"]) / count, "miou": miou, "pixel_accuracy": accuracy}
        names = getattr(self.source, "class_names", ()) or ()
        for c, iou in enumerate(ious):
            if iou is not None:
                out[f"iou/{names[c] if c < len(names) else c}"] = iou
        out["examples"] = int(round(float(sums["count"])))
        return out

    # ---- visual output ---------------------------------------------------------------
    def write_visuals(self, model, model_dir: str, step: int, summary_writer=None) -> list[str]:
        """Writes ``task.num_visuals`` overlay PNGs (image | ground truth | prediction).

        Files go to ``model_dir/visuals/step_<step>_<i>.png``; with a ``summary_writer``
        (``tf.summary``) the same images are logged as ``segmentation/overlays``.

        Returns:
            The written paths.
        """
        count = self.config.task.num_visuals
        if count <= 0:
            return []
        data = self.config.data
        ds = segmentation_eval_dataset(self.source, data.eval_split, batch_size=1,
                                       eval_size=self.config.task.eval_size).take(count)
        folder = os.path.join(model_dir, "visuals")
        os.makedirs(folder, exist_ok=True)
        palette = color_palette(self.num_classes)
        panels, paths = [], []
        for i, (image, mask, _) in enumerate(ds):
            logits = model(image, training=False)
            prediction = tf.argmax(logits, -1, output_type=tf.int32)[0].numpy()
            panel = overlay_panel(image[0].numpy(), mask[0].numpy(), prediction, palette)
            path = os.path.join(folder, f"step_{step}_{i}.png")
            tf.io.write_file(path, tf.io.encode_png(panel))
            panels.append(panel)
            paths.append(path)
        if summary_writer is not None and panels:
            write_image_summary(summary_writer, "segmentation/overlays", panels, step)
        return paths


def write_image_summary(writer, tag: str, images: list, step: int) -> None:
    """Logs uint8 ``[H, W, 3]`` images as TensorBoard's image plugin stores them.

    The tensor is ``[width, height, png_1, ..., png_k]`` (strings) with plugin ``images``;
    written with ``tf.summary.write`` so that no ``tensorboard`` package is needed.
    """
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = "images"
    height, width = images[0].shape[:2]
    encoded = [tf.io.encode_png(image) for image in images]
    tensor = tf.stack([tf.constant(str(width)), tf.constant(str(height)), *encoded])
    with writer.as_default(step=int(step)):
        tf.summary.write(tag, tensor, metadata=metadata.SerializeToString())
    writer.flush()


def color_palette(num_classes: int) -> np.ndarray:
    """``[num_classes + 1, 3]`` uint8 colours (Pascal VOC's bit pattern); the last is ignore (white).

    Example:
        >>> color_palette(3).tolist()
        [[0, 0, 0], [128, 0, 0], [0, 128, 0], [255, 255, 255]]
    """
    colors = np.zeros((num_classes + 1, 3), np.uint8)
    for c in range(num_classes):
        r = g = b = 0
        label = c
        for shift in range(7, -1, -1):
            r |= ((label >> 0) & 1) << shift
            g |= ((label >> 1) & 1) << shift
            b |= ((label >> 2) & 1) << shift
            label >>= 3
        colors[c] = (r, g, b)
    colors[num_classes] = (255, 255, 255)
    return colors


def overlay_panel(image, mask, prediction, palette) -> np.ndarray:
    """``uint8 [H, 3W, 3]``: the image, the ground truth over it, the prediction over it."""
    image = np.clip(image, 0, 255).astype(np.uint8)
    ignore = len(palette) - 1
    mask = np.where(mask == IGNORE_LABEL, ignore, np.minimum(mask, ignore))
    gt = (0.5 * image + 0.5 * palette[mask]).astype(np.uint8)
    pred = (0.5 * image + 0.5 * palette[np.minimum(prediction, ignore)]).astype(np.uint8)
    return np.concatenate([image, gt, pred], axis=1)


def _batching(input_context, global_batch_size: int) -> tuple[int, int]:
    if input_context is None:
        return global_batch_size, 1
    per_replica = input_context.get_per_replica_batch_size(global_batch_size)
    return per_replica, input_context.num_replicas_in_sync // input_context.num_input_pipelines
