"""Segmentation in the training loop: resume, MirroredStrategy, CLI errors."""

import io
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from mnas_keras.heads import LRASPP
from mnas_keras.training import Trainer, get_recipe
from mnas_keras.training.cli import build_config
from mnas_keras.training.config import SegmentationConfig
from tests.training._mirrored_checks import SEG_TINY

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
TINY = [x for x in SEG_TINY if not x.startswith("model.sync_batch_norm")] + [
    "trainer.checkpoint_every_steps=2", "trainer.steps_per_loop=2", "task.num_visuals=2",
    "trainer.export=true",
    "schedule.name=exponential",  # a cosine schedule would depend on the first run's length
]


def _weights(trainer):
    return [np.asarray(v.numpy()) for v in trainer.model.weights]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("seg_reference"))
    trainer = Trainer(get_recipe("lraspp_shapes", TINY), model_dir, stream=io.StringIO())
    result = trainer.train()
    return {"dir": model_dir, "trainer": trainer, "result": result, "weights": _weights(trainer),
            "ema": [a.numpy() for a in trainer.ema.averages]}


def test_run_writes_metrics_visuals_and_a_safe_mode_export(reference):
    d, result = reference["dir"], reference["result"]
    assert set(result["eval"]) >= {"miou", "pixel_accuracy", "loss", "examples"}
    assert result["eval"]["examples"] == 8  # eval_steps 2 x eval batch 4
    # overlay PNGs: image | ground truth | prediction side by side
    assert len(result["visuals"]) == 2
    panel = tf.io.decode_png(tf.io.read_file(result["visuals"][0])).numpy()
    assert panel.shape == (64, 3 * 64, 3)
    tags = set()
    for name in os.listdir(os.path.join(d, "eval")):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(d, "eval", name)):
            tags.update(v.tag for v in event.summary.value)
    assert {"segmentation/overlays", "miou", "pixel_accuracy"} <= tags
    loaded = keras.saving.load_model(os.path.join(d, "model.keras"), safe_mode=True)
    assert isinstance(loaded, LRASPP)
    x = np.random.default_rng(0).uniform(0, 255, (1, 40, 56, 3)).astype("float32")
    with reference["trainer"].ema.swapped():
        expected = reference["trainer"].model.predict(x, verbose=0)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-5)


def test_resume_gives_the_uninterrupted_weights(reference, tmp_path):
    d = str(tmp_path / "resumed")
    split = TINY + ["trainer.export=false", "task.num_visuals=0"]  # neither touches the weights
    Trainer(get_recipe("lraspp_shapes", split + ["trainer.train_steps=2"]), d, stream=io.StringIO()).train()
    stream = io.StringIO()
    trainer = Trainer(get_recipe("lraspp_shapes", split + ["trainer.steps_per_loop=1"]), d, stream=stream,
                      allow_changes=("trainer.train_steps",))
    trainer.train()
    assert trainer.restored_from.endswith("ckpt-2")
    for got, want in zip(_weights(trainer), reference["weights"]):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(trainer.ema.averages, reference["ema"]):
        np.testing.assert_array_equal(got.numpy(), want)


def test_mirrored_two_logical_cpus_equals_one_device(mirrored_results):
    # a fresh process with two logical CPUs (tests/training/_mirrored_checks.py)
    r = mirrored_results["segmentation"]
    assert r["replicas"] == [1, 2]
    assert r["weight_diff"] <= 1e-5 * max(1.0, r["max_weight"]), r
    one, mirrored = r["train_loss"]
    assert abs(one - mirrored) <= 1e-5 * abs(one)
    # The confusion counts are summed over replicas: the same pixels, the same metric.
    a, b = r["eval"]
    assert a["examples"] == b["examples"] == 8
    assert abs(a["miou"] - b["miou"]) <= 1e-6 and abs(a["pixel_accuracy"] - b["pixel_accuracy"]) <= 1e-6


def test_cli_task_flag_and_bad_dataset_error(tmp_path):
    config = build_config(recipe="digits", task="segmentation", dataset="shapes")
    assert isinstance(config.task, SegmentationConfig)
    proc = subprocess.run(
        [sys.executable, "-m", "mnas_keras.training.cli", "--recipe=lraspp_shapes", "--dataset=digits",
         f"--model_dir={tmp_path}", "--train_steps=1"],
        capture_output=True, text=True, timeout=120, env=ENV,
    )
    assert proc.returncode == 2
    assert "mnas-train: error: unknown segmentation dataset 'digits'" in proc.stderr
    assert "Traceback" not in proc.stderr


LEARN = [  # the lraspp_shapes recipe, shortened from 372 to 150 steps
    "task.num_visuals=0", "trainer.train_steps=150", "trainer.steps_per_loop=50",
    "trainer.progress=false", "trainer.export=false", "trainer.deterministic=true",
]


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    """150 steps (2,400 crops) of a 7-block ReLU backbone with LR-ASPP on generated shapes."""
    trainer = Trainer(get_recipe("lraspp_shapes", LEARN), str(tmp_path_factory.mktemp("learn")))
    untrained = trainer.evaluate()
    result = trainer.train()
    return {"trainer": trainer, "untrained": untrained, "trained": result["eval"]}


def test_short_training_beats_untrained_and_every_constant_predictor(learned):
    from mnas_keras.training.data.segmentation_data import ShapesSource

    _, masks = ShapesSource().arrays("test")
    labelled = masks[masks != 255]
    # A constant prediction of class c has IoU_c = share of c and IoU 0 elsewhere; the best
    # one (background) therefore scores max share / 4 (~0.2). An untrained model scores
    # about 0.03 here. Beating the best constant predictor by 0.05 needs the model to find
    # shapes; IoU > 0.1 on discs needs it to tell one shape class apart.
    best_constant = max(np.mean(labelled == c) for c in range(4)) / 4
    trained, untrained = learned["trained"], learned["untrained"]
    assert trained["miou"] > best_constant + 0.05, (trained, best_constant)
    assert trained["miou"] > untrained["miou"] + 0.15
    assert trained["iou/disc"] > 0.1


def test_int8_miou_within_one_point_of_float(learned):
    from mnas_keras.tflite import convert, run_tflite
    from mnas_keras.training.data.segmentation_data import ShapesSource
    from mnas_keras.training.tasks.segmentation import confusion_sums, miou_from_sums

    model = learned["trainer"].model
    source = ShapesSource()
    calibration = source.arrays("train")[0][:64].astype("float32")
    images, masks = source.arrays("test")
    images = images.astype("float32")
    scores = {}
    for name, quantization in (("float", None), ("int8", "int8")):
        fb = convert(model, quantization, representative_data=calibration if quantization else None,
                     input_shape=(64, 64, 3))
        logits = run_tflite(fb, images, batch_size=50)[0]
        sums = {k: float(v) for k, v in confusion_sums(masks, logits, 4).items()}
        scores[name] = miou_from_sums(sums, 4)[0]
    assert abs(scores["float"] - learned["trained"]["miou"]) < 1e-3  # LiteRT float = Keras
    assert abs(scores["int8"] - scores["float"]) < 0.01, scores


def test_mixed_precision_segmentation_trains_with_float32_logits(tmp_path):
    trainer = Trainer(get_recipe("lraspp_shapes", TINY + [
        "trainer.mixed_precision=mixed_float16", "trainer.train_steps=2", "trainer.export=false",
        "task.num_visuals=0"]), str(tmp_path))
    result = trainer.train()
    assert np.isfinite(result["train"]["loss"]) and np.isfinite(result["eval"]["loss"])
    assert trainer.model.output.dtype == "float32"
    assert all(v.dtype == "float32" for v in trainer.model.trainable_variables)
    assert trainer.model.get_layer("lraspp_cbr_conv").compute_dtype == "float16"
