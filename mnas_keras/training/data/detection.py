"""Detection data: sources of images with boxes, box-aware augmentation, batched pipelines.

Every source yields dicts ``{"image": uint8 [H, W, 3], "boxes": float32 [G, 4],
"classes": int32 [G], "iscrowd": int32 [G], "image_id": int64}``: boxes normalized
``(ymin, xmin, ymax, xmax)``, classes ``1..num_classes`` (0 is the background), ``iscrowd``
1 for COCO crowd regions, ``G`` may be 0 (a source without ``iscrowd`` has no crowds). A source also knows its
``category_ids`` (class ``k`` is category ``category_ids[k - 1]`` in COCO output).

- :class:`ShapesDetectionSource`: generated offline (squares, discs, triangles, crosses of
  several sizes on textured backgrounds, 1-4 per image), deterministic by seed.
- :class:`CocoFolderSource`: a COCO-format folder (``annotations/instances_<split>.json`` and
  the images under ``<split>/``), what labelling tools export.
- :class:`TFDSDetectionSource`: tensorflow-datasets ``coco/2017`` and ``voc`` (VOC 2007 +
  2012 trainval for training, VOC 2007 test for evaluation).

Bad input (COCO folder): a box reaching outside its image is clipped to it; a box of zero
width or height (after clipping) is dropped; both with one warning naming the file and the
annotation ids. Crowd annotations (``iscrowd=1``, COCO folder and tfds ``coco/2017``) are
not trained on (``detection_train_dataset`` drops them before augmentation) but reach the
evaluation as crowds (``detection_eval_dataset`` keeps them with ``iscrowd``): pycocotools
ignores detections matched to a crowd instead of counting them as false positives. An unknown category
id, an annotation of an unknown image, a missing image file or an image whose size differs
from the JSON's raise :class:`~mnas_keras.training.errors.DataError` naming the file (and
annotation). Images without boxes are kept: all their anchors are background.

Example:
    >>> src = ShapesDetectionSource(num_train=4, num_eval=2, image_size=64, seed=0)
    >>> ex = next(iter(src.dataset("train")))
    >>> ex["image"].shape, ex["boxes"].shape[1], src.num_classes
    (TensorShape([64, 64, 3]), 4, 4)
"""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import tensorflow as tf

from mnas_keras.training.data.sources import shard_for
from mnas_keras.training.errors import DataError, DatasetNotPreparedError

# The 80 COCO category ids of the 2017 detection annotations, in order (tfds label k is id
# COCO_CATEGORY_IDS[k]); ids 12, 26, 29, 30, 45, 66, 68, 69, 71, 83 are unused.
COCO_CATEGORY_IDS = tuple(
    i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)
)
SHAPES = ("square", "disc", "triangle", "cross")
_EPOCH_STRIDE = 1_000_003


# ------------------------------------------------------------------------------------------
# sources


class DetectionSource:
    """Interface: ``num_classes``, ``category_ids``, ``num_examples(split)``, ``dataset(split)``
    (optional ``class_names``, ``names[k - 1]`` naming class ``k``)."""

    name = "detection"
    num_classes: int
    category_ids: tuple
    class_names: tuple | None = None

    def num_examples(self, split: str) -> int | None:
        raise NotImplementedError

    def dataset(self, split: str, *, shuffle_files: bool = False, seed: int = 0, input_context=None):
        raise NotImplementedError


def _draw_shape(canvas, kind, y0, x0, size, color):
    """Paints one shape into its ``size`` x ``size`` box at ``(y0, x0)``; returns the box mask."""
    v, u = np.mgrid[0:size, 0:size] / size  # 0..1 inside the box
    inside = np.ones((size, size), bool)
    if kind == "disc":
        inside = (v + 0.5 / size - 0.5) ** 2 + (u + 0.5 / size - 0.5) ** 2 <= 0.25
    elif kind == "triangle":
        inside = np.abs(u + 0.5 / size - 0.5) <= (v + 1.0 / size) / 2
    elif kind == "cross":
        inside = (np.abs(u + 0.5 / size - 0.5) < 0.17) | (np.abs(v + 0.5 / size - 0.5) < 0.17)
    canvas[y0:y0 + size, x0:x0 + size][inside] = color
    mask = np.zeros(canvas.shape[:2], bool)
    mask[y0:y0 + size, x0:x0 + size] = inside
    return mask


class ShapesDetectionSource(DetectionSource):
    """Generated shapes on textured backgrounds, with boxes (offline, deterministic by seed).

    Each image has 1 to ``max_objects`` objects of the classes ``SHAPES`` (1 square,
    2 disc, 3 triangle, 4 cross), of side 15% to 50% of the image, overlapping at most
    lightly, in random colours on a background of noise and stripes. Each shape's box is
    its tight extent. Splits ``"train"`` and ``"test"`` (disjoint seeds).

    Args:
        num_train, num_eval: images per split.
        image_size: square side in pixels.
        max_objects: most objects per image.
        seed: the generator seed.
    """

    name = "shapes"

    def __init__(self, num_train: int = 2048, num_eval: int = 256, image_size: int = 64,
                 max_objects: int = 4, seed: int = 0):
        self.num_classes = len(SHAPES)
        self.class_names = SHAPES
        self.category_ids = tuple(range(1, self.num_classes + 1))
        self.image_size = int(image_size)
        self._splits = {
            "train": self._generate(num_train, seed * 2 + 1, max_objects),
            "test": self._generate(num_eval, seed * 2 + 2, max_objects),
        }

    def _generate(self, count, seed, max_objects):
        rng = np.random.default_rng(seed)
        n = self.image_size
        images, boxes, classes = [], [], []
        yy, xx = np.mgrid[0:n, 0:n]
        for _ in range(count):
            base = rng.uniform(40, 215, 3)
            angle, freq = rng.uniform(0, np.pi), rng.uniform(0.2, 0.8)
            stripes = 25 * np.sin(freq * (np.cos(angle) * xx + np.sin(angle) * yy))
            img = base[None, None, :] + stripes[..., None] + rng.normal(0, 12, (n, n, 3))
            taken = np.zeros((n, n), bool)
            bs, cs = [], []
            for _ in range(rng.integers(1, max_objects + 1)):
                for _attempt in range(10):
                    size = int(rng.uniform(0.15, 0.5) * n)
                    y0, x0 = rng.integers(0, n - size + 1, 2)
                    if taken[y0:y0 + size, x0:x0 + size].mean() < 0.1:
                        break
                else:
                    continue
                kind = int(rng.integers(0, len(SHAPES)))
                color = rng.uniform(0, 255, 3)
                while np.abs(color - base).max() < 80:
                    color = rng.uniform(0, 255, 3)
                mask = _draw_shape(img, SHAPES[kind], y0, x0, size, color)
                if not mask.any():  # a shape too small to cover a pixel (tiny images): no object
                    continue
                taken |= mask
                ys, xs = np.nonzero(mask)
                bs.append([ys.min() / n, xs.min() / n, (ys.max() + 1) / n, (xs.max() + 1) / n])
                cs.append(kind + 1)
            images.append(np.clip(img, 0, 255).astype(np.uint8))
            boxes.append(np.asarray(bs, np.float32).reshape(-1, 4))
            classes.append(np.asarray(cs, np.int32))
        return images, boxes, classes

    def num_examples(self, split):
        return len(self._check(split)[0])

    def _check(self, split):
        if split not in self._splits:
            raise DataError(f"shapes dataset has splits ['train', 'test']; received split {split!r}")
        return self._splits[split]

    def dataset(self, split, *, shuffle_files=False, seed=0, input_context=None):
        images, boxes, classes = self._check(split)
        ds = tf.data.Dataset.from_tensor_slices({
            "image": np.stack(images),
            "boxes": tf.ragged.constant([b.tolist() for b in boxes], dtype=tf.float32, ragged_rank=1, inner_shape=(4,)),
            "classes": tf.ragged.constant([c.tolist() for c in classes], dtype=tf.int32),
            "image_id": np.arange(1, len(images) + 1, dtype=np.int64),
        })
        ds = ds.map(lambda e: {**e, "boxes": tf.reshape(e["boxes"], [-1, 4]), "iscrowd": tf.zeros_like(e["classes"])})
        return shard_for(ds, input_context)


class CocoFolderSource(DetectionSource):
    """A COCO-format folder: ``<root>/annotations/instances_<split>.json`` + images.

    Image ``file_name`` s are relative to ``<root>/<split>/`` (COCO's layout), or to
    ``<root>`` when that folder does not exist. Categories become classes ``1..C`` in the
    order of their ids; ``category_ids`` maps them back. See the module docstring for
    what happens to bad boxes and inconsistent files.

    Raises:
        DataError: a missing annotation file or image, an unknown category or image id, or
            an image whose size differs from the JSON's (the message names the file).
    """

    name = "coco_folder"

    def __init__(self, root: str, splits=("train", "val")):
        self.root = str(root)
        self._records = {}
        categories = None
        for split in splits:
            path = os.path.join(self.root, "annotations", f"instances_{split}.json")
            if not os.path.exists(path):
                continue
            cats, records = self._read(path, split)
            if categories is None:
                categories = cats
            elif cats != categories:
                raise DataError(f"{path}: categories differ from the other split's ({sorted(categories)})")
            self._records[split] = records
        if categories is None:
            raise DataError(
                f"no COCO annotations in {os.path.join(self.root, 'annotations')!r}: expected "
                f"instances_<split>.json for a split of {list(splits)}"
            )
        self.category_ids = tuple(sorted(categories))
        self.class_names = tuple(str(categories[c]) for c in self.category_ids)
        self.num_classes = len(self.category_ids)

    def _read(self, path, split):
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, json.JSONDecodeError) as err:
            raise DataError(f"{path}: not a readable COCO JSON ({err})") from None
        for key in ("images", "annotations", "categories"):
            if key not in data:
                raise DataError(f"{path}: missing the {key!r} list of a COCO instances file")
        categories = {int(c["id"]): c.get("name", str(c["id"])) for c in data["categories"]}
        index = {cid: k + 1 for k, cid in enumerate(sorted(categories))}
        folder = os.path.join(self.root, split)
        folder = folder if os.path.isdir(folder) else self.root
        images = {}
        from PIL import Image

        for im in data["images"]:
            file = os.path.join(folder, im["file_name"])
            if not os.path.exists(file):
                raise DataError(f"{path}: image {im['file_name']!r} (id {im['id']}) not found at {file!r}")
            with Image.open(file) as pil:
                width, height = pil.size
            if (int(im["width"]), int(im["height"])) != (width, height):
                raise DataError(
                    f"{path}: image {file!r} is {width}x{height} but the JSON says "
                    f"{im['width']}x{im['height']} (width x height)"
                )
            images[int(im["id"])] = {"file": file, "height": height, "width": width, "boxes": [], "classes": [],
                                     "iscrowd": []}
        clipped, dropped = [], []
        for ann in data["annotations"]:
            image = images.get(int(ann["image_id"]))
            if image is None:
                raise DataError(f"{path}: annotation {ann.get('id')} refers to unknown image id {ann['image_id']}")
            cid = int(ann["category_id"])
            if cid not in index:
                raise DataError(
                    f"{path}: annotation {ann.get('id')} (image {image['file']!r}) has category id {cid}; "
                    f"expected one of {sorted(categories)}"
                )
            x, y, w, h = (float(v) for v in ann["bbox"])
            H, W = image["height"], image["width"]
            x0, y0, x1, y1 = max(x, 0.0), max(y, 0.0), min(x + w, W), min(y + h, H)
            if x1 <= x0 or y1 <= y0:
                dropped.append((image["file"], ann.get("id")))
                continue
            if (x0, y0, x1, y1) != (x, y, x + w, y + h):
                clipped.append((image["file"], ann.get("id")))
            image["boxes"].append([y0 / H, x0 / W, y1 / H, x1 / W])
            image["classes"].append(index[cid])
            image["iscrowd"].append(1 if ann.get("iscrowd", 0) else 0)
        for what, items in (("clipped to the image", clipped), ("dropped (zero width or height)", dropped)):
            if items:
                shown = ", ".join(f"{os.path.basename(f)} annotation {a}" for f, a in items[:5])
                more = f" and {len(items) - 5} more" if len(items) > 5 else ""
                warnings.warn(f"{path}: {len(items)} box(es) {what}: {shown}{more}", stacklevel=3)
        return categories, [(iid, rec) for iid, rec in sorted(images.items())]

    def num_examples(self, split):
        return len(self._split(split))

    def _split(self, split):
        if split not in self._records:
            raise DataError(f"{self.root}: no annotations for split {split!r}; have {sorted(self._records)}")
        return self._records[split]

    def dataset(self, split, *, shuffle_files=False, seed=0, input_context=None):
        records = self._split(split)
        ds = tf.data.Dataset.from_tensor_slices({
            "file": [r["file"] for _, r in records],
            "boxes": tf.ragged.constant([r["boxes"] for _, r in records], dtype=tf.float32, ragged_rank=1, inner_shape=(4,)),
            "classes": tf.ragged.constant([r["classes"] for _, r in records], dtype=tf.int32),
            "iscrowd": tf.ragged.constant([r["iscrowd"] for _, r in records], dtype=tf.int32),
            "image_id": np.asarray([i for i, _ in records], np.int64),
        })
        ds = shard_for(ds, input_context)

        def load(e):
            image = tf.io.decode_image(tf.io.read_file(e["file"]), channels=3, expand_animations=False)
            return {"image": image, "boxes": tf.reshape(e["boxes"], [-1, 4]), "classes": e["classes"],
                    "iscrowd": e["iscrowd"], "image_id": e["image_id"]}

        return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


class TFDSDetectionSource(DetectionSource):
    """tensorflow-datasets ``coco/2017`` or ``voc`` (2007 + 2012), prepared in ``data_dir``.

    ``voc``'s ``"train"`` split is VOC 2007 and 2012 train + validation (the usual "07+12"),
    its ``"test"`` VOC 2007 test. COCO's splits are ``"train"`` and ``"validation"``; COCO
    classes map back to the 80 official category ids (``COCO_CATEGORY_IDS``).

    Raises:
        DatasetNotPreparedError: the dataset is not prepared (and ``download`` is False).
        DataError: tensorflow-datasets is missing or the name is not supported.
    """

    def __init__(self, name: str, data_dir: str | None = None, download: bool = False):
        try:
            import tensorflow_datasets as tfds
        except ImportError:
            raise DataError(f"dataset {name!r} needs tensorflow-datasets: pip install 'mnas_keras[data]'") from None
        self._tfds = tfds
        if name in ("coco", "coco/2017"):
            self.name, self._parts = "coco/2017", {"train": [("coco/2017", "train")], "validation": [("coco/2017", "validation")]}
            self.num_classes, self.category_ids = 80, COCO_CATEGORY_IDS
        elif name in ("voc", "voc/2007+voc/2012"):
            self.name = "voc"
            self._parts = {
                "train": [("voc/2007", "train"), ("voc/2007", "validation"), ("voc/2012", "train"), ("voc/2012", "validation")],
                "test": [("voc/2007", "test")],
            }
            self.num_classes, self.category_ids = 20, tuple(range(1, 21))
        else:
            raise DataError(f"unsupported detection dataset {name!r}; expected 'coco/2017' or 'voc'")
        self.data_dir, self.download = data_dir, download
        self._builders = {}
        for parts in self._parts.values():
            for builder_name, _ in parts:
                if builder_name not in self._builders:
                    builder = tfds.builder(builder_name, data_dir=data_dir)
                    if not builder.is_prepared():
                        if not download:
                            raise DatasetNotPreparedError(
                                f"tensorflow-datasets {builder_name!r} is not prepared in "
                                f"{data_dir or '~/tensorflow_datasets'!r}; prepare it with "
                                f"`tfds build {builder_name} --data_dir=...` or pass download=True"
                            )
                        builder.download_and_prepare()
                    self._builders[builder_name] = builder

    def num_examples(self, split):
        return sum(self._builders[b].info.splits[s].num_examples for b, s in self._parts_of(split))

    def _parts_of(self, split):
        if split not in self._parts:
            raise DataError(f"dataset {self.name!r} has splits {sorted(self._parts)}; received {split!r}")
        return self._parts[split]

    def dataset(self, split, *, shuffle_files=False, seed=0, input_context=None):
        out = None
        for builder_name, part in self._parts_of(split):
            read_config = self._tfds.ReadConfig(shuffle_seed=seed, input_context=input_context)
            ds = self._builders[builder_name].as_dataset(split=part, shuffle_files=shuffle_files, read_config=read_config)
            is_coco = builder_name.startswith("coco")

            def convert(e, is_coco=is_coco):
                objects = e["objects"]
                labels = tf.cast(objects["label"], tf.int32)
                crowd = tf.cast(objects["is_crowd"], tf.int32) if is_coco else tf.zeros_like(labels)
                image_id = e["image/id"] if is_coco else tf.strings.to_hash_bucket_fast(e["image/filename"], 2**62)
                return {
                    "image": e["image"],
                    "boxes": tf.reshape(objects["bbox"], [-1, 4]),
                    "classes": labels + 1,
                    "iscrowd": crowd,
                    "image_id": tf.cast(image_id, tf.int64),
                }

            ds = ds.map(convert, num_parallel_calls=tf.data.AUTOTUNE)
            out = ds if out is None else out.concatenate(ds)
        return out


def load_detection_source(data_config) -> DetectionSource:
    """The detection source of a ``DataConfig``: ``shapes``, ``coco_folder``, ``coco/2017``, ``voc``."""
    name = data_config.name
    if name == "shapes":
        return ShapesDetectionSource(image_size=data_config.image_size)
    if name in ("coco_folder", "folder"):
        if not data_config.data_dir:
            raise DataError("data.name='coco_folder' needs data.data_dir (the COCO-format folder)")
        return CocoFolderSource(data_config.data_dir, splits=(data_config.train_split, data_config.eval_split))
    return TFDSDetectionSource(name, data_config.data_dir, data_config.download)


# ------------------------------------------------------------------------------------------
# augmentation

MIN_OBJECT_COVERED = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)


def ssd_random_crop(image, boxes, classes, seed):
    """SSD's random crop: a patch covering at least a random one of ``MIN_OBJECT_COVERED``
    of some box (or the whole image), aspect 0.5-2, area 10-100%; boxes whose centre falls in
    the patch are kept and clipped to it (SSD paper section 2.2; TF OD API ``ssd_random_crop``).
    """
    seeds = tf.random.experimental.stateless_split(seed, 2)
    choice = tf.random.stateless_uniform([], seeds[0], 0, len(MIN_OBJECT_COVERED), tf.int32)
    covered = tf.gather(tf.constant(MIN_OBJECT_COVERED, tf.float32), choice)
    begin, size, window = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), bounding_boxes=tf.reshape(boxes, [1, -1, 4]), seed=seeds[1],
        min_object_covered=covered, aspect_ratio_range=(0.5, 2.0), area_range=(0.1, 1.0),
        max_attempts=50, use_image_if_no_bounding_boxes=True,
    )
    window = tf.reshape(window, [4])
    image = tf.slice(image, begin, size)
    y0, x0, y1, x1 = tf.unstack(window)
    cy, cx = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    keep = (cy > y0) & (cy < y1) & (cx > x0) & (cx < x1)
    h, w = tf.maximum(y1 - y0, 1e-6), tf.maximum(x1 - x0, 1e-6)
    moved = (boxes - tf.stack([y0, x0, y0, x0])) / tf.stack([h, w, h, w])
    moved = tf.clip_by_value(moved, 0.0, 1.0)
    return image, tf.boolean_mask(moved, keep), tf.boolean_mask(classes, keep)


def augment(image, boxes, classes, seed, kind: str = "ssd"):
    """Box-aware augmentation: ``"ssd"`` (random crop + flip + photometric), ``"flip"``, ``"none"``.

    ``image`` uint8 or float [H, W, 3]; returns float32 0-255 (not resized), boxes, classes.
    """
    if kind not in ("ssd", "flip", "none"):
        raise ValueError(f"Expected detection augmentation 'ssd', 'flip' or 'none'. Received: {kind!r}")
    seed = tf.cast(seed, tf.int64)
    seeds = tf.random.experimental.stateless_split(seed, 6)
    image = tf.cast(image, tf.float32)
    if kind == "none":
        return image, boxes, classes
    if kind == "ssd":
        image, boxes, classes = ssd_random_crop(image, boxes, classes, seeds[0])
    flip = tf.random.stateless_uniform([], seeds[1]) < 0.5
    image = tf.cond(flip, lambda: tf.image.flip_left_right(image), lambda: image)
    flipped = tf.stack([boxes[:, 0], 1.0 - boxes[:, 3], boxes[:, 2], 1.0 - boxes[:, 1]], axis=1)
    boxes = tf.cond(flip, lambda: flipped, lambda: boxes)
    if kind == "ssd":
        x = image / 255.0
        x = tf.image.stateless_random_brightness(x, 32.0 / 255.0, seeds[2])
        x = tf.image.stateless_random_contrast(x, 0.5, 1.5, seeds[3])
        x = tf.image.stateless_random_saturation(x, 0.5, 1.5, seeds[4])
        x = tf.image.stateless_random_hue(x, 0.05, seeds[5])
        image = tf.clip_by_value(x, 0.0, 1.0) * 255.0
    return image, boxes, classes


# ------------------------------------------------------------------------------------------
# pipelines


def _pad_boxes(boxes, classes, max_boxes, iscrowd=None):
    boxes, classes = boxes[:max_boxes], classes[:max_boxes]
    n = tf.shape(classes)[0]
    boxes = tf.ensure_shape(tf.pad(boxes, [[0, max_boxes - n], [0, 0]]), [max_boxes, 4])
    classes = tf.ensure_shape(tf.pad(classes, [[0, max_boxes - n]]), [max_boxes])
    if iscrowd is None:
        return boxes, classes
    return boxes, classes, tf.ensure_shape(tf.pad(iscrowd[:max_boxes], [[0, max_boxes - n]]), [max_boxes])


def _crowd(e):
    """The example's ``iscrowd`` flags (zeros for a source without them), int32 ``[G]``."""
    if "iscrowd" in e:
        return tf.cast(e["iscrowd"], tf.int32)
    return tf.zeros_like(e["classes"], tf.int32)


def _options():
    options = tf.data.Options()
    options.deterministic = True
    return options


def detection_train_dataset(source, split, *, batch_size, image_size, augmentation="ssd", max_boxes=100,
                            seed=0, epoch=0, skip_examples=0, shuffle_buffer=10_000, input_context=None, base=None):
    """One epoch of ``(images float32 [B, S, S, 3] 0-255, {"boxes": [B, M, 4], "classes": [B, M]})``.

    Crowd boxes are dropped first (not trained on). Boxes are padded with class 0 to
    ``max_boxes`` (more are cut). Full batches only.
    """
    epoch_seed = int(seed) * _EPOCH_STRIDE + int(epoch)
    ds = base if base is not None else source.dataset(split, shuffle_files=True, seed=epoch_seed % (2**31), input_context=input_context)
    ds = ds.shuffle(shuffle_buffer, seed=epoch_seed % (2**31), reshuffle_each_iteration=False).enumerate()
    if skip_examples:
        ds = ds.skip(skip_examples)

    def prepare(index, e):
        example_seed = tf.stack([tf.constant(epoch_seed, tf.int64), index])
        single = _crowd(e) == 0
        image, boxes, classes = augment(e["image"], tf.boolean_mask(e["boxes"], single),
                                        tf.boolean_mask(e["classes"], single), example_seed, augmentation)
        image = tf.image.resize(image, [image_size, image_size])
        boxes, classes = _pad_boxes(boxes, classes, max_boxes)
        return tf.ensure_shape(image, [image_size, image_size, 3]), {"boxes": boxes, "classes": classes}

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE).with_options(_options())


def detection_eval_dataset(source, split, *, batch_size, image_size, max_boxes=100, replicas=1, steps=None,
                           input_context=None, base=None):
    """``(images, targets, weights)`` batches of exactly ``batch_size``; padding has weight 0.

    ``targets`` holds ``boxes``, ``classes``, ``iscrowd`` (crowd boxes kept, flagged 1),
    ``image_id`` and the original ``height`` and ``width`` (for absolute COCO boxes).
    """
    ds = base if base is not None else source.dataset(split, input_context=input_context)

    def prepare(e):
        shape = tf.shape(e["image"])
        image = tf.image.resize(tf.cast(e["image"], tf.float32), [image_size, image_size])
        boxes, classes, crowd = _pad_boxes(e["boxes"], e["classes"], max_boxes, _crowd(e))
        targets = {"boxes": boxes, "classes": classes, "iscrowd": crowd, "image_id": tf.cast(e["image_id"], tf.int64),
                   "height": shape[0], "width": shape[1]}
        return tf.ensure_shape(image, [image_size, image_size, 3]), targets, tf.constant(1.0)

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(batch_size)

    def pad(images, targets, weights):
        missing = batch_size - tf.shape(weights)[0]

        def p(t):
            return tf.pad(t, [[0, missing]] + [[0, 0]] * (t.shape.rank - 1))

        return p(images), {k: p(v) for k, v in targets.items()}, p(weights)

    ds = ds.map(pad)
    empty = tf.data.Dataset.from_tensors((
        tf.zeros([batch_size, image_size, image_size, 3]),
        {"boxes": tf.zeros([batch_size, max_boxes, 4]), "classes": tf.zeros([batch_size, max_boxes], tf.int32),
         "iscrowd": tf.zeros([batch_size, max_boxes], tf.int32),
         "image_id": tf.zeros([batch_size], tf.int64), "height": tf.zeros([batch_size], tf.int32),
         "width": tf.zeros([batch_size], tf.int32)},
        tf.zeros([batch_size]),
    ))
    if steps is not None:
        ds = ds.concatenate(empty.repeat()).take(steps * replicas)
    elif replicas > 1:
        ds = ds.concatenate(empty.repeat(replicas - 1)).batch(replicas, drop_remainder=True).unbatch()
    return ds.prefetch(tf.data.AUTOTUNE).with_options(_options())
