"""The detection task's config (no TensorFlow here; registered as task ``"detection"``).

Example:
    >>> from mnas_keras.training.config import ExperimentConfig, override
    >>> cfg = override(ExperimentConfig(), ["task.name=detection", "task.classification_loss=softmax"])
    >>> cfg.task.classification_loss, cfg.task.match_iou
    ('softmax', 0.5)
"""

from __future__ import annotations

import dataclasses

from mnas_keras.training.config import TaskConfig, register_task_config
from mnas_keras.training.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class DetectionConfig(TaskConfig):
    """SSDLite detection (defaults: the TF OD API's ``ssdlite_mobilenet_v3_large_320x320_coco``).

    Attributes:
        num_classes: foreground classes; ``None`` takes the dataset's.
        reduced_tail: halve the backbone's last stage (MobileNetV3 paper's detection setting).
        extra_filters: SSDLite extra blocks (512, 256, 256, 128).
        min_scale, max_scale, reduce_boxes_in_lowest_layer: the anchor layout
            (``mnas_keras.heads.AnchorConfig``).
        classification_loss: ``"focal"`` (sigmoid focal, TF OD API) or ``"softmax"``
            (3:1 hard negative mining, torchvision).
        focal_alpha, focal_gamma, neg_pos_ratio: loss settings (0.75, 2, 3).
        match_iou: anchor matching IoU (0.5).
        augmentation: ``"ssd"`` (SSD random crop + flip + photometric), ``"flip"``, ``"none"``.
        max_boxes: boxes kept per image (TF OD API ``max_number_of_boxes`` 100).
        score_threshold, nms_iou, max_detections: evaluation post-processing (TF OD API:
            1e-8, 0.6, 100).
        num_visuals: evaluation images written after the final evaluation as PNGs (and
            TensorBoard images): image | true boxes | predicted boxes.
        visual_min_score: the least score of a predicted box drawn in those images.
    """

    name: str = "detection"
    num_classes: int | None = None
    reduced_tail: bool = True
    extra_filters: tuple = (512, 256, 256, 128)
    min_scale: float = 0.2
    max_scale: float = 0.95
    reduce_boxes_in_lowest_layer: bool = True
    classification_loss: str = "focal"
    focal_alpha: float = 0.75
    focal_gamma: float = 2.0
    neg_pos_ratio: float = 3.0
    match_iou: float = 0.5
    augmentation: str = "ssd"
    max_boxes: int = 100
    score_threshold: float = 1e-8
    nms_iou: float = 0.6
    max_detections: int = 100
    num_visuals: int = 4
    visual_min_score: float = 0.3

    def __post_init__(self):
        object.__setattr__(self, "extra_filters", tuple(int(f) for f in self.extra_filters))
        if self.classification_loss not in ("focal", "softmax"):
            raise ConfigError(f"task.classification_loss must be one of ('focal', 'softmax'); received {self.classification_loss!r}")
        if self.augmentation not in ("ssd", "flip", "none"):
            raise ConfigError(f"task.augmentation must be one of ('ssd', 'flip', 'none'); received {self.augmentation!r}")
        if self.num_classes is not None and self.num_classes < 1:
            raise ConfigError(f"task.num_classes must be > 0; received {self.num_classes!r}")
        for key in ("match_iou", "nms_iou"):
            if not 0 < getattr(self, key) <= 1:
                raise ConfigError(f"task.{key} must be in (0, 1]; received {getattr(self, key)!r}")
        for key in ("max_boxes", "max_detections"):
            if getattr(self, key) < 1:
                raise ConfigError(f"task.{key} must be > 0; received {getattr(self, key)!r}")
        if self.num_visuals < 0:
            raise ConfigError(f"task.num_visuals must be >= 0; received {self.num_visuals!r}")
        if not 0 <= self.visual_min_score <= 1:
            raise ConfigError(f"task.visual_min_score must be in [0, 1]; received {self.visual_min_score!r}")
        if not 0 < self.min_scale <= self.max_scale:
            raise ConfigError(f"task.min_scale and task.max_scale must satisfy 0 < min <= max; received {self.min_scale}, {self.max_scale}")


register_task_config("detection", DetectionConfig)
