"""MirroredStrategy over two logical CPUs against one device, for the three tasks, in one
fresh process (run as a script; importing it does nothing but define ``SEG_TINY``).

Logical devices must be configured before TensorFlow initializes its devices, so the
session fixture ``mirrored_results`` (tests/training/conftest.py) runs this file once with
``python`` and ``test_distribute.py``, ``test_detection_task.py`` and
``test_segmentation_training.py`` each check their part. Prints one JSON line:
``RESULT {"classification": ..., "detection": ..., "segmentation": ...}``.

One MirroredStrategy serves every comparison: a second one in the same process restarts
TensorFlow's collective keys and collides with the first one's collectives
(tensorflow/tensorflow#62790).
"""

import io
import json
import os
import sys
import tempfile

import numpy as np

BLOCKS = "r1_k3_s22_e1_i16_o16_se0.25,r1_k3_s22_e3_i16_o24"
SEG_TINY = [
    "model.blocks=r1_k3_s22_e1_i16_o16,r1_k3_s22_e3_i16_o24,r1_k3_s22_e3_i24_o32,r1_k3_s22_e3_i32_o48",
    "model.sync_batch_norm=true", "task.filters=16", "task.num_visuals=0", "data.image_size=32",
    "trainer.train_steps=4", "trainer.steps_per_loop=2", "trainer.global_batch_size=8",
    "trainer.eval_steps=2", "trainer.eval_batch_size=4", "trainer.deterministic=true",
    "trainer.progress=false", "trainer.export=false", "optimizer.ema_decay=0.9",
    "optimizer.clipnorm=1.0", "schedule.warmup_epochs=0",
]


def _max_diff(a, b):
    return max([float(np.max(np.abs(x - y))) for x, y in zip(a, b)] or [0.0])


def _run(config, out_dir, strategy, task=None):
    """Trains one run; returns its replicas, weights, EMA, losses, eval and largest step."""
    from mnas_keras.training import Trainer

    trainer = Trainer(config, out_dir, task=task, strategy=strategy, stream=io.StringIO())
    trainer._build()
    initial = [np.asarray(v.numpy()) for v in trainer.model.trainable_weights]
    result = trainer.train()
    final = [np.asarray(v.numpy()) for v in trainer.model.trainable_weights]
    return trainer, {
        "replicas": strategy.num_replicas_in_sync,
        "weights": [np.asarray(v.numpy()) for v in trainer.model.weights],
        "ema": [np.asarray(v.numpy()) for v in trainer.ema.averages] if trainer.ema else [],
        "train_loss": result["train"]["loss"],
        "eval": result["eval"],
        "moved": _max_diff(initial, final),
    }


def _compare(one, two):
    return {
        "replicas": [one["replicas"], two["replicas"]],
        "weight_diff": _max_diff(one["weights"], two["weights"]),
        "ema_diff": _max_diff(one["ema"], two["ema"]),
        "max_weight": max(float(np.max(np.abs(a))) for a in one["weights"]),
        "train_loss": [one["train_loss"], two["train_loss"]],
        "eval": [one["eval"], two["eval"]],
        "moved": one["moved"],
    }


def classification(out_dir, mirrored):
    from mnas_keras.training import create_strategy, get_recipe, override

    base = get_recipe("digits", [
        f"model.blocks={BLOCKS}", "model.sync_batch_norm=true", "model.dropout_rate=0",
        "data.augmentation=inception", "trainer.train_steps=4", "trainer.steps_per_loop=2",
        "trainer.global_batch_size=16", "trainer.eval_steps=2", "trainer.deterministic=true",
        "trainer.progress=false", "trainer.export=false", "optimizer.ema_decay=0.9",
        "optimizer.clipnorm=0.5", "schedule.warmup_epochs=0",
    ])
    # Two settings, each on one device and mirrored over two replicas: plain SGD without
    # clipping (a loss or weight decay divided by the per-replica batch, or not divided by
    # the replica count, shows as 2x gradients and steps; weight decay 0.1 makes it visible), and
    # the recipe's RMSProp with clipping of the cross-replica gradient sum and EMA.
    variants = {
        "plain": override(base, ["optimizer.name=sgd", "optimizer.clipnorm=null",
                                 "optimizer.ema_decay=null", "optimizer.weight_decay=0.1"]),
        "clipped": base,
    }
    comparisons = {}
    for variant, config in variants.items():
        _, one = _run(config, os.path.join(out_dir, variant, "one"), create_strategy("one_device", devices="/cpu:0"))
        _, two = _run(config, os.path.join(out_dir, variant, "two"), mirrored)
        comparisons[variant] = _compare(one, two)
    # Without synchronized batch norm, each replica normalizes its own half; the trainer
    # must still keep every replica's copy of the moving statistics identical.
    trainer, _ = _run(override(base, ["model.sync_batch_norm=false"]), os.path.join(out_dir, "unsynced"), mirrored)
    stats = [v for v in trainer.model.non_trainable_variables if "float" in str(v.dtype)]
    comparisons["bn_stats_replica_gap"] = max(
        float(np.max(np.abs(v.value.values[0].numpy() - v.value.values[1].numpy()))) for v in stats)
    comparisons["bn_stats_count"] = len(stats)
    comparisons["bn_stats_max"] = max(float(np.max(np.abs(v.value.values[0].numpy()))) for v in stats)
    return comparisons


def detection(out_dir, mirrored):
    from mnas_keras.training import create_strategy
    from mnas_keras.training.tasks.detection import DetectionTask
    from tests.training._detection_helpers import shapes, tiny_config, tiny_detector

    config = tiny_config("model.sync_batch_norm=true", "trainer.eval_steps=none", "task.score_threshold=1e-8")

    def model_fn():
        model = tiny_detector()
        for layer in model._flatten_layers(include_self=False):
            if layer.__class__.__name__ == "BatchNormalization":
                layer.synchronized = True
        return model

    runs = [_run(config, os.path.join(out_dir, name), strategy,
                 task=DetectionTask(config, source=shapes(), model_fn=model_fn))[1]
            for name, strategy in (("one", create_strategy("one_device", devices="/cpu:0")), ("two", mirrored))]
    return _compare(*runs)


def segmentation(out_dir, mirrored):
    from mnas_keras.training import create_strategy, get_recipe

    config = get_recipe("lraspp_shapes", SEG_TINY)
    runs = [_run(config, os.path.join(out_dir, name), strategy)[1]
            for name, strategy in (("one", create_strategy("one_device", devices="/cpu:0")), ("two", mirrored))]
    return _compare(*runs)


def main(out_dir: str) -> dict:
    from mnas_keras.training.strategy import configure_logical_cpus

    configure_logical_cpus(2)
    from mnas_keras.training import create_strategy

    mirrored = create_strategy("mirrored", devices="/cpu:0,/cpu:1")
    return {task.__name__: task(os.path.join(out_dir, task.__name__), mirrored)
            for task in (classification, detection, segmentation)}


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    with tempfile.TemporaryDirectory() as tmp:
        print("RESULT " + json.dumps(main(sys.argv[1] if len(sys.argv) > 1 else tmp)))
