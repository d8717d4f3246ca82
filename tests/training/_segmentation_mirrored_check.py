"""Segmentation under MirroredStrategy (2 logical CPUs) against one device (fresh process).

Run by ``test_segmentation_training.py`` with ``python``; prints one JSON line.
"""

import json
import os
import sys
import tempfile

SEG_TINY = [
    "model.blocks=r1_k3_s22_e1_i16_o16,r1_k3_s22_e3_i16_o24,r1_k3_s22_e3_i24_o32,r1_k3_s22_e3_i32_o48",
    "model.sync_batch_norm=true", "task.filters=16", "task.num_visuals=0", "data.image_size=32",
    "trainer.train_steps=4", "trainer.steps_per_loop=2", "trainer.global_batch_size=8",
    "trainer.eval_steps=2", "trainer.eval_batch_size=4", "trainer.deterministic=true",
    "trainer.progress=false", "trainer.export=false", "optimizer.ema_decay=0.9",
    "optimizer.clipnorm=1.0", "schedule.warmup_epochs=0",
]


def main(out_dir: str) -> dict:
    from mnas_keras.training.strategy import configure_logical_cpus

    configure_logical_cpus(2)
    import numpy as np

    from mnas_keras.training import Trainer, create_strategy, get_recipe

    config = get_recipe("lraspp_shapes", SEG_TINY)
    runs = {}
    for name, strategy in (
        ("one_device", create_strategy("one_device", devices="/cpu:0")),
        ("mirrored", create_strategy("mirrored", devices="/cpu:0,/cpu:1")),
    ):
        trainer = Trainer(config, os.path.join(out_dir, name), strategy=strategy)
        result = trainer.train()
        runs[name] = {
            "replicas": strategy.num_replicas_in_sync,
            "weights": [np.asarray(v.numpy()) for v in trainer.model.weights],
            "train_loss": result["train"]["loss"],
            "eval": result["eval"],
        }
    one, mirrored = runs["one_device"], runs["mirrored"]
    return {
        "replicas": [one["replicas"], mirrored["replicas"]],
        "weight_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(one["weights"], mirrored["weights"])),
        "max_weight": max(float(np.max(np.abs(a))) for a in one["weights"]),
        "train_loss": [one["train_loss"], mirrored["train_loss"]],
        "eval": [one["eval"], mirrored["eval"]],
    }


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        print("RESULT " + json.dumps(main(sys.argv[1] if len(sys.argv) > 1 else tmp)))
