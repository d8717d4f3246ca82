"""Training tasks: the single-replica view (model, inputs, loss, metrics, step)."""

from mnas_keras.training.tasks.base import (
    TASKS,
    StepContext,
    Task,
    build_task,
    prepare_gradients,
    register_task,
)
from mnas_keras.training.tasks.classification import (
    ClassificationTask,
    build_classifier,
    outputs_are_probabilities,
)
from mnas_keras.training.tasks.segmentation import SegmentationTask, build_segmenter
from mnas_keras.training.tasks.detection import DetectionTask, build_detector

__all__ = [
    "DetectionTask",
    "build_detector",
    "TASKS",
    "ClassificationTask",
    "SegmentationTask",
    "StepContext",
    "Task",
    "build_classifier",
    "build_segmenter",
    "build_task",
    "outputs_are_probabilities",
    "prepare_gradients",
    "register_task",
]
