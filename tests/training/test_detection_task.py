"""The detection task in the training loop: finite losses, resume, learning, mirrored (subprocess)."""

import io
import math
import pathlib

import numpy as np
import tensorflow as tf

from mnas_keras.training import Trainer
from mnas_keras.training.tasks.detection import DetectionTask
from tests.training._detection_helpers import EmptySource, shapes, tiny_config, tiny_detector, trained_shapes_detector


def _trainer(config, model_dir, source, allow_changes=()):
    task = DetectionTask(config, source=source, model_fn=tiny_detector)
    return Trainer(config, str(model_dir), task=task, stream=io.StringIO(), allow_changes=allow_changes)


def test_images_without_boxes_give_finite_losses(tmp_path):
    result = _trainer(tiny_config(), tmp_path, EmptySource()).train()
    assert math.isfinite(result["train"]["loss"]) and result["train"]["loss"] > 0
    assert math.isfinite(result["eval"]["loss"])
    assert result["eval"]["mAP"] == 0.0  # nothing to find: pycocotools is not even asked


def test_resume_gives_the_uninterrupted_weights_and_visuals_are_written(tmp_path):
    source = shapes()
    whole = _trainer(tiny_config("task.num_visuals=2"), tmp_path / "whole", source)
    visuals = whole.train()["visuals"]
    # image | true boxes (green) | predictions (red), at the 32-pixel input size
    assert [pathlib.Path(p).name for p in visuals] == ["step_4_0.png", "step_4_1.png"]
    panel = tf.io.decode_png(tf.io.read_file(visuals[0])).numpy()
    assert panel.shape == (32, 96, 3)
    box = next(iter(source.dataset("test")))["boxes"][0].numpy()  # the first test image's first box
    y0, x0 = round(float(box[0]) * 32), round(float(box[1]) * 32)
    assert panel[y0, 32 + x0].tolist() == [0, 255, 0]
    tags = set()
    for event_file in (tmp_path / "whole" / "eval").iterdir():
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            tags.update(v.tag for v in event.summary.value)
    assert "detection/boxes" in tags
    _trainer(tiny_config("trainer.train_steps=2"), tmp_path / "split", shapes()).train()
    resumed = _trainer(tiny_config(), tmp_path / "split", shapes(), allow_changes=("trainer.train_steps",))
    resumed.train()
    assert resumed.restored_from.endswith("ckpt-2")
    for a, b in zip(whole.model.weights, resumed.model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(whole.ema.averages, resumed.ema.averages):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_mirrored_two_logical_cpus_equals_one_device(mirrored_results):
    # a fresh process with two logical CPUs (tests/training/_mirrored_checks.py)
    r = mirrored_results["detection"]
    assert r["replicas"] == [1, 2]
    assert r["weight_diff"] <= 1e-5 * max(1.0, r["max_weight"]), r
    one, two = r["train_loss"]
    assert abs(one - two) <= 1e-5 * abs(one)
    # the same detections reach pycocotools from one and from two replicas
    assert r["eval"][0]["examples"] == r["eval"][1]["examples"] == 8
    assert abs(r["eval"][0]["mAP@0.5"] - r["eval"][1]["mAP@0.5"]) <= 1e-6


def test_a_short_run_finds_the_shapes_it_trained_on():
    # SSDLite MobileNetV3-Small, 80 steps of batch 16 on 32 generated 64x64 images, evaluated
    # on the same images (this checks that loss, matching, decoding and the evaluator agree,
    # not generalization). Measured here: untrained 0.0005 mAP@.5 (score threshold 1e-8, so
    # every anchor is scored), trained 0.28. 0.1 is 200x the untrained value: reaching it
    # needs the right class and an IoU >= 0.5 box for a good share of the objects.
    run = trained_shapes_detector()
    untrained, trained = run["untrained"]["mAP@0.5"], run["trained"]["mAP@0.5"]
    assert untrained < 0.01 and trained > 0.1, (untrained, trained)
