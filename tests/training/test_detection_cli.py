"""``mnas-train --task=detection`` in real processes: kill -9 mid-run, rerun, same weights as uninterrupted."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import tensorflow as tf

from tests.training.test_cli import ENV, _checkpoint_values


def _command(model_dir):
    # SSDLite MobileNetV3-Small at 32x32 on the generated shapes, with SSD augmentation and EMA
    return [
        sys.executable, "-m", "mnas_keras.training.cli", "--recipe=ssdlite_shapes", "--task=detection",
        f"--model_dir={model_dir}", "--train_steps=6", "--deterministic", "--seed=5",
        "--overrides=data.image_size=32", "--overrides=task.augmentation=ssd", "--overrides=task.num_visuals=0",
        "--overrides=optimizer.ema_decay=0.9", "--overrides=trainer.steps_per_loop=1",
        "--overrides=trainer.checkpoint_every_steps=2", "--overrides=trainer.global_batch_size=8",
        "--overrides=trainer.eval_steps=1", "--overrides=trainer.export=false",
        "--overrides=task.extra_filters=16,8,8,8", "--overrides=schedule.warmup_epochs=0",
    ]


def test_kill_9_mid_run_then_rerun_reaches_the_uninterrupted_weights(tmp_path):
    whole_dir, killed_dir = tmp_path / "whole", tmp_path / "killed"
    whole = subprocess.Popen(_command(whole_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
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

    rerun = subprocess.run(_command(killed_dir), capture_output=True, text=True, env=ENV, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"resumed from {latest}" in rerun.stdout
    out, err = whole.communicate(timeout=900)
    assert whole.returncode == 0, err[-3000:]
    for text in (out, rerun.stdout):
        summary = json.loads(text.strip().splitlines()[-1])
        assert summary["step"] == 6 and "mAP@0.5" in summary["eval"], summary

    a = _checkpoint_values(str(whole_dir / "ckpt-6"))
    b = _checkpoint_values(str(killed_dir / "ckpt-6"))
    assert a.keys() == b.keys() and any(k.startswith("ema/") for k in a)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
