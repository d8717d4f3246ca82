"""Semantic segmentation data: sources of (image, mask) pairs and their tf.data pipelines.

Every source yields dicts ``{"image": uint8 [H, W, 3], "mask": uint8 [H, W]}`` whose mask
values are class ids ``0 .. num_classes - 1`` or the ignore label (255):

- :class:`ShapesSource`: generated offline, deterministic by seed: discs, squares and
  triangles (classes 1-3, background 0) of random colours and stripes on textured, noisy
  backgrounds; a one-pixel ring around every shape is 255 (ignored), as in Pascal VOC.
- :class:`MaskFolderSource`: ``root/<split>/images/<name>.png|jpg`` with
  ``root/<split>/masks/<name>.png`` (checked when first read: pairs, sizes, values).
- :class:`TFDSSegmentationSource`: tensorflow-datasets ``oxford_iiit_pet`` (trimap
  1/2/3 -> pet 0 / background 1 / border 2) and ``cityscapes`` (manual download; the 34 raw
  ids -> the 19 train ids of the Cityscapes scripts' ``labels.py``, the rest 255).

:func:`segmentation_train_dataset` crops with joint augmentation (random scale, pad with
ignore, crop, flip; bilinear for images, nearest neighbour for masks), seeded per example by
``(seed, epoch, position)`` so that a resumed run sees the same batches.
:func:`segmentation_eval_dataset` keeps full resolution (``eval_size=0``) and pads batches
with ignore pixels and zero-weight examples.

Example:
    >>> src = ShapesSource(size=32, num_train=8, num_test=4, seed=0)
    >>> ex = next(iter(src.dataset("train")))
    >>> ex["image"].shape, ex["mask"].dtype.name, src.num_classes
    (TensorShape([32, 32, 3]), 'uint8', 4)
    >>> images, masks = next(iter(segmentation_train_dataset(src, "train", batch_size=4,
    ...                                                        crop_size=24, seed=0, epoch=0)))
    >>> images.shape, masks.shape, masks.dtype.name
    (TensorShape([4, 24, 24, 3]), TensorShape([4, 24, 24]), 'int32')
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from mnas_keras.training.data.sources import TFDSSource, shard_for
from mnas_keras.training.errors import DataError, DatasetNotPreparedError

IGNORE_LABEL = 255
_EPOCH_STRIDE = 1_000_003
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")

# Cityscapes raw id -> train id (cityscapesScripts labels.py); every other id -> 255.
CITYSCAPES_TRAIN_IDS = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11,
    25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}
CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic_light", "traffic_sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
)


def cityscapes_lookup() -> np.ndarray:
    """A 256-entry table mapping raw Cityscapes ids to train ids (255 = ignore).

    Example:
        >>> t = cityscapes_lookup()
        >>> int(t[7]), int(t[26]), int(t[33]), int(t[0]), int(t[255])
        (0, 13, 18, 255, 255)
    """
    table = np.full(256, IGNORE_LABEL, np.uint8)
    for raw, train in CITYSCAPES_TRAIN_IDS.items():
        table[raw] = train
    return table


class SegmentationSource:
    """Interface of a segmentation source (see the module docstring)."""

    name = "segmentation"
    num_classes: int
    class_names: tuple = ()
    ignore_label = IGNORE_LABEL

    def splits(self) -> tuple:
        raise NotImplementedError

    def num_examples(self, split: str) -> int | None:
        raise NotImplementedError

    def dataset(self, split, *, shuffle_files=False, seed=0, input_context=None) -> tf.data.Dataset:
        raise NotImplementedError

    def _check_split(self, split: str) -> None:
        if split not in self.splits():
            raise DataError(f"{self.name} has no split {split!r}; expected one of {self.splits()}")


# --------------------------------------------------------------------------------------
# generated shapes


def _texture(rng, size: int, channels: int = 3, strength: float = 45.0) -> np.ndarray:
    """A random colour gradient plus two coloured sinusoidal gratings, float [S, S, 3]."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    out = rng.uniform(40, 215, (1, 1, channels)) + (yy[..., None] - 0.5) * rng.uniform(-80, 80, (1, 1, channels))
    for _ in range(2):
        angle, freq = rng.uniform(0, np.pi), rng.uniform(2, 10)
        wave = np.sin(2 * np.pi * freq * (np.cos(angle) * xx + np.sin(angle) * yy) + rng.uniform(0, 6.3))
        out = out + wave[..., None] * rng.uniform(-strength, strength, (1, 1, channels))
    return out


def _shape_mask(kind: int, size: int, rng) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    radius = rng.uniform(size / 7, size / 3.5)
    cy, cx = rng.uniform(radius, size - radius, 2)
    if kind == 1:  # disc
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
    if kind == 2:  # square (rotated)
        a = rng.uniform(0, np.pi / 2)
        u = (xx - cx) * np.cos(a) + (yy - cy) * np.sin(a)
        v = -(xx - cx) * np.sin(a) + (yy - cy) * np.cos(a)
        half = radius * 0.85
        return (np.abs(u) <= half) & (np.abs(v) <= half)
    # triangle (rotated, equilateral): inside three half-planes
    a = rng.uniform(0, 2 * np.pi)
    inside = np.ones((size, size), bool)
    for k in range(3):
        t = a + k * 2 * np.pi / 3
        inside &= (xx - cx) * np.cos(t) + (yy - cy) * np.sin(t) <= radius * 0.5
    return inside


def make_shapes(num: int, size: int = 64, seed: int = 0, max_shapes: int = 3):
    """``num`` generated images and masks: ``(uint8 [N, S, S, 3], uint8 [N, S, S])``.

    Each image has 1 to ``max_shapes`` shapes (class 1 disc, 2 square, 3 triangle) with
    random stripes and colours, on a textured background (class 0), plus Gaussian noise
    (sigma 12). A one-pixel ring where classes meet is 255 (ignored). Deterministic by seed.

    Example:
        >>> images, masks = make_shapes(2, size=16, seed=0)
        >>> images.shape, masks.shape, sorted(set(np.unique(masks)) - {0, 1, 2, 3, 255})
        ((2, 16, 16, 3), (2, 16, 16), [])
    """
    rng = np.random.default_rng(seed)
    images = np.empty((num, size, size, 3), np.uint8)
    masks = np.empty((num, size, size), np.uint8)
    for i in range(num):
        image = _texture(rng, size)
        label = np.zeros((size, size), np.uint8)
        for _ in range(rng.integers(1, max_shapes + 1)):
            kind = int(rng.integers(1, 4))
            inside = _shape_mask(kind, size, rng)
            image[inside] = _texture(rng, size, strength=0.0)[inside]
            label[inside] = kind
        image += rng.normal(0, 12, image.shape)
        edge = np.zeros_like(label, bool)
        edge[1:] |= label[1:] != label[:-1]
        edge[:-1] |= label[1:] != label[:-1]
        edge[:, 1:] |= label[:, 1:] != label[:, :-1]
        edge[:, :-1] |= label[:, 1:] != label[:, :-1]
        label[edge] = IGNORE_LABEL
        images[i] = np.clip(image, 0, 255).astype(np.uint8)
        masks[i] = label
    return images, masks


class ShapesSource(SegmentationSource):
    """Generated shapes (see :func:`make_shapes`): 4 classes, splits ``train`` and ``test``.

    Args:
        size: image side in pixels.
        num_train, num_test: examples per split (generated in memory, ~1 ms each at 64 px).
        seed: the train split uses ``seed``, the test split ``seed + 1``.
    """

    name = "shapes"
    num_classes = 4
    class_names = ("background", "disc", "square", "triangle")

    def __init__(self, size: int = 64, num_train: int = 1000, num_test: int = 200, seed: int = 0):
        if size < 8:
            raise DataError(f"shapes size must be >= 8 pixels; received {size!r}")
        self.size = int(size)
        self._sizes = {"train": int(num_train), "test": int(num_test)}
        self._seeds = {"train": int(seed), "test": int(seed) + 1}
        self._arrays: dict = {}

    def splits(self) -> tuple:
        return ("train", "test")

    def arrays(self, split: str):
        self._check_split(split)
        if split not in self._arrays:
            self._arrays[split] = make_shapes(self._sizes[split], self.size, self._seeds[split])
        return self._arrays[split]

    def num_examples(self, split: str) -> int:
        self._check_split(split)
        return self._sizes[split]

    def dataset(self, split, *, shuffle_files=False, seed=0, input_context=None):
        images, masks = self.arrays(split)
        ds = tf.data.Dataset.from_tensor_slices({"image": images, "mask": masks})
        return shard_for(ds, input_context)


# --------------------------------------------------------------------------------------
# image/mask folders


class MaskFolderSource(SegmentationSource):
    """Image/mask PNG pairs: ``root/<split>/images/<name>.<ext>``, ``root/<split>/masks/<name>.png``.

    Masks are single-channel PNGs of class ids (255 = ignore). A split is checked when first
    used: every image has a mask of the same size, and every mask value is a class id below
    ``num_classes`` or 255; the error names the file, the value and what was expected.

    Args:
        root: the folder holding one sub-folder per split.
        num_classes: the class count (``None``: the largest id in the train masks + 1).
    """

    name = "folder"

    def __init__(self, root: str, num_classes: int | None = None, class_split: str = "train"):
        if not root or not os.path.isdir(root):
            raise DataError(f"segmentation folder {root!r} does not exist; expected "
                            "<root>/<split>/images and <root>/<split>/masks")
        self.root = root
        self._pairs: dict = {}
        self._checked: set = set()
        if num_classes is None:
            ids = set()
            for _, mask_path in self.pairs(class_split):
                ids |= set(np.unique(_read_png(mask_path)).tolist())
            ids.discard(IGNORE_LABEL)
            num_classes = max(ids) + 1 if ids else 1
        self.num_classes = int(num_classes)

    def splits(self) -> tuple:
        return tuple(sorted(d for d in os.listdir(self.root) if os.path.isdir(os.path.join(self.root, d, "images"))))

    def pairs(self, split: str) -> list[tuple[str, str]]:
        if split in self._pairs:
            return self._pairs[split]
        image_dir = os.path.join(self.root, split, "images")
        mask_dir = os.path.join(self.root, split, "masks")
        if not os.path.isdir(image_dir) or not os.path.isdir(mask_dir):
            raise DataError(f"segmentation folder split {split!r} needs {image_dir!r} and {mask_dir!r}")
        pairs = []
        for name in sorted(os.listdir(image_dir)):
            stem, ext = os.path.splitext(name)
            if ext.lower() not in IMAGE_EXTENSIONS:
                continue
            mask = os.path.join(mask_dir, stem + ".png")
            if not os.path.isfile(mask):
                raise DataError(f"image {os.path.join(image_dir, name)!r} has no mask; expected {mask!r}")
            pairs.append((os.path.join(image_dir, name), mask))
        if not pairs:
            raise DataError(f"segmentation folder {image_dir!r} has no images ({', '.join(IMAGE_EXTENSIONS)})")
        self._pairs[split] = pairs
        return pairs

    def check(self, split: str) -> None:
        """Reads every pair of ``split`` once and raises a ``DataError`` on the first bad one."""
        if split in self._checked:
            return
        for image_path, mask_path in self.pairs(split):
            image_size = _image_size(image_path)
            mask = _read_png(mask_path)
            if mask.shape[::-1] != image_size:
                raise DataError(
                    f"mask {mask_path!r} is {mask.shape[1]}x{mask.shape[0]} but image {image_path!r} "
                    f"is {image_size[0]}x{image_size[1]}; expected the same size"
                )
            values = np.unique(mask)
            bad = [int(v) for v in values if v >= self.num_classes and v != IGNORE_LABEL]
            if bad:
                raise DataError(
                    f"mask {mask_path!r} has value {bad[0]}, which is neither a class id in "
                    f"[0, {self.num_classes - 1}] nor the ignore label {IGNORE_LABEL}"
                )
        self._checked.add(split)

    def num_examples(self, split: str) -> int:
        return len(self.pairs(split))

    def dataset(self, split, *, shuffle_files=False, seed=0, input_context=None):
        self.check(split)
        images, masks = zip(*self.pairs(split))
        ds = shard_for(tf.data.Dataset.from_tensor_slices((list(images), list(masks))), input_context)

        def load(image_path, mask_path):
            image = tf.io.decode_image(tf.io.read_file(image_path), channels=3, expand_animations=False)
            mask = tf.io.decode_png(tf.io.read_file(mask_path), channels=1)[..., 0]
            return {"image": image, "mask": mask}

        return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)


def _image_size(path: str) -> tuple[int, int]:
    """``(width, height)`` of an image file."""
    try:
        shape = tf.io.decode_image(tf.io.read_file(path), expand_animations=False).shape
    except (tf.errors.OpError, ValueError) as err:
        raise DataError(f"image {path!r} cannot be read: {str(err).splitlines()[0]}") from None
    return int(shape[1]), int(shape[0])


def _read_png(path: str) -> np.ndarray:
    """A single-channel PNG mask as ``uint8 [H, W]``."""
    try:
        mask = tf.io.decode_png(tf.io.read_file(path)).numpy()
    except (tf.errors.OpError, ValueError) as err:
        raise DataError(f"mask {path!r} cannot be read as a PNG: {str(err).splitlines()[0]}") from None
    if mask.shape[-1] != 1:
        raise DataError(f"mask {path!r} has {mask.shape[-1]} channels; expected a single-channel PNG of class ids")
    return mask[..., 0]


# --------------------------------------------------------------------------------------
# tensorflow-datasets


_TFDS = {
    # name -> (builder name, image key, mask key, num_classes, class names)
    "oxford_iiit_pet": ("oxford_iiit_pet", "image", "segmentation_mask", 3, ("pet", "background", "border")),
    "cityscapes": ("cityscapes/semantic_segmentation", "image_left", "segmentation_label", 19, CITYSCAPES_CLASSES),
}


class TFDSSegmentationSource(TFDSSource, SegmentationSource):
    """``oxford_iiit_pet`` or ``cityscapes`` from tensorflow-datasets (prepared in ``data_dir``).

    Cityscapes needs a manual download (``leftImg8bit_trainvaltest.zip`` and
    ``gtFine_trainvaltest.zip`` in ``manual_dir``); without it the error says what to do.

    Raises:
        DatasetNotPreparedError: not prepared, and no download/manual folder to prepare from.
        DataError: unknown name.
    """

    def __init__(self, name: str, data_dir=None, manual_dir=None, download=False):
        if name not in _TFDS:
            raise DataError(f"unknown segmentation dataset {name!r}; expected one of "
                            f"{sorted(_TFDS) + ['shapes', 'folder']}")
        try:
            import tensorflow_datasets as tfds
        except ImportError:
            raise DataError(f"dataset {name!r} needs tensorflow-datasets") from None
        builder_name, self.image_key, self.mask_key, self.num_classes, self.class_names = _TFDS[name]
        self._tfds = tfds
        self.name = name
        self.builder = tfds.builder(builder_name, data_dir=data_dir)
        if not self.builder.is_prepared():
            self._prepare(data_dir, manual_dir, download)

    def dataset(self, split, *, shuffle_files=False, seed=0, input_context=None):
        self.num_examples(split)
        read_config = self._tfds.ReadConfig(
            shuffle_seed=seed, input_context=input_context, try_autocache=False,
            shuffle_reshuffle_each_iteration=False,
        )
        ds = self.builder.as_dataset(split=split, shuffle_files=shuffle_files, read_config=read_config)
        image_key, mask_key, name = self.image_key, self.mask_key, self.name
        table = tf.constant(cityscapes_lookup()) if name == "cityscapes" else None

        def convert(ex):
            mask = tf.cast(ex[mask_key][..., 0], tf.int32)
            if name == "cityscapes":
                mask = tf.gather(table, tf.clip_by_value(mask, 0, 255))
            else:  # trimap 1 pet, 2 background, 3 border -> 0, 1, 2
                mask = tf.cast(mask - 1, tf.uint8)
            return {"image": ex[image_key], "mask": tf.cast(mask, tf.uint8)}

        return ds.map(convert, num_parallel_calls=tf.data.AUTOTUNE)


def load_segmentation_source(config, num_classes: int | None = None) -> SegmentationSource:
    """The source ``config.name`` (a ``DataConfig``) names: ``shapes``, ``folder`` or a tfds name.

    ``shapes`` reads its size from ``config.image_size`` only when that is at least 64
    (smaller crops are cut from 64-pixel images).
    """
    if config.name == "shapes":
        return ShapesSource(size=max(64, int(config.image_size)))
    if config.name == "folder":
        return MaskFolderSource(config.data_dir or "", num_classes=num_classes, class_split=config.train_split)
    if config.name in _TFDS:
        return TFDSSegmentationSource(config.name, config.data_dir, config.manual_dir, config.download)
    raise DataError(
        f"unknown segmentation dataset {config.name!r}; expected one of "
        f"{['shapes', 'folder'] + sorted(_TFDS)}"
    )


# --------------------------------------------------------------------------------------
# pipelines


def _check_mask(mask, num_classes: int, image=None):
    """In-graph checks: every mask value is a class id or the ignore label, and the mask
    has the image's height and width."""
    mask = tf.cast(mask, tf.int32)
    if image is not None:
        tf.debugging.assert_equal(
            tf.shape(mask)[:2], tf.shape(image)[:2],
            message="mask size (x) differs from its image size (y); expected the same",
        )
    ok = tf.reduce_all((mask < num_classes) | (mask == IGNORE_LABEL))
    bad = tf.reduce_max(tf.where((mask < num_classes) | (mask == IGNORE_LABEL), 0, mask))
    tf.debugging.Assert(
        ok, ["mask value", bad, f"is neither a class id in [0, {num_classes - 1}] nor the ignore label 255"],
        summarize=1,
    )
    return mask


def augment(image, mask, seed, *, crop_size: int, min_scale: float = 0.5, max_scale: float = 2.0,
            flip: bool = True):
    """Joint random scale, ignore-padding, crop and flip of one image and its mask.

    Args:
        image: ``[H, W, 3]`` any dtype (returned float32, 0-255).
        mask: ``[H, W]`` integer class ids (returned int32; padding is 255).
        seed: ``int64 [2]`` stateless seed.
        crop_size: the output side.
        min_scale, max_scale: uniform random rescaling range (1, 1 for none).
        flip: random left-right flip.

    Example:
        >>> img = tf.zeros([10, 20, 3]); m = tf.ones([10, 20], tf.int32)
        >>> x, y = augment(img, m, tf.constant([0, 1], tf.int64), crop_size=16, min_scale=1.0,
        ...                max_scale=1.0)
        >>> x.shape, int(tf.reduce_sum(tf.cast(y == 255, tf.int32))) // 16  # 6 padded rows
        (TensorShape([16, 16, 3]), 6)
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4)
    image = tf.cast(image, tf.float32)
    mask = tf.cast(mask, tf.int32)[..., None]
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    if min_scale != 1.0 or max_scale != 1.0:
        scale = tf.random.stateless_uniform([], seeds[0], min_scale, max_scale)
        size = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), 1)
        image = tf.image.resize(image, size, method="bilinear")
        mask = tf.image.resize(mask, size, method="nearest")
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    pad_h, pad_w = tf.maximum(crop_size - height, 0), tf.maximum(crop_size - width, 0)
    paddings = [[0, pad_h], [0, pad_w], [0, 0]]
    image = tf.pad(image, paddings)
    mask = tf.pad(mask, paddings, constant_values=IGNORE_LABEL)
    height, width = height + pad_h, width + pad_w
    top = tf.random.stateless_uniform([], seeds[1], 0, height - crop_size + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([], seeds[2], 0, width - crop_size + 1, dtype=tf.int32)
    image = image[top:top + crop_size, left:left + crop_size]
    mask = mask[top:top + crop_size, left:left + crop_size]
    if flip:
        do = tf.random.stateless_uniform([], seeds[3]) < 0.5
        image = tf.cond(do, lambda: tf.reverse(image, [1]), lambda: image)
        mask = tf.cond(do, lambda: tf.reverse(mask, [1]), lambda: mask)
    return tf.ensure_shape(image, [crop_size, crop_size, 3]), tf.ensure_shape(mask[..., 0], [crop_size, crop_size])


def segmentation_train_dataset(
    source, split, *, batch_size: int, crop_size: int, min_scale: float = 0.5,
    max_scale: float = 2.0, flip: bool = True, seed: int = 0, epoch: int = 0,
    skip_examples: int = 0, shuffle_buffer: int = 1000, input_context=None, base=None,
) -> tf.data.Dataset:
    """One epoch of ``(images float32 [B, C, C, 3], masks int32 [B, C, C])``, full batches.

    Shuffle and augmentation are seeded by ``(seed, epoch, position)``; ``skip_examples``
    skips what a resumed run already trained on (as the classification pipeline does).
    """
    epoch_seed = int(seed) * _EPOCH_STRIDE + int(epoch)
    ds = base if base is not None else source.dataset(
        split, shuffle_files=True, seed=epoch_seed % (2**31), input_context=input_context
    )
    ds = ds.shuffle(shuffle_buffer, seed=epoch_seed % (2**31), reshuffle_each_iteration=False).enumerate()
    if skip_examples:
        ds = ds.skip(skip_examples)
    num_classes = source.num_classes

    def prepare(index, example):
        mask = _check_mask(example["mask"], num_classes, example["image"])
        example_seed = tf.stack([tf.constant(epoch_seed, tf.int64), index])
        return augment(example["image"], mask, example_seed, crop_size=crop_size,
                       min_scale=min_scale, max_scale=max_scale, flip=flip)

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    options = tf.data.Options()
    options.deterministic = True
    return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE).with_options(options)


def resize_for_eval(image, mask, eval_size: int):
    """Longer side to ``eval_size`` (image bilinear, mask nearest), then pad to a square
    (image 0, mask 255). ``eval_size=0`` keeps the full resolution."""
    image = tf.cast(image, tf.float32)
    mask = tf.cast(mask, tf.int32)
    if not eval_size:
        return image, mask
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    size = tf.maximum(tf.cast(tf.round(shape * eval_size / tf.reduce_max(shape)), tf.int32), 1)
    image = tf.image.resize(image, size, method="bilinear")
    mask = tf.image.resize(mask[..., None], size, method="nearest")[..., 0]
    pad = [[0, eval_size - size[0]], [0, eval_size - size[1]]]
    image = tf.pad(image, pad + [[0, 0]])
    mask = tf.pad(mask, pad, constant_values=IGNORE_LABEL)
    return tf.ensure_shape(image, [eval_size, eval_size, 3]), tf.ensure_shape(mask, [eval_size, eval_size])


def segmentation_eval_dataset(
    source, split, *, batch_size: int, eval_size: int = 0, replicas: int = 1,
    steps: int | None = None, input_context=None, base=None,
) -> tf.data.Dataset:
    """``(images, masks, weights)`` batches of exactly ``batch_size`` examples.

    Images of different sizes in one batch are padded to the largest (mask 255); the last
    batch is filled with zero-weight, all-ignore examples, and all-padding batches are added
    so that every replica gets one at every step (``steps``: exactly that many per replica).
    """
    ds = base if base is not None else source.dataset(split, input_context=input_context)
    num_classes = source.num_classes

    def prepare(example):
        image, mask = resize_for_eval(
            example["image"], _check_mask(example["mask"], num_classes, example["image"]), eval_size
        )
        return image, mask, tf.constant(1.0, tf.float32)

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.padded_batch(batch_size, padding_values=(0.0, IGNORE_LABEL, 0.0))

    def pad(images, masks, weights):
        missing = batch_size - tf.shape(weights)[0]
        images = tf.pad(images, [[0, missing], [0, 0], [0, 0], [0, 0]])
        masks = tf.pad(masks, [[0, missing], [0, 0], [0, 0]], constant_values=IGNORE_LABEL)
        return images, masks, tf.pad(weights, [[0, missing]])

    ds = ds.map(pad)
    empty = ds.take(1).map(lambda i, m, w: (tf.zeros_like(i), tf.fill(tf.shape(m), IGNORE_LABEL), tf.zeros_like(w)))
    if steps is not None:
        ds = ds.concatenate(empty.repeat()).take(steps * replicas)
    elif replicas > 1:
        ds = ds.concatenate(empty.repeat(replicas - 1))
        ds = ds.padded_batch(replicas, padding_values=(0.0, IGNORE_LABEL, 0.0), drop_remainder=True).unbatch()
    options = tf.data.Options()
    options.deterministic = True
    return ds.prefetch(tf.data.AUTOTUNE).with_options(options)
