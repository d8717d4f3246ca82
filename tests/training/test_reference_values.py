"""Training against independent right values: hand-computed losses and weight decay, the
variable list of a nested model, strict checkpoint restores and resumed fine-tuning."""

import io
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from mnas_keras.training import CheckpointError, ClassificationTask, Trainer, get_recipe
from mnas_keras.training.checkpoints import TrainState
from mnas_keras.training.optim import decay_variables, l2_weight_decay

BLOCKS = "r1_k3_s22_e1_i16_o16_se0.25"


def test_label_smoothed_cross_entropy_by_hand():
    task = ClassificationTask(get_recipe("digits", ["task.num_classes=4", "task.label_smoothing=0.1"]))
    logits = np.log(np.array([[1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0]], "float32"))  # softmax 0.1..0.4
    loss = task.per_example_loss(tf.constant([3, 3]), tf.constant(logits)).numpy()
    # Smoothed target: 0.9 * one_hot + 0.1 / 4 = (0.025, 0.025, 0.025, 0.925).
    first = -(0.025 * (math.log(0.1) + math.log(0.2) + math.log(0.3)) + 0.925 * math.log(0.4))
    second = -(0.025 * (math.log(0.4) + math.log(0.3) + math.log(0.2)) + 0.925 * math.log(0.1))
    np.testing.assert_allclose(loss, [first, second], rtol=1e-5)
    plain = ClassificationTask(get_recipe("digits", ["task.num_classes=4", "task.label_smoothing=0"]))
    np.testing.assert_allclose(plain.per_example_loss(tf.constant([3]), tf.constant(logits[:1])).numpy(),
                               [-math.log(0.4)], rtol=1e-5)


def _inner():
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.Conv2D(3, 3, padding="same", name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, x, name="inner")


def test_decay_variables_of_a_nested_model_skip_its_batch_norm():
    inputs = keras.Input((4, 4, 2))
    x = _inner()(inputs)
    x = keras.layers.BatchNormalization(name="outer_bn")(x)
    outputs = keras.layers.Dense(2, name="fc")(x)
    model = keras.Model(inputs, outputs, name="outer")
    paths = sorted(v.path for v in decay_variables(model))
    assert paths == ["conv/bias", "conv/kernel", "fc/bias", "fc/kernel"]


def test_l2_weight_decay_by_hand_and_against_tf_nn_l2_loss():
    a = keras.Variable(np.array([[1.0, -2.0], [0.5, 0.0]], "float32"))
    b = keras.Variable(np.array([3.0], "float32"))
    # TF1: rate * sum(l2_loss(w)) = rate * sum(w**2) / 2 = 0.1 * (1 + 4 + 0.25 + 9) / 2.
    assert float(l2_weight_decay([a, b], 0.1)) == pytest.approx(0.7125, rel=1e-6)
    tf1 = 0.1 * (tf.nn.l2_loss(a.value) + tf.nn.l2_loss(b.value))
    assert float(l2_weight_decay([a, b], 0.1)) == pytest.approx(float(tf1), rel=1e-6)
    assert float(l2_weight_decay([a, b], 0.0)) == 0.0


def _saved_state(tmp_path, layers):
    model = keras.Sequential([keras.Input((3,))] + layers)
    manager = tf.train.CheckpointManager(TrainState(model).checkpoint, str(tmp_path), max_to_keep=1)
    return manager.save(checkpoint_number=0)


def test_restoring_another_architecture_raises(tmp_path):
    deeper = _saved_state(tmp_path / "deeper", [keras.layers.Dense(2), keras.layers.Dense(5)])
    shallow = TrainState(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]))
    with pytest.raises(CheckpointError, match="does not match the model being trained"):
        shallow.restore(deeper)  # a partial restore: the shallow model's variables all exist
    narrower = _saved_state(tmp_path / "narrow", [keras.layers.Dense(2)])
    wider = TrainState(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.Dense(5)]))
    with pytest.raises(CheckpointError, match="does not match the model being trained"):
        wider.restore(narrower)  # the new model's last layer would keep random weights
    same = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    TrainState(same).restore(narrower)


def test_resumed_fine_tuning_ends_with_the_checkpoint_weights(tmp_path):
    options = [f"model.blocks={BLOCKS}", "trainer.train_steps=2", "trainer.steps_per_loop=2",
               "trainer.eval_steps=1", "trainer.global_batch_size=16", "trainer.export=false",
               "trainer.progress=false", "optimizer.ema_decay=0.5", "schedule.warmup_epochs=0"]
    pretrained = Trainer(get_recipe("digits", options), str(tmp_path / "pre"), stream=io.StringIO())
    pretrained._build()
    source = str(tmp_path / "pretrained.weights.h5")
    pretrained.model.save_weights(source)
    config = get_recipe("digits", options + [f"model.init_weights={source}"])
    first = Trainer(config, str(tmp_path / "fine"), stream=io.StringIO())
    first.train()
    trained = [np.asarray(v.numpy()) for v in first.model.weights]
    initial = [np.asarray(v.numpy()) for v in pretrained.model.weights]
    assert any(not np.array_equal(a, b) for a, b in zip(trained, initial))
    resumed = Trainer(config, str(tmp_path / "fine"), stream=io.StringIO())
    resumed._build()
    assert resumed.restored_from.endswith("ckpt-2")
    # The checkpoint's counters: 2 steps, epoch 2 // (1437 // 16 = 89 steps per epoch) = 0.
    stored = dict(tf.train.list_variables(resumed.restored_from))
    assert "step/.ATTRIBUTES/VARIABLE_VALUE" in stored and "epoch/.ATTRIBUTES/VARIABLE_VALUE" in stored
    assert tf.train.load_variable(resumed.restored_from, "step/.ATTRIBUTES/VARIABLE_VALUE") == 2
    assert tf.train.load_variable(resumed.restored_from, "epoch/.ATTRIBUTES/VARIABLE_VALUE") == 0
    for got, want in zip(resumed.model.weights, trained):
        np.testing.assert_array_equal(np.asarray(got.numpy()), want)
    for got, want in zip(resumed.ema.averages, first.ema.averages):
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_pipeline_normalization_published_values():
    from mnas_keras.training.data.preprocessing import normalize

    image = tf.constant([[[123.675, 116.28, 103.53], [255.0, 255.0, 255.0], [0.0, 127.5, 255.0]]])
    imagenet = normalize(image, "imagenet_mean_std").numpy()[0]
    np.testing.assert_allclose(imagenet[0], [0.0, 0.0, 0.0], atol=1e-5)
    np.testing.assert_allclose(imagenet[1], [131.325 / 58.395, 138.72 / 57.12, 151.47 / 57.375], rtol=1e-5)
    np.testing.assert_allclose(normalize(image, "scale_-1_1").numpy()[0, 2], [-1.0, 0.0, 1.0], atol=1e-6)
    np.testing.assert_array_equal(normalize(image, "none").numpy(), image.numpy())


def test_center_crop_is_tensorflow_tpu_s_window():
    from mnas_keras.training.data.preprocessing import center_crop

    # tensorflow/tpu: crop = int(size / (size + padding) * min(h, w)) = int(0.5 * 42) = 21,
    # top = (42 - 21 + 1) // 2 = 11, left = (61 - 21 + 1) // 2 = 20; a same-size resize is exact.
    image = np.random.default_rng(0).integers(0, 256, (42, 61, 3)).astype(np.uint8)
    crop = center_crop(tf.constant(image), 21, crop_padding=21).numpy()
    np.testing.assert_allclose(crop, image[11:32, 20:41].astype(np.float32), atol=1e-3)


def test_resuming_with_another_image_size_or_model_is_refused(tmp_path):
    from mnas_keras.training.checkpoints import check_run_config, write_run_config

    stored = get_recipe("digits", ["data.image_size=32"])
    write_run_config(str(tmp_path), stored)
    check_run_config(str(tmp_path), get_recipe("digits", ["data.image_size=32", "trainer.epochs=3"]), True, ("trainer.epochs",))
    with pytest.raises(CheckpointError, match=r"data.image_size: 32 -> 64"):
        check_run_config(str(tmp_path), get_recipe("digits", ["data.image_size=64"]), True)
    with pytest.raises(CheckpointError, match=r"model.alpha: 0.5 -> 1.0"):
        check_run_config(str(tmp_path), get_recipe("digits", ["model.alpha=1.0"]), True)
    check_run_config(str(tmp_path), get_recipe("digits", ["data.image_size=64"]), False)  # no checkpoint yet


def test_classification_metrics_by_hand():
    task = ClassificationTask(get_recipe("digits", ["task.num_classes=6", "task.top_k=2"]))
    logits = tf.constant([[5.0, 4, 0, 0, 0, 0], [5, 4, 0, 0, 0, 0], [5, 4, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1]])
    labels = tf.constant([0, 1, 2, 5])  # top-1: rows 0 and 3; top-2: rows 0, 1 and 3
    sums = {k: float(v) for k, v in task.metric_sums(labels, logits, None).items()}
    assert sums == {"correct": 2.0, "count": 4.0, "top2_correct": 3.0}
    weighted = task.metric_sums(labels, logits, tf.constant([1.0, 0.0, 1.0, 1.0]))
    assert {k: float(v) for k, v in weighted.items()} == {"correct": 2.0, "count": 3.0, "top2_correct": 2.0}
    # Sums over 2 steps of 20 examples: the loss is per step, the rates per example.
    train = task.summarize({"loss": 6.0, "correct": 30.0, "count": 40.0, "top2_correct": 38.0}, num_steps=2, training=True)
    assert train == {"loss": 3.0, "accuracy": 0.75, "top2_accuracy": 0.95}
    evaluation = task.summarize({"loss_sum": 20.0, "correct": 30.0, "count": 40.0}, num_steps=2, training=False)
    assert evaluation == {"loss": 0.5, "accuracy": 0.75, "examples": 40}
