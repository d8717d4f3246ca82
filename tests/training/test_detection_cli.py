"""``mnas-train --task=detection`` in real processes: kill -9 mid-run, rerun, same weights as uninterrupted."""

import io
import json
import os
import signal
import subprocess
import sys

import numpy as np
import tensorflow as tf

from mnas_keras.training import Trainer, to_dict
from mnas_keras.training.cli import build_config
from tests.training.test_cli import ENV, _checkpoint_values

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
    whole_dir, killed_dir = tmp_path / "whole", tmp_path / "killed"
    victim = subprocess.Popen(_command(killed_dir), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True, env=ENV)
    seen = []
    for line in victim.stdout:
        seen.append(line)
        if "saved checkpoint" in line and "(step 2)" in line:
            os.kill(victim.pid, signal.SIGKILL)  # mid-run, right after a checkpoint
            break
    victim.wait(timeout=60)
    assert victim.returncode == -signal.SIGKILL, "".join(seen[-5:])
    latest = tf.train.latest_checkpoint(str(killed_dir))
    assert latest is not None and int(latest.rsplit("-", 1)[1]) < 6
    assert not (killed_dir / "metrics.json").exists()

    rerun = subprocess.Popen(_command(killed_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    # The uninterrupted run, in this process while the rerun runs (the process under test is
    # the killed one): the same config as the command line's, which the run dir records.
    config = build_config(recipe="ssdlite_shapes", task="detection", train_steps=6, deterministic=True, seed=5,
                          overrides=OVERRIDES)
    assert json.loads((killed_dir / "config.json").read_text()) == json.loads(json.dumps(to_dict(config)))
    whole = Trainer(config, str(whole_dir), stream=io.StringIO()).train()
    out, err = rerun.communicate(timeout=900)
    assert rerun.returncode == 0, err[-3000:]
    assert f"resumed from {latest}" in out
    summary = json.loads(out.strip().splitlines()[-1])
    for result in (whole, summary):
        assert result["step"] == 6 and "mAP@0.5" in result["eval"], result

    a = _checkpoint_values(str(whole_dir / "ckpt-6"))
    b = _checkpoint_values(str(killed_dir / "ckpt-6"))
    assert a.keys() == b.keys() and any(k.startswith("ema/") for k in a)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
