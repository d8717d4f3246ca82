"""``mnas-train --task=detection`` in real processes: kill -9 mid-run, rerun, same weights as uninterrupted."""

import sys

from mnas_keras.training.cli import build_config
from tests.training._kill_harness import kill_then_rerun_beside_uninterrupted

# SSDLite MobileNetV3-Small at 32x32 on the generated shapes, with SSD augmentation and EMA
OVERRIDES = [
    "data.image_size=32", "task.augmentation=ssd", "task.num_visuals=0", "optimizer.ema_decay=0.9",
    "trainer.steps_per_loop=1", "trainer.checkpoint_every_steps=2", "trainer.global_batch_size=8",
    "trainer.eval_steps=1", "trainer.export=false", "task.extra_filters=16,8,8,8", "schedule.warmup_epochs=0",
]


def _command(model_dir):
    return [
        sys.executable, "-m", "mnas_keras.training.cli", "--recipe=ssdlite_shapes", "--task=detection",
        f"--model_dir={model_dir}", "--train_steps=6", "--deterministic", "--seed=5",
        *(f"--overrides={o}" for o in OVERRIDES),
    ]


def test_kill_9_mid_run_then_rerun_reaches_the_uninterrupted_weights(tmp_path):
    config = build_config(recipe="ssdlite_shapes", task="detection", train_steps=6, deterministic=True, seed=5,
                          overrides=OVERRIDES)
    whole, summary, _ = kill_then_rerun_beside_uninterrupted(_command, config, tmp_path, kill_after_step=2,
                                                             last_step=6, timeout=900)
    for result in (whole, summary):
        assert "mAP@0.5" in result["eval"], result
