"""``mnas-train`` in real processes: kill -9 mid-run then resume, and clean errors."""

import json
import subprocess
import sys

from mnas_keras.training.cli import build_config
from mnas_keras.training.config import from_dict
from tests.training._kill_harness import ENV, kill_then_rerun_beside_uninterrupted

BLOCKS = "r1_k3_s22_e1_i16_o16_se0.25,r1_k3_s22_e3_i16_o24"


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


def test_kill_9_mid_run_then_rerun_reaches_the_uninterrupted_weights(tmp_path):
    config = build_config(recipe="digits", blocks=BLOCKS.split(","), train_steps=40, deterministic=True, seed=5,
                          overrides=OVERRIDES)
    _, _, values = kill_then_rerun_beside_uninterrupted(_command, config, tmp_path, kill_after_step=20,
                                                        last_step=40, timeout=180)
    assert any("seed_generator_state" in k for k in values)  # dropout's RNG state is resumed too


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
