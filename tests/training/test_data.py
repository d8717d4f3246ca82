"""Sources (digits, folders, tfds, tf.data), preprocessing and the resumable pipelines."""

import os

import numpy as np
import pytest
import tensorflow as tf

from mnas_keras.training.config import DataConfig
from mnas_keras.training.data import (
    DatasetSource,
    DigitsSource,
    FolderSource,
    TFDSSource,
    center_crop,
    eval_dataset,
    inception_crop,
    load_source,
    preprocess_for_train,
    train_dataset,
)
from mnas_keras.training.errors import DataError, DatasetNotPreparedError


@pytest.fixture(scope="module")
def digits():
    return DigitsSource()


def _batches(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


def test_digits_split_is_fixed_stratified_and_scaled(digits):
    (x_train, y_train), (x_test, y_test) = digits.arrays("train"), digits.arrays("test")
    assert x_train.shape == (1437, 8, 8, 1) and x_test.shape == (360, 8, 8, 1)
    assert x_train.dtype == np.uint8 and x_train.max() == 255
    assert np.bincount(y_test).min() >= 35  # stratified: every class ~36 times
    assert np.array_equal(DigitsSource().arrays("test")[1], y_test)
    with pytest.raises(DataError, match="digits has no split 'validation'"):
        digits.dataset("validation")


def test_train_pipeline_is_seeded_per_epoch_and_resumes_by_skipping(digits):
    kw = dict(batch_size=32, image_size=32, augmentation="inception", seed=7, shuffle_buffer=2048)
    epoch0 = _batches(train_dataset(digits, "train", epoch=0, **kw))
    again = _batches(train_dataset(digits, "train", epoch=0, **kw))
    epoch1 = _batches(train_dataset(digits, "train", epoch=1, **kw))
    assert len(epoch0) == 1437 // 32
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(epoch0, again))
    assert not np.array_equal(epoch0[0][1], epoch1[0][1])  # a new order each epoch
    resumed = _batches(train_dataset(digits, "train", epoch=0, skip_examples=5 * 32, **kw))
    assert len(resumed) == len(epoch0) - 5
    for (xa, ya), (xb, yb) in zip(epoch0[5:], resumed):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(xa, xb)  # same augmentation, not just the same order
    images = epoch0[0][0]
    assert images.shape == (32, 32, 32, 3) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 255.0


def test_eval_pipeline_counts_each_example_once_for_any_replica_count(digits):
    _, labels = digits.arrays("test")
    for replicas in (1, 3):
        batches = list(eval_dataset(digits, "test", batch_size=48, image_size=32, crop_padding=0,
                                    replicas=replicas))
        assert len(batches) % replicas == 0
        weights = np.concatenate([w.numpy() for _, _, w in batches])
        got = np.concatenate([y.numpy() for _, y, _ in batches])[weights > 0]
        assert weights.sum() == 360 and all(x.shape[0] == 48 for x, _, _ in batches)
        np.testing.assert_array_equal(got, labels)
    cut = list(eval_dataset(digits, "test", batch_size=48, image_size=32, replicas=2, steps=2))
    assert len(cut) == 4


def test_center_crop_keeps_the_middle():
    image = np.zeros((40, 60, 3), np.uint8)
    image[10:30, 20:40] = 255  # a centered 20x20 square
    crop = center_crop(tf.constant(image), 20, crop_padding=20).numpy()  # keeps 20 of 40 rows
    assert crop.shape == (20, 20, 3)
    assert crop[2:-2, 2:-2].min() > 250


def test_inception_crop_is_random_per_seed_but_reproducible():
    image = tf.constant(np.random.default_rng(0).integers(0, 256, (64, 80, 3)), tf.uint8)
    a = inception_crop(image, 24, tf.constant([1, 2], tf.int64)).numpy()
    b = inception_crop(image, 24, tf.constant([1, 2], tf.int64)).numpy()
    c = inception_crop(image, 24, tf.constant([1, 3], tf.int64)).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and a.shape == (24, 24, 3)
    grey = preprocess_for_train(tf.zeros((8, 8, 1), tf.uint8), 16, "flip", tf.constant([0, 0], tf.int64))
    assert grey.shape == (16, 16, 3)


def _write_folder(root, counts):
    from PIL import Image

    for split, per_class in counts.items():
        for cls, n in per_class.items():
            os.makedirs(root / split / cls, exist_ok=True)
            for i in range(n):
                value = 40 * (ord(cls[0]) - ord("a"))
                Image.fromarray(np.full((10, 14, 3), value, np.uint8)).save(root / split / cls / f"{i}.png")


def test_folder_source_reads_classes_and_names_bad_paths(tmp_path):
    _write_folder(tmp_path, {"train": {"ant": 3, "bee": 2}, "test": {"bee": 1}})
    src = load_source(DataConfig(name="folder", data_dir=str(tmp_path)))
    assert isinstance(src, FolderSource)
    assert src.class_names == ["ant", "bee"] and src.num_examples("train") == 5
    examples = list(src.dataset("test"))
    assert len(examples) == 1 and int(examples[0]["label"]) == 1
    assert examples[0]["image"].shape == (10, 14, 3) and int(examples[0]["image"][0, 0, 0]) == 40
    with pytest.raises(DataError, match="does not exist"):
        FolderSource(str(tmp_path / "nope"))
    with pytest.raises(DataError, match="no split 'val'"):
        src.dataset("val")
    _write_folder(tmp_path, {"val": {"cat": 1}})
    with pytest.raises(DataError, match="cat.*is not a class of the train split"):
        src.files("val")


def test_dataset_source_wraps_any_tf_data(digits):
    x, y = digits.arrays("test")
    src = DatasetSource({"train": tf.data.Dataset.from_tensor_slices((x, y))}, num_classes=10)
    assert src.num_examples("train") == 360
    batch = next(iter(train_dataset(src, "train", batch_size=4, image_size=16, augmentation="none")))
    assert batch[0].shape == (4, 16, 16, 3)
    unknown = tf.data.Dataset.from_tensor_slices((x, y)).filter(lambda a, b: b >= 0)
    assert DatasetSource({"train": unknown}, 10).num_examples("train") is None
    with pytest.raises(DataError, match="num_classes must be given"):
        DatasetSource({"train": unknown}, num_classes=0)


class MnasTinyShapes:
    """A generator-based tfds builder, defined lazily (tfds registers it by class name)."""


def _tiny_builder_class():
    import tensorflow_datasets as tfds

    global MnasTinyShapes
    if isinstance(MnasTinyShapes, type) and issubclass(MnasTinyShapes, tfds.core.GeneratorBasedBuilder):
        return MnasTinyShapes

    class MnasTinyShapes(tfds.core.GeneratorBasedBuilder):  # noqa: F811
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return self.dataset_info_from_configs(
                features=tfds.features.FeaturesDict({
                    "image": tfds.features.Image(shape=(12, 12, 3)),
                    "label": tfds.features.ClassLabel(num_classes=3),
                }),
                supervised_keys=("image", "label"),
            )

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(6), "test": self._generate_examples(3)}

        def _generate_examples(self, n):
            for i in range(n):
                yield i, {"image": np.full((12, 12, 3), 20 * i, np.uint8), "label": i % 3}

    return MnasTinyShapes


def test_tfds_source_not_prepared_names_the_directory_then_loads_when_prepared(tmp_path):
    _tiny_builder_class()
    data_dir = str(tmp_path / "tfds")
    with pytest.raises(DatasetNotPreparedError) as info:
        load_source(DataConfig(name="mnas_tiny_shapes", data_dir=data_dir))
    message = str(info.value)
    assert data_dir in message and "tfds build mnas_tiny_shapes" in message and "download=True" in message
    src = TFDSSource("mnas_tiny_shapes", data_dir=data_dir, download=True)  # generator: no network
    assert src.num_classes == 3 and src.num_examples("train") == 6
    again = load_source(DataConfig(name="mnas_tiny_shapes", data_dir=data_dir))  # now prepared
    labels = sorted(int(e["label"]) for e in again.dataset("train"))
    assert labels == [0, 0, 1, 1, 2, 2]
    with pytest.raises(DataError, match="no split 'validation'"):
        again.dataset("validation")


def test_tfds_unknown_and_manual_datasets_explain_themselves(tmp_path):
    with pytest.raises(DataError, match="unknown dataset 'no_such_set_xyz'"):
        load_source(DataConfig(name="no_such_set_xyz", data_dir=str(tmp_path)))
    with pytest.raises(DatasetNotPreparedError) as info:
        load_source(DataConfig(name="imagenet2012", data_dir=str(tmp_path)))
    assert "manual dataset" in str(info.value) and "ILSVRC2012_img_train.tar" in str(info.value)
    with pytest.raises(DatasetNotPreparedError, match="manual_dir .*missing.* does not exist"):
        load_source(DataConfig(name="imagenet2012", data_dir=str(tmp_path), manual_dir=str(tmp_path / "missing")))
