"""MirroredStrategy over two logical CPUs against one device (run as a script, fresh process).

Logical devices must be configured before TensorFlow initializes its devices, so
``test_distribute.py`` runs this file with ``python``; importing it does nothing.
Prints one JSON line with the comparisons.
"""

import json
import os
import sys
import tempfile

BLOCKS = "r1_k3_s22_e1_i16_o16_se0.25,r1_k3_s22_e3_i16_o24"


def main(out_dir: str) -> dict:
    from mnas_keras.training.strategy import configure_logical_cpus

    configure_logical_cpus(2)
    import numpy as np

    from mnas_keras.training import Trainer, create_strategy, get_recipe, override

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
    # One MirroredStrategy per process: a second one restarts TensorFlow's collective keys
    # and collides with the first one's collectives (tensorflow/tensorflow#62790).
    mirrored_strategy = create_strategy("mirrored", devices="/cpu:0,/cpu:1")
    comparisons = {}
    for variant, config in variants.items():
        runs = {}
        for name, strategy in (
            ("one_device", create_strategy("one_device", devices="/cpu:0")),
            ("mirrored", mirrored_strategy),
        ):
            trainer = Trainer(config, os.path.join(out_dir, variant, name), strategy=strategy)
            trainer._build()
            initial = [np.asarray(v.numpy()) for v in trainer.model.trainable_weights]
            result = trainer.train()
            final = [np.asarray(v.numpy()) for v in trainer.model.trainable_weights]
            runs[name] = {
                "replicas": strategy.num_replicas_in_sync,
                "weights": [np.asarray(v.numpy()) for v in trainer.model.weights],
                "ema": [np.asarray(v.numpy()) for v in trainer.ema.averages] if trainer.ema else [],
                "train_loss": result["train"]["loss"],
                "eval": result["eval"],
                "moved": max(float(np.max(np.abs(a - b))) for a, b in zip(initial, final)),
            }
        one, mirrored = runs["one_device"], runs["mirrored"]
        comparisons[variant] = {
            "replicas": [one["replicas"], mirrored["replicas"]],
            "weight_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(one["weights"], mirrored["weights"])),
            "ema_diff": max([float(np.max(np.abs(a - b))) for a, b in zip(one["ema"], mirrored["ema"])] or [0.0]),
            "max_weight": max(float(np.max(np.abs(a))) for a in one["weights"]),
            "train_loss": [one["train_loss"], mirrored["train_loss"]],
            "eval": [one["eval"], mirrored["eval"]],
            "moved": one["moved"],
        }

    # Without synchronized batch norm, each replica normalizes its own half; the trainer
    # must still keep every replica's copy of the moving statistics identical.
    unsynced = override(base, ["model.sync_batch_norm=false"])
    trainer = Trainer(unsynced, os.path.join(out_dir, "unsynced"), strategy=mirrored_strategy)
    trainer.train()
    stats = [v for v in trainer.model.non_trainable_variables if "float" in str(v.dtype)]
    replica_gap = max(
        float(np.max(np.abs(v.value.values[0].numpy() - v.value.values[1].numpy()))) for v in stats
    )
    stats_moved = max(float(np.max(np.abs(v.value.values[0].numpy()))) for v in stats)
    return {
        **comparisons,
        "bn_stats_replica_gap": replica_gap,
        "bn_stats_count": len(stats),
        "bn_stats_max": stats_moved,
    }


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        print("RESULT " + json.dumps(main(sys.argv[1] if len(sys.argv) > 1 else tmp)))
