"""Every command line answers bad input with ONE line ``<tool>: error: ...`` and exit status 2
(no traceback, no TensorFlow start-up noise): mnas-train and mnas-demo in real processes
(their absl flags are global), mnas-tflite in-process (private flags)."""

import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# TF_CPP_MIN_LOG_LEVEL unset: the tools must quiet TensorFlow themselves.
ENV = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
ENV.update(PYTHONPATH=ROOT, CUDA_VISIBLE_DEVICES="")

TRAIN = [
    (["--blocks=r1_k3"], "model.blocks.*'r1_k3' is missing required key"),
    (["--blocks=r1_k3_s11_e1_i16_o16,zz9"], "unknown key in token 'zz9'"),
    (["--epochs=0"], "trainer.epochs must be > 0; received 0"),
    (["--overrides=schedule.base_learning_rate=nan"], "schedule.base_learning_rate expects a finite number"),
    (["--overrides=optimizer.weight_decay=inf"], "optimizer.weight_decay expects a finite number"),
    (["--epochs=abc"], "--epochs"),
    (["--overrides=trainer.epoch=3"], "unknown config key 'trainer.epoch'"),
    (["--config_file=/nonexistent/config.json"], "'/nonexistent/config.json' cannot be read"),
    (["stray"], "unexpected arguments: stray"),
    (["--model_dir=/proc/no/such/run"], "--model_dir '/proc/no/such/run' cannot be created"),
    (["--model_dir=/etc/hostname"], "--model_dir '/etc/hostname' is a file"),
    (["--strategy=tpu", "--overrides=trainer.train_steps=1"], "strategy 'tpu' found no TPU"),
]
DEMO = [
    (["--blocks=r1_k3"], "--blocks: block 0: block string 'r1_k3' is missing"),
    (["--epochs=0"], "--epochs"),
    (["--alpha=nan"], "--alpha=nan: expected a finite width multiplier > 0"),
    (["--alpha=-1"], "--alpha=-1.0: expected a finite width multiplier > 0"),
    (["--size=abc"], "--size"),
]


def _check_one_line(tool, stderr, fragment):
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr[-3000:]
    assert lines[0].startswith(f"{tool}: error: ") or lines[0].startswith(f"{tool} "), lines[0]
    assert "error:" in lines[0] and "Traceback" not in stderr
    assert __import__("re").search(fragment, lines[0]), (fragment, lines[0])


def test_train_and_demo_bad_inputs(tmp_path):
    procs = {}
    for i, (args, fragment) in enumerate(TRAIN):
        if not any(a.startswith("--model_dir") for a in args):
            args = args + [f"--model_dir={tmp_path / f'run{i}'}"]
        command = [sys.executable, "-m", "mnas_keras.training.cli", "--recipe=digits", *args]
        procs[("mnas-train", i)] = (subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                     text=True, env=ENV, cwd=tmp_path), fragment)
    for i, (args, fragment) in enumerate(DEMO):
        command = [sys.executable, "-m", "mnas_keras.demo", *args]
        procs[("mnas-demo", i)] = (subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                    text=True, env=ENV, cwd=tmp_path), fragment)
    for (tool, _), (proc, fragment) in procs.items():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 2, (tool, proc.args, err[-3000:])
        _check_one_line(tool, err, fragment)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tflite_bad")
    np.save(folder / "pickled.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(folder / "flat.npy", np.zeros((4, 32), "float32"))
    np.save(folder / "nan.npy", np.full((2, 32, 32, 3), np.nan, "float32"))
    (folder / "garbage.keras").write_bytes(b"PK\x03\x04 truncated")
    (folder / "garbage.tflite").write_bytes(b"not a flatbuffer")
    return folder


TFLITE = [
    (["convert"], "convert needs --model"),
    (["frobnicate"], "expected one command of"),
    (["convert", "--model=mobilenet_v3_small", "--quantization=int9"], "--quantization='int9'"),
    (["convert", "--model=mobilenet_v3_small", "--input_size=10"], "input_size"),
    (["benchmark", "--models=mobilenet_v3_small", "--runs=0"], "runs"),
    (["convert", "--model=mobilenet_v3_small", "--quantization=int8", "--calibration=random:0"],
     "expected random:<number of samples >= 1>"),
    (["convert", "--model=mobilenet_v3_small", "--quantization=int8", "--calibration={d}/pickled.npy"],
     "holds pickled Python objects"),
    (["convert", "--model=mobilenet_v3_small", "--quantization=int8", "--calibration={d}/flat.npy"],
     r"shape \(4, 32\).*expected numeric images \(N, H, W, C\)"),
    (["convert", "--model=mobilenet_v3_small", "--quantization=int8", "--calibration={d}/nan.npy"],
     "NaN or infinite"),
    (["convert", "--model={d}/garbage.keras"], r"garbage.keras' is not a valid \.keras archive"),
    (["convert", "--model={d}/missing.keras"], "missing.keras' does not exist"),
    (["convert", "--model=no_such_net"], "Unknown model 'no_such_net'"),
    (["ops", "--model={d}/garbage.tflite"], "garbage.tflite"),
    (["convert", "--model=mobilenet_v3_small", "--output=/proc/none/m.tflite"], "--output folder '/proc/none'"),
]


@pytest.mark.parametrize("args, fragment", TFLITE, ids=[" ".join(a)[:40] for a, _ in TFLITE])
def test_tflite_bad_inputs(files, args, fragment, capsys):
    from mnas_keras import _cli
    from mnas_keras.tflite.cli import main

    argv = ["mnas-tflite"] + [a.format(d=files) for a in args]
    with pytest.raises(SystemExit) as exit_info:
        code = _cli.guard("mnas-tflite", main, argv)
        raise SystemExit(code)
    assert exit_info.value.code == 2
    _check_one_line("mnas-tflite", capsys.readouterr().err, fragment)
