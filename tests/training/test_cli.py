"""``mnas-train`` in real processes: kill -9 mid-run then resume, and clean errors."""

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
from mnas_keras.training.config import from_dict

BLOCKS = "r1_k3_s22_e1_i16_o16_se0.25,r1_k3_s22_e3_i16_o24"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}


OVERRIDES = [
    "model.dropout_rate=0.2", "data.augmentation=inception", "optimizer.ema_decay=0.99",
    "trainer.steps_per_loop=1", "trainer.checkpoint_every_steps=10", "trainer.global_batch_size=32",
    "trainer.eval_steps=1", "trainer.export=false",
]


def _command(model_dir, *extra):
    return [
        sys.executable, "-m", "mnas_keras.training.cli", "--recipe=digits", f"--blocks={BLOCKS}",
        f"--model_dir={model_dir}", "--train_steps=40", "--deterministic", "--seed=5",
        *(f"--overrides={o}" for o in OVERRIDES), *extra,
    ]


def _checkpoint_values(path):
    reader = tf.train.load_checkpoint(path)
    names = [n for n in reader.get_variable_to_shape_map() if not n.startswith(("save_counter", "_CHECKPOINTABLE"))]
    return {n: reader.get_tensor(n) for n in names}


def test_kill_9_mid_run_then_rerun_reaches_the_uninterrupted_weights(tmp_path):
    whole_dir, killed_dir = tmp_path / "whole", tmp_path / "killed"
    victim = subprocess.Popen(_command(killed_dir), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True, env=ENV)
    seen = []
    for line in victim.stdout:
        seen.append(line)
        if "saved checkpoint" in line and "(step 20)" in line:
            os.kill(victim.pid, signal.SIGKILL)  # mid-run, right after a checkpoint
            break
    victim.wait(timeout=60)
    assert victim.returncode == -signal.SIGKILL, "".join(seen[-5:])
    latest = tf.train.latest_checkpoint(str(killed_dir))
    assert latest is not None and int(latest.rsplit("-", 1)[1]) < 40
    assert not (killed_dir / "metrics.json").exists()

    rerun = subprocess.Popen(_command(killed_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    # The uninterrupted run, in this process while the rerun runs (the process under test is
    # the killed one): the same config as the command line's, which the run dir records.
    config = build_config(recipe="digits", blocks=BLOCKS.split(","), train_steps=40, deterministic=True, seed=5,
                          overrides=OVERRIDES)
    assert json.loads((killed_dir / "config.json").read_text()) == json.loads(json.dumps(to_dict(config)))
    whole = Trainer(config, str(whole_dir), stream=io.StringIO()).train()
    out, err = rerun.communicate(timeout=180)
    assert rerun.returncode == 0, err[-3000:]
    assert f"resumed from {latest}" in out
    assert whole["step"] == 40 and json.loads(out.strip().splitlines()[-1])["step"] == 40

    a = _checkpoint_values(str(whole_dir / "ckpt-40"))
    b = _checkpoint_values(str(killed_dir / "ckpt-40"))
    assert a.keys() == b.keys() and any(k.startswith("ema/") for k in a)
    assert any("seed_generator_state" in k for k in a)  # dropout's RNG state is resumed too
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_cli_print_config_and_clean_errors(tmp_path):
    base = [sys.executable, "-m", "mnas_keras.training.cli", "--recipe=digits"]
    commands = {
        "shown": base + ["--print_config", "--epochs=3", "--model=mobilenet_v3_small"],
        "bad": base + [f"--model_dir={tmp_path}", "--overrides=trainer.epoch=3"],
        "missing": base + [f"--model_dir={tmp_path}", "--dataset=tf_flowers", f"--data_dir={tmp_path}/tfds"],
    }
    procs = {k: subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
             for k, c in commands.items()}  # concurrently: each pays TensorFlow's import
    done = {k: (p.communicate(timeout=180), p.returncode) for k, p in procs.items()}
    (out, err), code = done["shown"]
    assert code == 0, err[-2000:]
    assert from_dict(json.loads(out)) == build_config(recipe="digits", epochs=3, model="mobilenet_v3_small")
    (out, err), code = done["bad"]
    assert code == 2 and "Traceback" not in err
    assert "mnas-train: error: unknown config key 'trainer.epoch'" in err
    (out, err), code = done["missing"]
    assert code == 2 and "Traceback" not in err
    assert f"'tf_flowers' is not prepared in '{tmp_path}/tfds/tf_flowers" in err


def test_config_side_imports_no_tensorflow():
    code = ("import sys, mnas_keras.training.cli, mnas_keras.training; "
            "print(any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
    assert out.stdout.strip() == "False", out.stderr[-2000:]
