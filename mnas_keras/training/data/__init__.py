"""Data for training: sources (tfds, image folders, tf.data, digits), preprocessing, pipelines."""

from mnas_keras.training.data.pipeline import eval_dataset, train_dataset
from mnas_keras.training.data.preprocessing import (
    center_crop,
    inception_crop,
    normalize,
    preprocess_for_eval,
    preprocess_for_train,
)
from mnas_keras.training.data.sources import (
    DatasetSource,
    DigitsSource,
    FolderSource,
    ImageSource,
    TFDSSource,
    load_source,
)

__all__ = [
    "DatasetSource",
    "DigitsSource",
    "FolderSource",
    "ImageSource",
    "TFDSSource",
    "center_crop",
    "eval_dataset",
    "inception_crop",
    "load_source",
    "normalize",
    "preprocess_for_eval",
    "preprocess_for_train",
    "train_dataset",
]
