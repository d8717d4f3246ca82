"""The training loop in-process: files and summaries, resume, faults, precision, XLA, fit."""

import io
import json
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from mnas_keras.training import (
    CheckpointError,
    ClassificationTask,
    ConfigError,
    NonFiniteLossError,
    Trainer,
    get_recipe,
    override,
    to_dict,
)
from mnas_keras.training.data import DigitsSource, train_dataset

BLOCKS = "r1_k3_s22_e1_i16_o16_se0.25,r1_k3_s22_e3_i16_o24"
TINY = [
    f"model.blocks={BLOCKS}", "model.dropout_rate=0.2", "data.augmentation=inception",
    "optimizer.ema_decay=0.9", "trainer.train_steps=10", "trainer.steps_per_loop=5",
    "trainer.checkpoint_every_steps=5", "trainer.eval_steps=2", "trainer.global_batch_size=32",
    "trainer.deterministic=true", "trainer.seed=3",
]


def tiny_config(*extra):
    return get_recipe("digits", TINY + list(extra))


def _weights(trainer):
    return [np.asarray(v.numpy()) for v in trainer.model.weights]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted 10-step run (checkpoints at 5 and 10, EMA, dropout, augmentation)."""
    model_dir = str(tmp_path_factory.mktemp("reference"))
    stream = io.StringIO()
    trainer = Trainer(tiny_config(), model_dir, stream=stream)
    result = trainer.train()
    return {"dir": model_dir, "trainer": trainer, "result": result, "log": stream.getvalue(),
            "weights": _weights(trainer), "ema": [a.numpy() for a in trainer.ema.averages],
            "optimizer": [np.asarray(v.numpy()) for v in trainer.optimizer.variables]}


def _copy(reference, tmp_path):
    target = str(tmp_path / "run")
    shutil.copytree(reference["dir"], target)
    return target


def _scalar_tags(directory):
    tags = set()
    for name in os.listdir(directory):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(directory, name)):
            tags.update(v.tag for v in event.summary.value)
    return tags


def test_run_writes_progress_checkpoints_summaries_metrics_config_and_export(reference):
    d, log = reference["dir"], reference["log"]
    assert "step 5/10 [" in log and "step 10/10 [" in log
    line = [x for x in log.splitlines() if x.startswith("step 10/10")][0]
    assert "loss " in line and "accuracy " in line and "img/s ETA 0:00:00" in line
    assert "saved checkpoint" in log and "final eval at step 10" in log
    assert tf.train.latest_checkpoint(d).endswith("ckpt-10") and os.path.exists(os.path.join(d, "ckpt-5.index"))
    metrics = json.load(open(os.path.join(d, "metrics.json")))
    assert metrics["step"] == 10 and metrics["ema"] is True and metrics["eval"]["examples"] == 64
    assert metrics["images_per_second"] > 0 and metrics["history"][-1]["step"] == 10
    assert json.load(open(os.path.join(d, "config.json"))) == json.loads(json.dumps(to_dict(tiny_config())))
    assert {"loss", "accuracy", "learning_rate", "images_per_second"} <= _scalar_tags(os.path.join(d, "train"))
    assert {"loss", "accuracy"} <= _scalar_tags(os.path.join(d, "eval"))
    # The export holds the averaged (EMA) weights and loads with safe_mode on.
    trainer = reference["trainer"]
    loaded = keras.saving.load_model(os.path.join(d, "model.keras"))
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    with trainer.ema.swapped():
        expected = trainer.model.predict(x, verbose=0)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(trainer.model.predict(x, verbose=0), expected, atol=1e-4)


def test_resume_with_other_steps_per_loop_gives_the_uninterrupted_weights(reference, tmp_path):
    d = str(tmp_path / "resumed")
    no_export = "trainer.export=false"  # the export does not touch the weights
    Trainer(tiny_config("trainer.train_steps=4", "trainer.steps_per_loop=1", no_export), d, stream=io.StringIO()).train()
    stream = io.StringIO()
    trainer = Trainer(tiny_config("trainer.steps_per_loop=3", no_export), d, stream=stream,
                      allow_changes=["trainer.train_steps"])
    trainer.train()
    assert "resumed from" in stream.getvalue() and "ckpt-4" in stream.getvalue()
    for got, want in zip(_weights(trainer), reference["weights"]):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(trainer.ema.averages, reference["ema"]):
        np.testing.assert_array_equal(got.numpy(), want)
    for got, want in zip(trainer.optimizer.variables, reference["optimizer"]):
        np.testing.assert_array_equal(np.asarray(got.numpy()), want)


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_checkpoint(reference, tmp_path):
    d = _copy(reference, tmp_path)
    config = tiny_config("trainer.train_steps=15", "schedule.base_learning_rate=1e30", "schedule.warmup_epochs=0")
    with pytest.raises(NonFiniteLossError) as info:
        Trainer(config, d, stream=io.StringIO(), allow_changes=["trainer.train_steps", "schedule"]).train()
    message = str(info.value)
    assert "training loss is nan" in message.lower() and "steps 11-15" in message
    assert "ckpt-10" in message and "kept" in message
    assert tf.train.latest_checkpoint(d).endswith("ckpt-10")
    assert not os.path.exists(os.path.join(d, "ckpt-15.index"))


def test_corrupt_checkpoint_is_a_clear_error(reference, tmp_path):
    d = _copy(reference, tmp_path)
    data = [f for f in os.listdir(d) if f.startswith("ckpt-10.data")][0]
    with open(os.path.join(d, data), "wb") as f:
        f.write(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"ckpt-10' is corrupt or unreadable"):
        Trainer(tiny_config(), d, stream=io.StringIO()).train()


def test_mismatched_checkpoint_is_a_clear_error(reference, tmp_path):
    d = _copy(reference, tmp_path)
    other = tiny_config("model.blocks=r1_k3_s22_e1_i16_o24")
    with pytest.raises(CheckpointError, match=r"holds checkpoints of a different run \(model.blocks"):
        Trainer(other, d, stream=io.StringIO()).train()
    os.remove(os.path.join(d, "config.json"))  # without the config, the variables still must match
    with pytest.raises(CheckpointError, match="does not match the model being trained"):
        Trainer(other, d, stream=io.StringIO()).train()


def test_xla_step_matches_the_plain_step(tmp_path):
    # Without dropout: XLA's stateless random numbers differ from the CPU kernels'.
    steps = ["trainer.train_steps=3", "trainer.steps_per_loop=3", "model.dropout_rate=0",
             "trainer.eval_steps=1", "trainer.export=false"]
    runs = []
    for jit in ("false", "true"):
        trainer = Trainer(tiny_config(*steps, f"trainer.jit_compile={jit}"), str(tmp_path / jit),
                          stream=io.StringIO())
        runs.append((trainer.train(), _weights(trainer)))
    (plain, plain_weights), (xla, xla_weights) = runs
    assert xla["train"]["loss"] == pytest.approx(plain["train"]["loss"], rel=1e-4)
    for a, b in zip(xla_weights, plain_weights):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_with_float32_weights(policy, tmp_path):
    trainer = Trainer(tiny_config("trainer.train_steps=2", f"trainer.mixed_precision={policy}",
                                  "trainer.eval_steps=1", "trainer.export=false"), str(tmp_path),
                      stream=io.StringIO())
    result = trainer.train()
    assert np.isfinite(result["train"]["loss"]) and np.isfinite(result["eval"]["loss"])
    conv = [layer for layer in trainer.model.layers if isinstance(layer, keras.layers.Conv2D)][0]
    assert conv.compute_dtype == policy.split("_")[1] and conv.kernel.dtype == "float32"
    assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer) == (policy == "mixed_float16")
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored


class HostAccuracyTask(ClassificationTask):
    """Pluggability: a task whose metric is computed on the host from gathered outputs."""

    host_outputs = True

    def eval_outputs(self, batch, outputs):
        _, labels, weights = batch
        return {"hit": tf.cast(tf.equal(tf.argmax(outputs, -1, output_type=tf.int32), labels), tf.float32),
                "weight": weights}

    def eval_begin(self):
        self.hits, self.count = 0.0, 0.0

    def eval_update(self, outputs):
        for replica in outputs:
            self.hits += float((replica["hit"] * replica["weight"]).sum())
            self.count += float(replica["weight"].sum())

    def eval_end(self):
        return {"host_accuracy": self.hits / self.count, "host_count": self.count}


def test_a_task_with_host_side_metrics_plugs_in(reference, tmp_path):
    d = _copy(reference, tmp_path)
    config = tiny_config("trainer.eval_steps=none")
    trainer = Trainer(config, d, task=HostAccuracyTask(config), stream=io.StringIO())
    assert trainer.step == 10  # restored
    result = trainer.evaluate()
    assert result["host_count"] == 360 == result["examples"]
    assert result["host_accuracy"] == pytest.approx(result["accuracy"])


def test_batch_larger_than_the_data_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="global_batch_size=4096 exceeds the 1437 training examples"):
        Trainer(tiny_config("trainer.global_batch_size=4096"), str(tmp_path)).train()


def test_model_fit_works_on_the_task_model_and_pipeline():
    config = tiny_config()
    model = ClassificationTask(config).build_model()
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    data = train_dataset(DigitsSource(), "train", batch_size=32, image_size=32, augmentation="none")
    history = model.fit(data, epochs=1, steps_per_epoch=5, verbose=0)
    assert np.isfinite(history.history["loss"][-1])


def test_digits_recipe_reaches_95_percent_test_accuracy(tmp_path):
    """The offline proof: the published recipe, shortened, on a MnasNet-family model.

    Seeded, with op determinism: one fixed outcome, measured here at 0.967 (348 of 360), six
    test images above the 95% target.
    """
    config = get_recipe("digits", ["trainer.export=false", "trainer.deterministic=true", "trainer.seed=0"])
    assert config.model.name == "mnasnet_small" and config.model.alpha == 0.5
    result = Trainer(config, str(tmp_path), stream=io.StringIO()).train()
    assert result["eval"]["examples"] == 360
    assert result["eval"]["accuracy"] >= 0.95, result["eval"]


def test_fine_tuning_starts_from_init_weights_with_a_new_classifier(reference, tmp_path):
    source = str(tmp_path / "pretrained.weights.h5")
    reference["trainer"].model.save_weights(source)
    config = tiny_config(f"model.init_weights={source}", "task.num_classes=12")
    trainer = Trainer(config, str(tmp_path / "finetune"), stream=io.StringIO())
    trainer._build()
    got = {v.path: np.asarray(v.numpy()) for v in trainer.model.weights}
    want = {v.path: np.asarray(v.numpy()) for v in reference["trainer"].model.weights}
    differ = {p for p in want if not (p in got and got[p].shape == want[p].shape and np.array_equal(got[p], want[p]))}
    assert sorted(p for p in differ if "seed_generator" not in p) == ["predictions/bias", "predictions/kernel"]
    assert trainer.model.output_shape == (None, 12)
    with pytest.raises(ConfigError, match="init_weights .* does not exist"):
        Trainer(tiny_config("model.init_weights=/nope.weights.h5"), str(tmp_path / "x"))._build()
