"""Detection data: generated shapes, the COCO-format folder and its bad inputs, box-aware augmentation."""

import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from mnas_keras.training.data.detection import (
    CocoFolderSource,
    ShapesDetectionSource,
    augment,
    detection_eval_dataset,
    detection_train_dataset,
)
from mnas_keras.training.errors import DataError


def _examples(src, split):
    return [{k: v.numpy() for k, v in e.items()} for e in src.dataset(split)]


def test_shapes_are_deterministic_by_seed_with_several_objects_of_bounded_size():
    a = _examples(ShapesDetectionSource(num_train=6, num_eval=2, image_size=48, seed=5), "train")
    b = _examples(ShapesDetectionSource(num_train=6, num_eval=2, image_size=48, seed=5), "train")
    c = _examples(ShapesDetectionSource(num_train=6, num_eval=2, image_size=48, seed=6), "train")
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x["image"], y["image"])
        np.testing.assert_array_equal(x["boxes"], y["boxes"])
    assert not all(np.array_equal(x["image"], y["image"]) for x, y in zip(a, c))
    counts = [len(e["classes"]) for e in a]
    assert min(counts) >= 1 and max(counts) <= 4 and max(counts) > 1
    for e in a:
        for box, k in zip(e["boxes"], e["classes"]):
            assert 1 <= k <= 4
            y0, x0, y1, x1 = np.round(box * 48).astype(int)
            assert 0.15 * 48 - 1 <= max(y1 - y0, x1 - x0) <= 0.5 * 48


def _write_coco(root, annotations, images=((1, "a.png", 40, 30), (2, "b.png", 20, 20)), sizes=None,
                categories=((3, "cat"), (5, "dog"))):
    (root / "train").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(exist_ok=True)
    for image_id, name, w, h in images:
        real = (sizes or {}).get(name, (w, h))
        Image.fromarray(np.full((real[1], real[0], 3), 100, np.uint8)).save(root / "train" / name)
    data = {
        "images": [{"id": i, "file_name": n, "width": w, "height": h} for i, n, w, h in images],
        "annotations": [{"id": k + 1, "image_id": i, "category_id": c, "bbox": b, "iscrowd": int(crowd[0]) if crowd else 0}
                        for k, (i, c, b, *crowd) in enumerate(annotations)],
        "categories": [{"id": i, "name": n} for i, n in categories],
    }
    (root / "annotations" / "instances_train.json").write_text(json.dumps(data))
    return root


def test_coco_folder_boxes_classes_and_empty_images(tmp_path):
    root = _write_coco(tmp_path, [(1, 5, [4, 3, 20, 15])])  # image 2 has no boxes
    src = CocoFolderSource(str(root), splits=("train",))
    assert src.num_classes == 2 and src.category_ids == (3, 5) and src.num_examples("train") == 2
    a, b = _examples(src, "train")
    assert a["image"].shape == (30, 40, 3) and a["image_id"] == 1
    # x 4..24 of 40, y 3..18 of 30
    np.testing.assert_allclose(a["boxes"], [[3 / 30, 4 / 40, 18 / 30, 24 / 40]], rtol=1e-6)
    assert a["classes"].tolist() == [2]
    assert b["boxes"].shape == (0, 4) and b["classes"].shape == (0,)


def test_crowds_are_kept_for_evaluation_and_left_out_of_training(tmp_path):
    # image 1 (40 wide, 30 high): a dog at x 4..24, y 3..18 and a crowd of cats at x 0..10, y 0..10
    root = _write_coco(tmp_path, [(1, 5, [4, 3, 20, 15]), (1, 3, [0, 0, 10, 10], 1)],
                       images=((1, "a.png", 40, 30),))
    src = CocoFolderSource(str(root), splits=("train",))
    (example,) = _examples(src, "train")
    assert example["classes"].tolist() == [2, 1] and example["iscrowd"].tolist() == [0, 1]
    _, targets, _ = next(iter(detection_eval_dataset(src, "train", batch_size=1, image_size=16, max_boxes=3)))
    assert targets["classes"].numpy().tolist() == [[2, 1, 0]]
    assert targets["iscrowd"].numpy().tolist() == [[0, 1, 0]]
    np.testing.assert_allclose(targets["boxes"][0, 1], [0, 0, 10 / 30, 10 / 40], rtol=1e-6)
    _, train = next(iter(detection_train_dataset(src, "train", batch_size=1, image_size=16, augmentation="none",
                                                 max_boxes=3)))
    assert train["classes"].numpy().tolist() == [[2, 0, 0]]
    np.testing.assert_allclose(train["boxes"][0, 0], [3 / 30, 4 / 40, 18 / 30, 24 / 40], rtol=1e-6)


def test_coco_folder_clips_outside_boxes_and_drops_empty_ones_with_warnings(tmp_path):
    root = _write_coco(tmp_path, [(1, 3, [-5, 20, 20, 20]), (1, 3, [10, 10, 0, 5]), (2, 5, [30, 0, 5, 5])])
    with pytest.warns(UserWarning) as record:
        src = CocoFolderSource(str(root), splits=("train",))
    text = " ".join(str(w.message) for w in record)
    assert "1 box(es) clipped to the image: a.png annotation 1" in text
    assert "2 box(es) dropped (zero width or height): a.png annotation 2, b.png annotation 3" in text
    a, b = _examples(src, "train")
    # x -5..15 -> 0..15 of 40; y 20..40 -> 20..30 of 30
    np.testing.assert_allclose(a["boxes"], [[20 / 30, 0, 1, 15 / 40]], rtol=1e-6)
    assert b["boxes"].shape == (0, 4)


@pytest.mark.parametrize("kwargs, message", [
    (dict(annotations=[(1, 9, [0, 0, 5, 5])]), "annotation 1 \\(image .*a.png'\\) has category id 9; expected one of \\[3, 5\\]"),
    (dict(annotations=[(4, 3, [0, 0, 5, 5])]), "annotation 1 refers to unknown image id 4"),
    (dict(annotations=[], sizes={"b.png": (21, 20)}), "b.png' is 21x20 but the JSON says 20x20"),
])
def test_coco_folder_inconsistencies_are_clear_errors(tmp_path, kwargs, message):
    root = _write_coco(tmp_path, **kwargs)
    with pytest.raises(DataError, match=message):
        CocoFolderSource(str(root), splits=("train",))


def test_coco_folder_missing_image_and_missing_json(tmp_path):
    root = _write_coco(tmp_path, [])
    (root / "train" / "b.png").unlink()
    with pytest.raises(DataError, match="image 'b.png' \\(id 2\\) not found"):
        CocoFolderSource(str(root), splits=("train",))
    with pytest.raises(DataError, match="no COCO annotations"):
        CocoFolderSource(str(tmp_path / "nothing"))


def test_flip_moves_boxes_by_hand():
    image = np.zeros((10, 20, 3), np.uint8)
    boxes = tf.constant([[0.1, 0.2, 0.5, 0.4]])
    for i in range(20):  # some seed flips
        _, out, _ = augment(image, boxes, tf.constant([1]), tf.constant([0, i]), "flip")
        if not np.allclose(out, boxes):
            np.testing.assert_allclose(out, [[0.1, 0.6, 0.5, 0.8]], rtol=1e-6)
            return
    pytest.fail("no seed flipped")


def test_ssd_crop_keeps_boxes_inside_and_handles_no_boxes():
    image = np.zeros((40, 40, 3), np.uint8)
    boxes = tf.constant([[0.1, 0.1, 0.4, 0.4], [0.5, 0.5, 0.9, 0.95]])
    for i in range(10):
        img, out, cls = augment(image, boxes, tf.constant([1, 2]), tf.constant([1, i]), "ssd")
        assert out.shape[0] == cls.shape[0] <= 2
        assert np.all(out.numpy() >= 0) and np.all(out.numpy() <= 1)
        assert np.all(out.numpy()[:, 2:] > out.numpy()[:, :2])
        img, out, cls = augment(image, tf.zeros([0, 4]), tf.zeros([0], tf.int32), tf.constant([2, i]), "ssd")
        assert out.shape == (0, 4) and img.shape[-1] == 3


def test_pipelines_pad_boxes_and_eval_batches():
    src = ShapesDetectionSource(num_train=8, num_eval=5, image_size=32, seed=1)
    images, targets = next(iter(detection_train_dataset(src, "train", batch_size=4, image_size=32, max_boxes=6)))
    assert images.shape == (4, 32, 32, 3) and targets["boxes"].shape == (4, 6, 4)
    batches = list(detection_eval_dataset(src, "test", batch_size=4, image_size=32, max_boxes=6))
    assert len(batches) == 2 and batches[1][2].numpy().tolist() == [1, 0, 0, 0]
    assert batches[0][1]["height"].numpy().tolist() == [32] * 4
    first = _examples(src, "test")[0]
    n = len(first["classes"])
    np.testing.assert_allclose(batches[0][1]["boxes"][0, :n], first["boxes"])
    assert batches[0][1]["classes"][0].numpy().tolist() == first["classes"].tolist() + [0] * (6 - n)


@pytest.mark.parametrize("name, builder", [("coco/2017", "coco/2017"), ("voc", "voc/2007")])
def test_tfds_sources_not_prepared_name_the_dataset(tmp_path, name, builder):
    from mnas_keras.training.data.detection import TFDSDetectionSource
    from mnas_keras.training.errors import DatasetNotPreparedError

    with pytest.raises(DatasetNotPreparedError, match=f"'{builder}' is not prepared in '{tmp_path}'"):
        TFDSDetectionSource(name, data_dir=str(tmp_path))
    with pytest.raises(DataError, match="unsupported detection dataset 'kitti'"):
        TFDSDetectionSource("kitti", data_dir=str(tmp_path))


def test_cli_task_detection_config():
    from mnas_keras.training.cli import build_config

    cfg = build_config(recipe="ssdlite_shapes", task="detection", dataset="coco_folder", data_dir="x",
                       overrides=["task.classification_loss=softmax"])
    assert cfg.task.name == "detection" and cfg.task.classification_loss == "softmax"
    assert cfg.task.match_iou == 0.5 and cfg.data.name == "coco_folder"
