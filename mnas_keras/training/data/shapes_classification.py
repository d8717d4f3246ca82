"""Generated image classification where architectures differ: shapes x textures, offline.

Each image shows one large object (45-85% of the side) of one of five shapes (square,
disc, triangle, cross, ring) filled with one of four textures (solid, stripes, checker,
dots), on a textured, striped background with 0-3 small solid distractor shapes and
Gaussian noise; the class is ``shape_index * 4 + texture_index`` (20 classes). Scale,
position, colours, stripe angle and period vary per image, so a network must separate the
object from the clutter and recognize both its outline and its fill, a harder task than
scikit-learn's 8x8 digits. It needs a longer training than the search's 2-epoch proxy:
after 2-4 epochs of 1,600 images a MobileNetV2-deep network is still near chance
(``benchmarks/RESULTS.md``, issue 21); subsets of shapes and textures give easier tasks.
Everything is deterministic by seed; nothing is downloaded.

The shape outlines come from the detection generator
(:func:`mnas_keras.training.data.detection._draw_shape`) and the background from the
segmentation generator (:func:`mnas_keras.training.data.segmentation_data._texture`).

- :func:`make_shapes_classification`: ``(uint8 [N, S, S, 3], int64 [N])`` arrays.
- :class:`ShapesClassificationSource`: an :class:`~mnas_keras.training.data.sources.ImageSource`
  (``--dataset=shapes_classification``, recipe ``shapes_classification``).
- :func:`load_shapes_classification`: float32 arrays shaped like
  :func:`mnas_keras.datasets.load_digits` for the search's proxy evaluator.

Example:
    >>> images, labels = make_shapes_classification(40, size=32, seed=0)
    >>> images.shape, images.dtype.name, np.bincount(labels).tolist() == [2] * 20
    ((40, 32, 32, 3), 'uint8', True)
    >>> class_name(int(labels[0])), NUM_CLASSES
    ('triangle/dots', 20)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from mnas_keras.training.data.detection import _draw_shape
from mnas_keras.training.data.segmentation_data import _texture
from mnas_keras.training.data.sources import ImageSource, shard_for
from mnas_keras.training.errors import DataError

SHAPES = ("square", "disc", "triangle", "cross", "ring")
TEXTURES = ("solid", "stripes", "checker", "dots")
NUM_CLASSES = len(SHAPES) * len(TEXTURES)
#: Smallest image side: below it stripes and dots (period >= 4 px at 32 px) blur away.
MIN_SIZE = 16
#: The ring's hole: radius as a share of the ring's outer radius.
RING_HOLE = 0.55


def class_name(label: int, shapes: Sequence[str] = SHAPES, textures: Sequence[str] = TEXTURES) -> str:
    """``"<shape>/<texture>"`` of class ``label`` (``shape_index * len(textures) +
    texture_index``; 0-19 with all shapes and textures).

    Raises:
        DataError: ``label`` is not a class id.

    Example:
        >>> class_name(0), class_name(7), class_name(19), class_name(3, textures=("solid", "dots"))
        ('square/solid', 'disc/dots', 'ring/dots', 'disc/dots')
    """
    count = len(shapes) * len(textures)
    if not 0 <= int(label) < count:
        raise DataError(f"shapes_classification label must be in 0..{count - 1}; received {label!r}")
    return f"{shapes[int(label) // len(textures)]}/{textures[int(label) % len(textures)]}"


def shape_mask(shape: str, image_size: int, y0: int, x0: int, side: int) -> np.ndarray:
    """The boolean ``[image_size, image_size]`` mask of ``shape`` in its ``side``-pixel box
    at ``(y0, x0)``: square, disc, triangle (apex up) and cross as the detection generator
    draws them; ring = the disc minus a centred disc of ``RING_HOLE`` times its radius.

    Raises:
        DataError: unknown ``shape``.

    Example:
        >>> int(shape_mask("square", 8, 2, 2, 4).sum()), int(shape_mask("ring", 8, 0, 0, 8)[4, 4])
        (16, 0)
    """
    if shape not in SHAPES:
        raise DataError(f"unknown shape {shape!r}; expected one of {SHAPES}")
    scratch = np.zeros((image_size, image_size, 3), np.float32)
    if shape != "ring":
        return _draw_shape(scratch, shape, y0, x0, side, 0.0)
    outer = _draw_shape(scratch, "disc", y0, x0, side, 0.0)
    v, u = np.mgrid[0:image_size, 0:image_size] + 0.5
    centre = side / 2.0
    hole = (v - y0 - centre) ** 2 + (u - x0 - centre) ** 2 <= (RING_HOLE * side / 2.0) ** 2
    return outer & ~hole


def texture_pattern(texture: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``[size, size]`` float pattern in {0, 1}: which of the object's two colours each
    pixel takes. ``solid`` is all ones; ``stripes`` (period 4-7 px at 32 px, scaled with
    ``size``), ``checker`` (cells 3-5 px) and ``dots`` (spacing 5-7 px, radius 0.3 of it)
    are rotated by a random angle and phase, so about half (dots: ~28%) of the pixels are 1.

    Raises:
        DataError: unknown ``texture``.

    Example:
        >>> texture_pattern("solid", 4, np.random.default_rng(0)).tolist()[0]
        [1.0, 1.0, 1.0, 1.0]
    """
    if texture not in TEXTURES:
        raise DataError(f"unknown texture {texture!r}; expected one of {TEXTURES}")
    if texture == "solid":
        return np.ones((size, size), np.float32)
    scale = size / 32.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    angle = rng.uniform(0, np.pi)
    u = np.cos(angle) * xx + np.sin(angle) * yy + rng.uniform(0, 100)
    v = -np.sin(angle) * xx + np.cos(angle) * yy + rng.uniform(0, 100)
    if texture == "stripes":
        period = rng.uniform(4, 7) * scale
        return (np.mod(u, period) < period / 2).astype(np.float32)
    if texture == "checker":
        cell = rng.uniform(3, 5) * scale
        return (np.mod(np.floor(u / cell) + np.floor(v / cell), 2) == 0).astype(np.float32)
    spacing = rng.uniform(5, 7) * scale
    du = np.mod(u, spacing) - spacing / 2
    dv = np.mod(v, spacing) - spacing / 2
    return (du**2 + dv**2 <= (0.3 * spacing) ** 2).astype(np.float32)


def _colour_far_from(rng, others, distance: float = 90.0) -> np.ndarray:
    for _ in range(100):
        colour = rng.uniform(10, 245, 3)  # never 0 or 255: clipping is the noise's and background's
        if all(np.abs(colour - o).max() >= distance for o in others):
            return colour
    return colour


def _check_subsets(shapes, textures) -> tuple[tuple, tuple]:
    shapes, textures = tuple(shapes), tuple(textures)
    for name, chosen, known in (("shapes", shapes, SHAPES), ("textures", textures, TEXTURES)):
        unknown = [c for c in chosen if c not in known]
        if not chosen or unknown or len(set(chosen)) != len(chosen):
            raise DataError(f"shapes_classification {name} must be distinct names from {known}, at least one; "
                            f"received {list(chosen)}")
    return shapes, textures


def make_shapes_classification(num: int, size: int = 32, seed: int = 0, max_distractors: int = 3,
                               noise: float = 8.0, background: float = 30.0, shapes: Sequence[str] = SHAPES,
                               textures: Sequence[str] = TEXTURES) -> tuple[np.ndarray, np.ndarray]:
    """``num`` generated images and labels: ``(uint8 [num, size, size, 3], int64 [num])``.

    Labels are balanced (``num // 20`` or one more per class) in a seeded order. Per image:
    a background from the segmentation generator's ``_texture`` (colour gradient plus two
    gratings of amplitude ``background``), 0 to ``max_distractors`` solid shapes of side 15-30% of the image, then the
    object: side 45-85% of the image at a random position, two colours at least 90 apart
    (max over channels; channels in 10-245) from each other and from the background mean, one of
    :data:`TEXTURES`; finally Gaussian noise of standard deviation ``noise`` (0-255 scale).
    About 1 ms per 32x32 image on one core.

    Args:
        num: images (>= 1).
        size: square side in pixels (>= 16).
        seed: generator seed; the same arguments always give the same arrays.
        max_distractors: most distractor shapes per image (>= 0).
        noise: pixel noise standard deviation (>= 0).
        background: amplitude of the background's gratings (0-255 scale; 0 = a plain gradient).
        shapes, textures: subsets of :data:`SHAPES` and :data:`TEXTURES`; labels are
            ``shape_index * len(textures) + texture_index`` within them.

    Raises:
        DataError: a bad argument (the message names it).
    """
    if not isinstance(num, (int, np.integer)) or num < 1:
        raise DataError(f"shapes_classification needs num >= 1 images; received {num!r}")
    if not isinstance(size, (int, np.integer)) or size < MIN_SIZE:
        raise DataError(f"shapes_classification image size must be an integer >= {MIN_SIZE} pixels; received {size!r}")
    if max_distractors < 0 or noise < 0:
        raise DataError(f"max_distractors and noise must be >= 0; received {max_distractors!r}, {noise!r}")
    shapes, textures = _check_subsets(shapes, textures)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(num) % (len(shapes) * len(textures))).astype(np.int64)
    images = np.empty((num, size, size, 3), np.uint8)
    for i, label in enumerate(labels):
        shape, texture = shapes[label // len(textures)], textures[label % len(textures)]
        image = _texture(rng, size, strength=background)
        background = image.mean(axis=(0, 1))
        for _ in range(rng.integers(0, max_distractors + 1)):
            side = max(3, int(rng.uniform(0.15, 0.3) * size))
            y0, x0 = rng.integers(0, size - side + 1, 2)
            mask = shape_mask(SHAPES[rng.integers(0, len(SHAPES))], size, y0, x0, side)
            image[mask] = _colour_far_from(rng, [background], 60.0)
        side = int(rng.uniform(0.45, 0.85) * size)
        y0, x0 = rng.integers(0, size - side + 1, 2)
        mask = shape_mask(shape, size, y0, x0, side)
        if shape == "triangle" and rng.random() < 0.5:  # apex up or down
            mask[y0:y0 + side, x0:x0 + side] = mask[y0:y0 + side, x0:x0 + side][::-1].copy()
        first = _colour_far_from(rng, [background])
        second = _colour_far_from(rng, [background, first])
        pattern = texture_pattern(texture, size, rng)[..., None]
        fill = pattern * first + (1.0 - pattern) * second
        image[mask] = fill[mask]
        if noise:
            image += rng.normal(0, noise, image.shape)
        images[i] = np.clip(np.round(image), 0, 255).astype(np.uint8)
    return images, labels


class ShapesClassificationSource(ImageSource):
    """Generated shapes x textures (:func:`make_shapes_classification`), 20 classes,
    splits ``train`` and ``test`` (seeds ``2 * seed + 1`` and ``2 * seed + 2``: disjoint).

    Args:
        size: image side in pixels (>= 16; 32 or 64 are typical).
        num_train, num_test: images per split, generated on first use and kept in memory.
        seed: the dataset seed.
        shapes, textures: subsets of :data:`SHAPES` and :data:`TEXTURES` (fewer classes:
            an easier task); ``num_classes`` is the product of their lengths.

    Raises:
        DataError: bad size, counts or subsets, or an unknown split.
    """

    name = "shapes_classification"

    def __init__(self, size: int = 32, num_train: int = 4000, num_test: int = 1000, seed: int = 0,
                 shapes: Sequence[str] = SHAPES, textures: Sequence[str] = TEXTURES):
        self.shapes, self.textures = _check_subsets(shapes, textures)
        self.num_classes = len(self.shapes) * len(self.textures)
        self.class_names = tuple(class_name(k, self.shapes, self.textures) for k in range(self.num_classes))
        if not isinstance(size, (int, np.integer)) or size < MIN_SIZE:
            raise DataError(f"shapes_classification image size must be an integer >= {MIN_SIZE} pixels; "
                            f"received {size!r}")
        for key, value in (("num_train", num_train), ("num_test", num_test)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise DataError(f"shapes_classification {key} must be a positive integer; received {value!r}")
        self.size = int(size)
        self.seed = int(seed)
        self._sizes = {"train": int(num_train), "test": int(num_test)}
        self._arrays: dict = {}

    def splits(self) -> tuple:
        return ("train", "test")

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``(images uint8 [N, S, S, 3], labels int64 [N])`` of ``split``."""
        self._check_split(split)
        if split not in self._arrays:
            offset = 1 if split == "train" else 2
            self._arrays[split] = make_shapes_classification(self._sizes[split], self.size, 2 * self.seed + offset,
                                                             shapes=self.shapes, textures=self.textures)
        return self._arrays[split]

    def num_examples(self, split: str) -> int:
        self._check_split(split)
        return self._sizes[split]

    def dataset(self, split, *, shuffle_files=False, seed=0, input_context=None):
        images, labels = self.arrays(split)
        ds = tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})
        return shard_for(ds, input_context)


def load_shapes_classification(size: int = 32, num_train: int = 4000, num_test: int = 1000, seed: int = 0,
                               shapes: Sequence[str] = SHAPES, textures: Sequence[str] = TEXTURES):
    """The source's splits as float32 arrays: ``(x_train, y_train), (x_test, y_test)``,
    images ``[N, size, size, 3]`` in [0, 255], labels int32, as
    :func:`mnas_keras.datasets.load_digits` returns them (the search's ``data`` format).

    Example:
        >>> (x, y), (xt, yt) = load_shapes_classification(size=16, num_train=20, num_test=20)
        >>> x.shape, x.dtype.name, y.dtype.name, sorted(set(yt.tolist())) == list(range(20))
        ((20, 16, 16, 3), 'float32', 'int32', True)
    """
    source = ShapesClassificationSource(size, num_train, num_test, seed, shapes=shapes, textures=textures)
    out = []
    for split in ("train", "test"):
        images, labels = source.arrays(split)
        out.append((images.astype(np.float32), labels.astype(np.int32)))
    return tuple(out)
