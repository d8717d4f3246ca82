"""Image preprocessing of the recipes: Inception-style crop + flip, center crop, normalization.

All randomness is stateless (seeded per example), so a resumed run sees the same
augmentations as an uninterrupted one. Images come in as uint8 ``[H, W, C]`` (C = 1 or 3)
and leave as float32 ``[size, size, 3]`` in 0-255 (or normalized).

Example:
    >>> import numpy as np
    >>> image = tf.constant(np.arange(48 * 64 * 3, dtype=np.int64).reshape(48, 64, 3) % 256, tf.uint8)
    >>> preprocess_for_eval(image, 32, crop_padding=32).shape
    TensorShape([32, 32, 3])
    >>> out = preprocess_for_train(image, 32, "inception", seed=tf.constant([1, 2], tf.int64))
    >>> out.shape, out.dtype.name, bool(tf.reduce_all(out >= 0) and tf.reduce_all(out <= 255))
    (TensorShape([32, 32, 3]), 'float32', True)
"""

from __future__ import annotations

import tensorflow as tf

MEAN_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255)
STDDEV_RGB = (0.229 * 255, 0.224 * 255, 0.225 * 255)


def to_rgb(image: tf.Tensor) -> tf.Tensor:
    """Grey (1-channel) images become 3-channel."""
    if image.shape.rank == 3 and image.shape[-1] == 1:
        return tf.image.grayscale_to_rgb(image)
    return image


def _resize(image: tf.Tensor, size: int) -> tf.Tensor:
    image = tf.image.resize(tf.cast(image, tf.float32), [size, size], method="bicubic")
    return tf.clip_by_value(image, 0.0, 255.0)


def center_crop(image: tf.Tensor, size: int, crop_padding: int = 32) -> tf.Tensor:
    """Central square of ``size / (size + crop_padding)`` of the shorter side, resized to ``size``."""
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    crop = tf.cast(
        tf.cast(tf.minimum(height, width), tf.float32) * (size / (size + crop_padding)), tf.int32
    )
    crop = tf.maximum(crop, 1)
    top = (height - crop + 1) // 2
    left = (width - crop + 1) // 2
    image = tf.image.crop_to_bounding_box(image, top, left, crop, crop)
    return _resize(image, size)


def inception_crop(
    image: tf.Tensor,
    size: int,
    seed: tf.Tensor,
    *,
    area_range=(0.08, 1.0),
    aspect_ratio_range=(3.0 / 4.0, 4.0 / 3.0),
    min_object_covered: float = 0.1,
    max_attempts: int = 10,
) -> tf.Tensor:
    """A random crop of 8%-100% of the area and 3/4-4/3 aspect, resized to ``size``.

    Falls back to the center crop when no crop is found, as tensorflow/tpu's MnasNet does.
    """
    shape = tf.shape(image)
    begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape,
        bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32, [1, 1, 4]),
        seed=seed,
        min_object_covered=min_object_covered,
        aspect_ratio_range=aspect_ratio_range,
        area_range=area_range,
        max_attempts=max_attempts,
        use_image_if_no_bounding_boxes=True,
    )
    whole = tf.logical_and(tf.equal(crop_size[0], shape[0]), tf.equal(crop_size[1], shape[1]))
    return tf.cond(
        whole,
        lambda: center_crop(image, size),
        lambda: _resize(tf.slice(image, begin, crop_size), size),
    )


def normalize(image: tf.Tensor, mode: str) -> tf.Tensor:
    """``"none"`` (0-255), ``"imagenet_mean_std"`` or ``"scale_-1_1"``."""
    if mode == "none":
        return image
    if mode == "imagenet_mean_std":
        return (image - tf.constant(MEAN_RGB)) / tf.constant(STDDEV_RGB)
    if mode == "scale_-1_1":
        return image / 127.5 - 1.0
    raise ValueError(f"normalization must be none, imagenet_mean_std or scale_-1_1; received {mode!r}")


def preprocess_for_train(
    image: tf.Tensor, size: int, augmentation: str, seed: tf.Tensor, crop_padding: int = 32,
    normalization: str = "none",
) -> tf.Tensor:
    """Training view of one image; ``seed`` is a shape-[2] int tensor unique to the example."""
    image = to_rgb(image)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
    if augmentation == "inception":
        image = inception_crop(image, size, seeds[0])
    else:
        image = center_crop(image, size, crop_padding)
    if augmentation in ("inception", "flip"):
        image = tf.image.stateless_random_flip_left_right(image, seeds[1])
    image.set_shape([size, size, 3])
    return normalize(image, normalization)


def preprocess_for_eval(
    image: tf.Tensor, size: int, crop_padding: int = 32, normalization: str = "none"
) -> tf.Tensor:
    """Evaluation view: center crop (``crop_padding``) and resize."""
    image = center_crop(to_rgb(image), size, crop_padding)
    image.set_shape([size, size, 3])
    return normalize(image, normalization)
