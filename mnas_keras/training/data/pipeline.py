"""Batched, deterministic, resumable tf.data pipelines for image classification.

Training builds one dataset per epoch: the epoch's shuffle and every example's augmentation
are seeded by ``(seed, epoch, position)``, so resuming at step ``k`` of an epoch only needs
to skip ``k`` batches' worth of (undecoded) examples and sees exactly what an uninterrupted
run would. Evaluation pads the last batch with zero-weight examples and adds empty batches
so that every replica gets a batch at every step and each example counts once.

Example:
    >>> from mnas_keras.training.data.sources import DigitsSource
    >>> src = DigitsSource()
    >>> ds = train_dataset(src, "train", batch_size=8, image_size=32, augmentation="none",
    ...                    seed=0, epoch=0)
    >>> images, labels = next(iter(ds))
    >>> images.shape, labels.dtype.name
    (TensorShape([8, 32, 32, 3]), 'int32')
    >>> ev = eval_dataset(src, "test", batch_size=64, image_size=32, crop_padding=0)
    >>> sum(float(tf.reduce_sum(w)) for _, _, w in ev), len(list(ev))
    (360.0, 6)
"""

from __future__ import annotations

import tensorflow as tf

from mnas_keras.training.data.preprocessing import preprocess_for_eval, preprocess_for_train

_EPOCH_STRIDE = 1_000_003


def _options(deterministic: bool = True) -> tf.data.Options:
    options = tf.data.Options()
    options.deterministic = deterministic
    return options


def train_dataset(
    source,
    split: str,
    *,
    batch_size: int,
    image_size: int,
    augmentation: str = "inception",
    crop_padding: int = 32,
    normalization: str = "none",
    seed: int = 0,
    epoch: int = 0,
    skip_examples: int = 0,
    shuffle_buffer: int = 10_000,
    input_context=None,
    base: tf.data.Dataset | None = None,
) -> tf.data.Dataset:
    """One epoch of ``(images float32 [B, S, S, 3], labels int32 [B])``, full batches only.

    Args:
        source: an :class:`~mnas_keras.training.data.sources.ImageSource`.
        split: the split to read.
        batch_size: examples per batch (per replica under a strategy).
        image_size, augmentation, crop_padding, normalization: see ``DataConfig``.
        seed, epoch: determine the shuffle order and every augmentation.
        skip_examples: examples of this epoch (this pipeline's share) already consumed.
        shuffle_buffer: shuffle buffer size.
        input_context: a ``tf.distribute.InputContext`` (sharding).
        base: an already read (e.g. cached) version of ``source.dataset(split)``.
    """
    epoch_seed = int(seed) * _EPOCH_STRIDE + int(epoch)
    ds = base if base is not None else source.dataset(
        split, shuffle_files=True, seed=epoch_seed % (2**31), input_context=input_context
    )
    ds = ds.shuffle(shuffle_buffer, seed=epoch_seed % (2**31), reshuffle_each_iteration=False)
    ds = ds.enumerate()
    if skip_examples:
        ds = ds.skip(skip_examples)

    def prepare(index, example):
        example_seed = tf.stack([tf.constant(epoch_seed, tf.int64), index])
        image = preprocess_for_train(
            example["image"], image_size, augmentation, example_seed, crop_padding, normalization
        )
        return image, tf.cast(example["label"], tf.int32)

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=True)
    return ds.prefetch(tf.data.AUTOTUNE).with_options(_options())


def eval_dataset(
    source,
    split: str,
    *,
    batch_size: int,
    image_size: int,
    crop_padding: int = 32,
    normalization: str = "none",
    replicas: int = 1,
    steps: int | None = None,
    input_context=None,
    base: tf.data.Dataset | None = None,
) -> tf.data.Dataset:
    """``(images, labels, weights)`` batches of exactly ``batch_size``; padding has weight 0.

    Args:
        replicas: replicas fed by this pipeline; the batch count is rounded up to a
            multiple of it with all-padding batches.
        steps: when given, exactly ``steps * replicas`` batches (cut or padded), as
            multi-worker evaluation needs the same step count on every worker.
    """
    ds = base if base is not None else source.dataset(split, input_context=input_context)

    def prepare(example):
        image = preprocess_for_eval(example["image"], image_size, crop_padding, normalization)
        return image, tf.cast(example["label"], tf.int32), tf.constant(1.0, tf.float32)

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size)

    def pad(images, labels, weights):
        missing = batch_size - tf.shape(labels)[0]
        images = tf.pad(images, [[0, missing], [0, 0], [0, 0], [0, 0]])
        images = tf.ensure_shape(images, [batch_size, image_size, image_size, 3])
        labels = tf.ensure_shape(tf.pad(labels, [[0, missing]]), [batch_size])
        return images, labels, tf.ensure_shape(tf.pad(weights, [[0, missing]]), [batch_size])

    ds = ds.map(pad)
    empty = tf.data.Dataset.from_tensors(
        (
            tf.zeros([batch_size, image_size, image_size, 3], tf.float32),
            tf.zeros([batch_size], tf.int32),
            tf.zeros([batch_size], tf.float32),
        )
    )
    if steps is not None:
        ds = ds.concatenate(empty.repeat()).take(steps * replicas)
    elif replicas > 1:
        ds = ds.concatenate(empty.repeat(replicas - 1))
        ds = ds.batch(replicas, drop_remainder=True).unbatch()
    return ds.prefetch(tf.data.AUTOTUNE).with_options(_options())
