"""The kill -9 harness of the ``mnas-train`` CLI tests (classification and detection).

The process under test is the killed one: it is killed right after a checkpoint, rerun from the
command line, and its final checkpoint compared with an uninterrupted run made in this process
(while the rerun runs) from the config the command line recorded.
"""

import io
import json
import os
import signal
import subprocess

import numpy as np
import tensorflow as tf

from mnas_keras.training import Trainer, to_dict

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}


def checkpoint_values(path):
    """``{variable name: value}`` of a checkpoint, without its bookkeeping entries."""
    reader = tf.train.load_checkpoint(path)
    names = [n for n in reader.get_variable_to_shape_map() if not n.startswith(("save_counter", "_CHECKPOINTABLE"))]
    return {n: reader.get_tensor(n) for n in names}


def kill_then_rerun_beside_uninterrupted(command, config, tmp_path, *, kill_after_step: int, last_step: int,
                                         timeout: float):
    """Kills ``command`` after its ``kill_after_step`` checkpoint, reruns it, and trains ``config``
    uninterrupted in this process meanwhile; asserts both end at ``last_step`` with equal
    checkpoint values (bit for bit) and returns ``(uninterrupted summary, rerun summary, values)``."""
    whole_dir, killed_dir = tmp_path / "whole", tmp_path / "killed"
    victim = subprocess.Popen(command(killed_dir), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True, env=ENV)
    seen = []
    for line in victim.stdout:
        seen.append(line)
        if "saved checkpoint" in line and f"(step {kill_after_step})" in line:
            os.kill(victim.pid, signal.SIGKILL)  # mid-run, right after a checkpoint
            break
    victim.wait(timeout=60)
    assert victim.returncode == -signal.SIGKILL, "".join(seen[-5:])
    latest = tf.train.latest_checkpoint(str(killed_dir))
    assert latest is not None and int(latest.rsplit("-", 1)[1]) < last_step
    assert not (killed_dir / "metrics.json").exists()

    rerun = subprocess.Popen(command(killed_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    # The uninterrupted run, the same config as the command line's, which the run dir records.
    assert json.loads((killed_dir / "config.json").read_text()) == json.loads(json.dumps(to_dict(config)))
    whole = Trainer(config, str(whole_dir), stream=io.StringIO()).train()
    out, err = rerun.communicate(timeout=timeout)
    assert rerun.returncode == 0, err[-3000:]
    assert f"resumed from {latest}" in out
    summary = json.loads(out.strip().splitlines()[-1])
    assert whole["step"] == last_step and summary["step"] == last_step

    a = checkpoint_values(str(whole_dir / f"ckpt-{last_step}"))
    b = checkpoint_values(str(killed_dir / f"ckpt-{last_step}"))
    assert a.keys() == b.keys() and any(k.startswith("ema/") for k in a)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    return whole, summary, a
