"""The mnas-tflite command line (absl flags in a private FlagValues)."""

import json
import subprocess
import sys

import pytest
from absl import app

from mnas_keras.tflite import list_operators
from mnas_keras.tflite.cli import main


def test_convert_registry_model_int8(tmp_path, capsys):
    out = tmp_path / "small.tflite"
    code = main(["mnas-tflite", "convert", "--model=mobilenet_v3_small_050", "--input_size=32",
                 "--classes=10", "--quantization=int8", "--calibration=random:8", f"--output={out}", "--json"])
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert record["output"] == str(out) and record["bytes"] == out.stat().st_size
    assert record["hard_swish"] == "fold"  # int8 default: hard-swish as int8 ADD+MUL
    ops = list_operators(out)
    assert "HARD_SWISH" not in ops and "QUANTIZE" in ops
    code = main(["mnas-tflite", "convert", "--model=mobilenet_v3_small_050", "--input_size=32",
                 "--classes=10", "--quantization=int8", "--calibration=random:8", f"--output={out}",
                 "--hard_swish=native"])
    assert code == 0 and "hard-swish native" in capsys.readouterr().out
    # MobileNetV3-Small (Howard et al. 2019, Table 2), hard-swish counted by hand: the stem
    # conv (1), expansion + depthwise of the eight HS bnecks (5x5 40 x3, 48 x2, 96 x3: 16),
    # the last 1x1 conv (1) and the 1x1 head conv (1) = 19; width 0.5 changes no count.
    assert list_operators(out)["HARD_SWISH"] == 19


def test_convert_keras_file_and_ops(tiny_model, tmp_path, capsys, monkeypatch):
    source = tmp_path / "tiny.keras"
    tiny_model.save(source)
    monkeypatch.chdir(tmp_path)
    assert main(["mnas-tflite", "convert", f"--model={source}", "--input_size=48", "--quantization=float16"]) == 0
    assert "wrote tiny_float16.tflite" in capsys.readouterr().out
    assert main(["mnas-tflite", "ops", "--model=tiny_float16.tflite"]) == 0
    table = capsys.readouterr().out
    assert "HARD_SWISH" in table and "total" in table and "NON-BUILTIN" not in table


def test_benchmark_table_and_json(tiny_tflite, tmp_path, capsys):
    path = tmp_path / "tiny.tflite"
    path.write_bytes(tiny_tflite)
    args = ["mnas-tflite", "benchmark", f"--models=mnasnet_small_050,{path}", "--input_size=32",
            "--classes=10", "--runs=4", "--warmup=1", "--rounds=2"]
    assert main(args + ["--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in records] == ["mnasnet_small_050", str(path)]
    for r in records:
        assert r["runs"] == 4 and r["num_threads"] == 1 and r["median_ms"] > 0
        assert r["input_shapes"] == [[1, 32, 32, 3]]
    assert main(args + ["--quantization=none,int8", "--models=mnasnet_small_050"]) == 0
    table = capsys.readouterr().out
    assert "median" in table and "int8" in table and "xnnpack" in table


@pytest.mark.parametrize(
    "argv, message",
    [
        (["convert"], "needs --model"),
        (["explode"], "expected one command"),
        (["convert", "--model=mnasnet_z9"], "Unknown model 'mnasnet_z9'"),
        (["convert", "--model=mnasnet_small", "--quantization=int4"], "expected one of"),
        (["convert", "--model=mnasnet_small", "--input_size=32", "--quantization=int8"], "needs --calibration"),
        (["convert", "--model=mnasnet_small", "--calibration=gauss:3", "--quantization=int8"], "expected 'random:N'"),
        (["benchmark"], "needs --models"),
        (["convert", "--runs=0"], "--runs"),
    ],
)
def test_usage_errors(argv, message):
    with pytest.raises(app.UsageError, match=message):
        main(["mnas-tflite", *argv])


def test_bad_tflite_file_is_a_clean_error(tmp_path, capsys):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 100)
    assert main(["mnas-tflite", "benchmark", f"--models={bad}", "--runs=2"]) == 2
    assert "error: TFLite file" in capsys.readouterr().err


def test_console_help_runs_without_tensorflow():
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; sys.argv=['mnas-tflite','--help']; "
         "from mnas_keras.tflite.cli import run; run()"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "mnas-tflite benchmark" in proc.stdout and "--quantization" in proc.stdout
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, mnas_keras.tflite.cli, mnas_keras.tflite.latency; "
         "print('tensorflow' in sys.modules, 'keras' in sys.modules)"],
        capture_output=True, text=True, timeout=60,
    )
    assert probe.stdout.split() == ["False", "False"]
