"""Segmentation task: metric by hand and against keras.metrics.MeanIoU, loss with ignore,
joint augmentation, data sources and their bad inputs, training, resume, visuals."""

import io
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from mnas_keras.training import ConfigError, Trainer, get_recipe
from mnas_keras.training.data.segmentation_data import (
    MaskFolderSource,
    ShapesSource,
    TFDSSegmentationSource,
    augment,
    cityscapes_lookup,
    make_shapes,
    segmentation_eval_dataset,
    segmentation_train_dataset,
)
from mnas_keras.training.errors import DataError, DatasetNotPreparedError
from mnas_keras.training.tasks.segmentation import confusion_sums, miou_from_sums, per_pixel_loss


# ------------------------------------------------------------------------------ metrics
def test_miou_against_a_hand_computed_confusion_matrix():
    # 3 classes; labels / predictions of 10 pixels (one ignored, one in a zero-weight image).
    labels = np.array([[[0, 0, 1, 1, 2, 2, 2, 255, 0, 1]], [[2, 2, 2, 2, 2, 2, 2, 2, 2, 2]]])
    preds = np.array([[[0, 1, 1, 1, 2, 0, 2, 2, 0, 2]], [[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]]])
    logits = tf.one_hot(preds, 3)
    sums = confusion_sums(labels, logits, 3, weights=[1.0, 0.0])
    # Confusion matrix (rows truth, columns prediction) over the 9 counted pixels:
    #   truth 0: pred 0 x2, pred 1 x1        -> tp0 2, gt0 3
    #   truth 1: pred 1 x2, pred 2 x1        -> tp1 2, gt1 3
    #   truth 2: pred 2 x2, pred 0 x1        -> tp2 2, gt2 3
    # predicted counts: 0 -> 3, 1 -> 3, 2 -> 3; IoU_c = 2 / (3 + 3 - 2) = 0.5 for each.
    got = {k: float(v) for k, v in sums.items()}
    assert got == {"tp_0": 2, "gt_0": 3, "pred_0": 3, "tp_1": 2, "gt_1": 3, "pred_1": 3,
                   "tp_2": 2, "gt_2": 3, "pred_2": 3}
    miou, accuracy, ious = miou_from_sums(got, 3)
    assert ious == [0.5, 0.5, 0.5] and miou == 0.5 and accuracy == 6 / 9


def test_miou_matches_keras_mean_iou_with_ignore_class():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, (3, 9, 7))
    labels[rng.uniform(size=labels.shape) < 0.2] = 255
    preds = rng.integers(0, 4, (3, 9, 7))  # class 4 never predicted
    miou, _, _ = miou_from_sums({k: float(v) for k, v in confusion_sums(labels, tf.one_hot(preds, 5), 5).items()}, 5)
    metric = keras.metrics.MeanIoU(num_classes=5, ignore_class=255)
    metric.update_state(labels.reshape(-1), preds.reshape(-1))
    assert miou == pytest.approx(float(metric.result()), rel=1e-6)


def test_loss_ignores_255_and_matches_numpy():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 3, 4, 5)).astype("float32")
    labels = rng.integers(0, 5, (2, 3, 4))
    labels[0, 0, :] = 255
    labels[1] = 255  # nothing labelled: loss 0, not NaN
    loss = per_pixel_loss(labels, logits).numpy()
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    valid = labels[0] != 255
    expected0 = -np.mean(np.take_along_axis(log_p[0], np.where(valid, labels[0], 0)[..., None], -1)[..., 0][valid])
    np.testing.assert_allclose(loss, [expected0, 0.0], rtol=1e-5)


# ------------------------------------------------------------------------- data
def test_augment_keeps_image_and_mask_aligned():
    # The mask is a function of the image (class = red channel // 64): any geometric
    # transform applied to both must keep that relation on every non-padded pixel.
    rng = np.random.default_rng(2)
    red = np.kron(rng.integers(0, 4, (5, 7)), np.ones((8, 8), int))[:37, :53] * 64 + 10  # 8x8 blocks
    image = np.stack([red, red * 0, red * 0], -1).astype("float32")
    mask = (red // 64).astype("int32")
    for i in range(5):
        x, y = augment(image, mask, tf.constant([7, i], tf.int64), crop_size=48, min_scale=0.5, max_scale=2.0)
        x, y = x.numpy(), y.numpy()
        valid = y != 255
        assert valid.any()
        # nearest-neighbour masks hold only original values; bilinear images agree where smooth
        assert set(np.unique(y[valid])) <= {0, 1, 2, 3}
        inner = valid & (np.abs(x[..., 0] - (y * 64 + 10)) < 1e-3)
        assert inner.mean() > 0.7 * valid.mean()  # all but block edges


def test_shapes_are_deterministic_by_seed_and_labelled():
    a, b = make_shapes(3, 32, seed=5), make_shapes(3, 32, seed=5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(make_shapes(3, 32, seed=6)[0], a[0])
    assert set(np.unique(a[1])) <= {0, 1, 2, 3, 255}


def test_cityscapes_lookup_maps_19_train_ids():
    table = cityscapes_lookup()
    # cityscapesScripts labels.py: road 7 -> 0, sky 23 -> 10, bicycle 33 -> 18; 19 ids kept.
    assert (table[7], table[23], table[33]) == (0, 10, 18)
    assert sorted(set(table.tolist()) - {255}) == list(range(19))


def test_cityscapes_without_manual_folder_is_a_clear_error(tmp_path):
    missing = str(tmp_path / "nowhere")
    with pytest.raises(DatasetNotPreparedError, match="manual_dir .*nowhere.* does not exist"):
        TFDSSegmentationSource("cityscapes", data_dir=str(tmp_path), manual_dir=missing)
    with pytest.raises(DatasetNotPreparedError, match="manual dataset"):
        TFDSSegmentationSource("cityscapes", data_dir=str(tmp_path))


def _write_pair(root, split, name, image, mask):
    for sub in ("images", "masks"):
        os.makedirs(os.path.join(root, split, sub), exist_ok=True)
    tf.io.write_file(os.path.join(root, split, "images", name + ".png"), tf.io.encode_png(image))
    tf.io.write_file(os.path.join(root, split, "masks", name + ".png"), tf.io.encode_png(mask[..., None]))


def test_folder_source_reads_pairs_and_rejects_bad_ones(tmp_path):
    root = str(tmp_path / "data")
    images, masks = make_shapes(3, 24, seed=0)
    for i in range(3):
        _write_pair(root, "train", f"im{i}", images[i], masks[i])
    src = MaskFolderSource(root, num_classes=4)
    examples = list(src.dataset("train"))
    assert len(examples) == 3
    np.testing.assert_array_equal(examples[1]["mask"].numpy(), masks[1])
    np.testing.assert_array_equal(examples[1]["image"].numpy(), images[1])

    bad = masks[0].copy()
    bad[0, 0] = 7
    _write_pair(root, "value", "x", images[0], bad)
    with pytest.raises(DataError, match=r"x\.png' has value 7, which is neither a class id in \[0, 3\]"):
        list(src.dataset("value"))
    _write_pair(root, "size", "y", images[0], masks[0][:20])
    with pytest.raises(DataError, match=r"y\.png' is 24x20 but image .*y\.png' is 24x24"):
        list(src.dataset("size"))
    os.makedirs(os.path.join(root, "empty", "images"))
    os.makedirs(os.path.join(root, "empty", "masks"))
    with pytest.raises(DataError, match="has no images"):
        src.num_examples("empty")


def test_bad_mask_value_in_a_tf_data_source_stops_with_its_value():
    src = ShapesSource(size=16, num_train=2, num_test=2)
    images, masks = src.arrays("train")
    masks = masks.copy()
    masks[1, 3, 3] = 9
    src._arrays["train"] = (images, masks)
    with pytest.raises(tf.errors.InvalidArgumentError, match="mask value.*9.*neither a class id in \\[0, 3\\]"):
        list(segmentation_train_dataset(src, "train", batch_size=2, crop_size=16, seed=0, epoch=0))


def test_eval_dataset_pads_with_ignore_and_zero_weights():
    src = ShapesSource(size=16, num_train=2, num_test=5)
    batches = list(segmentation_eval_dataset(src, "test", batch_size=2, replicas=2))
    assert len(batches) == 4  # 3 real (2, 2, 1) rounded up to a multiple of 2 replicas
    weights = np.concatenate([w.numpy() for _, _, w in batches])
    assert weights.tolist() == [1, 1, 1, 1, 1, 0, 0, 0]
    assert np.all(batches[2][1].numpy()[1] == 255) and np.all(batches[3][1].numpy() == 255)


def test_image_mask_size_mismatch_in_a_tf_data_source_is_named():
    from mnas_keras.training.data.segmentation_data import SegmentationSource

    class Mismatched(SegmentationSource):
        num_classes = 2

        def dataset(self, split, **kwargs):
            return tf.data.Dataset.from_tensors({"image": tf.zeros([8, 8, 3], tf.uint8),
                                                 "mask": tf.zeros([8, 6], tf.uint8)})

    with pytest.raises(tf.errors.InvalidArgumentError, match=r"mask size \(x\) differs from its image size \(y\).*\[8 6\].*\[8 8\]"):
        list(segmentation_eval_dataset(Mismatched(), "test", batch_size=1))
