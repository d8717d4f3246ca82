"""Image sources: where (image, label) examples come from, before any preprocessing.

Every source yields dicts ``{"image": uint8 [H, W, C], "label": int64}`` for a named split
and knows its class count and (when it can) its split sizes:

- :class:`DigitsSource`: scikit-learn's bundled 8x8 digits (offline; 1,437 train / 360 test).
- :class:`FolderSource`: ``root/<split>/<class>/*.jpg|png|...``.
- :class:`TFDSSource`: a tensorflow-datasets builder in a prepared ``data_dir``.
- :class:`DatasetSource`: any ``tf.data.Dataset`` of ``(image, label)`` per split.

:func:`load_source` picks one from a :class:`~mnas_keras.training.config.DataConfig`.

Example:
    >>> src = DigitsSource()
    >>> src.num_classes, src.num_examples("train"), src.num_examples("test")
    (10, 1437, 360)
    >>> ex = next(iter(src.dataset("test")))
    >>> ex["image"].shape, ex["image"].dtype.name, int(ex["label"])
    (TensorShape([8, 8, 1]), 'uint8', 7)
"""

from __future__ import annotations

import os
from typing import Mapping

import numpy as np
import tensorflow as tf

from mnas_keras.training.config import DataConfig
from mnas_keras.training.errors import DataError, DatasetNotPreparedError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
# First bytes of each format (JPEG SOI marker, PNG signature, GIF87a/89a, Windows bitmap).
_MAGIC = {".jpg": (b"\xff\xd8\xff",), ".jpeg": (b"\xff\xd8\xff",), ".png": (b"\x89PNG\r\n\x1a\n",),
          ".gif": (b"GIF87a", b"GIF89a"), ".bmp": (b"BM",)}


def _visible(names):
    """Names not starting with a dot (``.ipynb_checkpoints``, ``.DS_Store``, ``._x.jpg``)."""
    return [n for n in names if not n.startswith(".")]


def check_image_header(path: str) -> None:
    """Raises ``DataError`` naming ``path`` if it cannot be opened (e.g. a broken symlink),
    is empty, or does not start with its extension's signature (a cheap check of the first
    bytes; the whole image is decoded later).

    Example:
        >>> check_image_header("/nonexistent/a.png")
        Traceback (most recent call last):
        ...
        mnas_keras.training.errors.DataError: image file '/nonexistent/a.png' cannot be read: No such file or directory
    """
    extension = os.path.splitext(path)[1].lower()
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as err:
        raise DataError(f"image file {path!r} cannot be read: {err.strerror}") from None
    if not head:
        raise DataError(f"image file {path!r} is empty")
    signatures = _MAGIC.get(extension, ())
    if signatures and not any(head.startswith(s) for s in signatures):
        raise DataError(
            f"image file {path!r} is not a valid {extension[1:].upper()} image (its first bytes "
            f"{head[:4]!r} are not the format's signature); remove or replace it"
        )


def shard_for(dataset: tf.data.Dataset, input_context) -> tf.data.Dataset:
    """Keeps this input pipeline's share of ``dataset`` (multi-worker input)."""
    if input_context is not None and input_context.num_input_pipelines > 1:
        return dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    return dataset


class ImageSource:
    """Interface of an image-classification source."""

    name = "source"
    num_classes: int

    def splits(self) -> tuple:
        raise NotImplementedError

    def num_examples(self, split: str) -> int | None:
        """Examples in ``split`` (``None`` when unknown without reading it)."""
        raise NotImplementedError

    def dataset(
        self, split: str, *, shuffle_files: bool = False, seed: int = 0, input_context=None
    ) -> tf.data.Dataset:
        """The split as ``{"image", "label"}`` dicts (sharded for ``input_context``)."""
        raise NotImplementedError

    def _check_split(self, split: str) -> None:
        if split not in self.splits():
            raise DataError(f"{self.name} has no split {split!r}; expected one of {self.splits()}")


class DigitsSource(ImageSource):
    """scikit-learn's digits (1,797 8x8 grey images, 10 classes), split 1,437 / 360.

    The split is stratified and fixed (``random_state=0``); pixel values 0-16 are scaled to
    0-255. The model's input size is reached by the pipeline's resize (e.g. to 32x32).
    """

    name = "digits"
    num_classes = 10

    def __init__(self):
        try:
            from sklearn.datasets import load_digits
            from sklearn.model_selection import train_test_split
        except ImportError:  # pragma: no cover - depends on the environment
            raise DataError(
                "the digits dataset needs scikit-learn: pip install 'mnas_keras[data]'"
            ) from None
        digits = load_digits()
        images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
        labels = digits.target.astype(np.int64)
        x_train, x_test, y_train, y_test = train_test_split(
            images, labels, test_size=360, stratify=labels, random_state=0
        )
        self._arrays = {"train": (x_train, y_train), "test": (x_test, y_test)}

    def splits(self) -> tuple:
        return ("train", "test")

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``(images uint8 [N, 8, 8, 1], labels int64 [N])`` of ``split``."""
        self._check_split(split)
        return self._arrays[split]

    def num_examples(self, split: str) -> int:
        return len(self.arrays(split)[1])

    def dataset(self, split, *, shuffle_files=False, seed=0, input_context=None):
        images, labels = self.arrays(split)
        ds = tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})
        return shard_for(ds, input_context)


def _decode_file(path, label):
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    return {"image": image, "label": label}


class FolderSource(ImageSource):
    """Images in ``root/<split>/<class name>/<file>``; classes are the train split's folders.

    Folders starting with a dot (``.ipynb_checkpoints/``) are ignored, as Keras'
    ``image_dataset_from_directory`` does, and so are files starting with one (``.DS_Store``,
    macOS' ``._x.jpg`` AppleDouble files, which are not images). The structure is checked when the source is built,
    so bad data fails before any training: a class folder with no images, a class folder in
    another split that the class split lacks, or an image file that cannot be opened (a
    broken symlink) or does not start with its format's signature raises ``DataError``
    naming the folder or file.

    Args:
        root: the folder holding one sub-folder per split.
        class_split: the split whose sub-folders define the (sorted) class names.
        check_headers: read the first bytes of every image (set False to skip on huge sets).
    """

    name = "folder"

    def __init__(self, root: str, class_split: str = "train", check_headers: bool = True):
        if not root or not os.path.isdir(root):
            raise DataError(
                f"image folder {root!r} does not exist; expected a directory with one "
                "sub-folder per split (e.g. train/, test/), each holding one folder per class"
            )
        self.root = root
        self.name = f"folder {root!r}"
        available = self.splits()
        if not available:
            raise DataError(f"image folder {root!r} has no split sub-folders (e.g. train/)")
        base = class_split if class_split in available else available[0]
        self.class_names = sorted(
            d for d in _visible(os.listdir(os.path.join(root, base)))
            if os.path.isdir(os.path.join(root, base, d))
        )
        if not self.class_names:
            raise DataError(f"{os.path.join(root, base)!r} has no class sub-folders")
        self.num_classes = len(self.class_names)
        self.check_headers = check_headers
        self._files: dict[str, tuple[list, list]] = {}
        for split in available:  # the whole structure, before any training
            self.files(split)

    def splits(self) -> tuple:
        return tuple(sorted(d for d in _visible(os.listdir(self.root)) if os.path.isdir(os.path.join(self.root, d))))

    def files(self, split: str) -> tuple[list, list]:
        """``(paths, labels)`` of ``split`` in a fixed (sorted) order."""
        self._check_split(split)
        if split not in self._files:
            paths, labels = [], []
            split_dir = os.path.join(self.root, split)
            for folder in sorted(_visible(os.listdir(split_dir))):
                if not os.path.isdir(os.path.join(split_dir, folder)):
                    continue
                if folder not in self.class_names:
                    raise DataError(
                        f"class folder {os.path.join(split_dir, folder)!r} is not a class of the "
                        f"train split; expected one of {self.class_names}"
                    )
                label = self.class_names.index(folder)
                found = 0
                for name in sorted(_visible(os.listdir(os.path.join(split_dir, folder)))):
                    if name.lower().endswith(IMAGE_EXTENSIONS):
                        path = os.path.join(split_dir, folder, name)
                        if self.check_headers:
                            check_image_header(path)
                        paths.append(path)
                        labels.append(label)
                        found += 1
                if not found:
                    raise DataError(
                        f"class folder {os.path.join(split_dir, folder)!r} holds no images "
                        f"({', '.join(IMAGE_EXTENSIONS)}); remove it or add images"
                    )
            if not paths:
                raise DataError(f"{split_dir!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
            self._files[split] = (paths, labels)
        return self._files[split]

    def num_examples(self, split: str) -> int:
        return len(self.files(split)[0])

    def dataset(self, split, *, shuffle_files=False, seed=0, input_context=None):
        paths, labels = self.files(split)
        ds = tf.data.Dataset.from_tensor_slices((paths, np.asarray(labels, np.int64)))
        ds = shard_for(ds, input_context)
        return ds.map(_decode_file, num_parallel_calls=tf.data.AUTOTUNE)


class TFDSSource(ImageSource):
    """A tensorflow-datasets image-classification dataset, prepared in ``data_dir``.

    Nothing is downloaded unless ``download=True``. A manual dataset (e.g.
    ``imagenet2012``) is prepared from the archives in ``manual_dir`` when that is given.

    Raises:
        DatasetNotPreparedError: the dataset is not prepared and may not be prepared here;
            the message names the directory and how to prepare it.
        DataError: tensorflow-datasets is missing or the name is unknown.
    """

    def __init__(
        self,
        name: str,
        data_dir: str | None = None,
        manual_dir: str | None = None,
        download: bool = False,
        image_key: str = "image",
        label_key: str = "label",
    ):
        try:
            import tensorflow_datasets as tfds
        except ImportError:
            raise DataError(
                f"dataset {name!r} needs tensorflow-datasets: pip install 'mnas_keras[data]'"
            ) from None
        self._tfds = tfds
        self.name = name
        self.image_key, self.label_key = image_key, label_key
        try:
            builder = tfds.builder(name, data_dir=data_dir)
        except tfds.core.registered.DatasetNotFoundError:
            raise DataError(
                f"unknown dataset {name!r}: not a tensorflow-datasets name, and not 'digits', "
                "'shapes_classification' or 'folder'"
            ) from None
        self.builder = builder
        if not builder.is_prepared():
            self._prepare(data_dir, manual_dir, download)
        features = builder.info.features
        if image_key not in features or label_key not in features:
            raise DataError(
                f"dataset {name!r} has features {sorted(features)}; expected {image_key!r} "
                f"and {label_key!r} for classification"
            )
        self.num_classes = int(features[label_key].num_classes)

    def _prepare(self, data_dir, manual_dir, download):
        builder, name = self.builder, self.name
        root = data_dir or "~/tensorflow_datasets"
        manual_text = getattr(type(builder), "MANUAL_DOWNLOAD_INSTRUCTIONS", None)
        if manual_dir is not None and not os.path.isdir(manual_dir):
            raise DatasetNotPreparedError(
                f"manual_dir {manual_dir!r} for dataset {name!r} does not exist"
            )
        if not download and not (manual_text and manual_dir):
            hint = (
                f" {name!r} is a manual dataset: put its archives in a folder and pass "
                f"manual_dir=<folder> (--manual_dir); it needs: {' '.join(manual_text.split())[:300]}"
                if manual_text
                else f" or pass download=True (--download) to let "
                "tensorflow-datasets download it here"
            )
            raise DatasetNotPreparedError(
                f"dataset {name!r} is not prepared in {str(builder.data_dir)!r} "
                f"(data_dir={root!r}): prepare it with `tfds build {name} --data_dir {root}` "
                f"(on a machine with network access, then copy the folder),{hint}"
            )
        config = self._tfds.download.DownloadConfig(manual_dir=manual_dir)
        try:
            builder.download_and_prepare(download_config=config)
        except Exception as err:  # network, missing archives: say which dataset and where
            raise DatasetNotPreparedError(
                f"preparing dataset {name!r} in {str(builder.data_dir)!r} failed "
                f"(manual_dir={manual_dir!r}, download={download}): {type(err).__name__}: {err}"
            ) from err

    def splits(self) -> tuple:
        return tuple(self.builder.info.splits.keys())

    def num_examples(self, split: str) -> int | None:
        splits = self.builder.info.splits
        if not splits.keys():
            return None  # info without split metadata (e.g. tfds.testing.mock_data)
        try:
            return int(splits[split].num_examples)
        except (KeyError, ValueError) as err:
            raise DataError(
                f"dataset {self.name!r} has no split {split!r}; splits are {self.splits()}"
            ) from err

    def dataset(self, split, *, shuffle_files=False, seed=0, input_context=None):
        self.num_examples(split)
        read_config = self._tfds.ReadConfig(
            shuffle_seed=seed, input_context=input_context, try_autocache=False,
            shuffle_reshuffle_each_iteration=False,
        )
        ds = self.builder.as_dataset(split=split, shuffle_files=shuffle_files, read_config=read_config)
        image_key, label_key = self.image_key, self.label_key
        return ds.map(
            lambda ex: {"image": ex[image_key], "label": tf.cast(ex[label_key], tf.int64)},
            num_parallel_calls=tf.data.AUTOTUNE,
        )


class DatasetSource(ImageSource):
    """Wraps user ``tf.data.Dataset`` objects of ``(image, label)`` or ``{"image", "label"}``.

    Args:
        datasets: split name -> unbatched dataset.
        num_classes: class count (required: a dataset does not say it).
        num_examples: split name -> size, for datasets of unknown cardinality.
    """

    name = "dataset"

    def __init__(self, datasets: Mapping[str, tf.data.Dataset], num_classes: int,
                 num_examples: Mapping[str, int] | None = None):
        if not num_classes or num_classes < 1:
            raise DataError(f"num_classes must be given for a tf.data source; received {num_classes!r}")
        self._datasets = dict(datasets)
        self.num_classes = int(num_classes)
        self._sizes = dict(num_examples or {})

    def splits(self) -> tuple:
        return tuple(self._datasets)

    def num_examples(self, split):
        self._check_split(split)
        if split in self._sizes:
            return self._sizes[split]
        n = int(self._datasets[split].cardinality())
        return n if n >= 0 else None

    def dataset(self, split, *, shuffle_files=False, seed=0, input_context=None):
        self._check_split(split)
        ds = self._datasets[split]

        def to_dict(*example):
            if len(example) == 1 and isinstance(example[0], dict):
                ex = example[0]
                return {"image": ex["image"], "label": tf.cast(ex["label"], tf.int64)}
            if len(example) != 2:
                raise DataError(f"expected (image, label) examples; received {len(example)} parts")
            return {"image": example[0], "label": tf.cast(example[1], tf.int64)}

        return shard_for(ds.map(to_dict), input_context)


def load_source(config: DataConfig) -> ImageSource:
    """The source that ``config.name`` names (``digits``, ``shapes_classification`` (generated
    at ``config.image_size``), ``folder`` or a tfds name)."""
    if config.name == "digits":
        return DigitsSource()
    if config.name == "folder":
        return FolderSource(config.data_dir or "", class_split=config.train_split)
    if config.name == "shapes_classification":
        from mnas_keras.training.data.shapes_classification import ShapesClassificationSource

        return ShapesClassificationSource(size=config.image_size)
    return TFDSSource(config.name, config.data_dir, config.manual_dir, config.download)
