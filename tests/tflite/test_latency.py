"""LiteRT latency measurement: statistics, isolation, interleaving and robust errors."""

import math
import os
import time
from importlib.metadata import version

import numpy as np
import pytest

from mnas_keras.tflite import (
    BenchmarkError,
    BenchmarkResult,
    InputShapeError,
    InvalidModelError,
    benchmark,
    benchmark_many,
)
from mnas_keras.tflite.latency import _summary


def _timed(function, *args, **kwargs):
    """``function(*args, **kwargs)`` and the wall time of the call in milliseconds."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, (time.perf_counter() - start) * 1e3


def _check(result, runs, wall_ms, threads=1, delegate="xnnpack"):
    assert isinstance(result, BenchmarkResult)
    assert result.runs == runs and len(result.times_ms) == runs
    assert result.num_threads == threads and result.delegate == delegate
    assert result.litert_version == version("ai-edge-litert")
    # The timed invokes are part of the call: their sum cannot exceed its wall time (a unit
    # error of 1000x in either direction fails this or the positivity check).
    assert 0 < sum(result.times_ms) <= wall_ms
    assert result.min_ms <= result.median_ms <= result.p90_ms <= result.max_ms


def test_summary_statistics_by_hand():
    summary = _summary([1_000_000, 2_000_000, 3_000_000, 4_000_000, 10_000_000])  # nanoseconds
    assert summary["times_ms"] == [1.0, 2.0, 3.0, 4.0, 10.0]
    assert (summary["median_ms"], summary["mean_ms"], summary["min_ms"], summary["max_ms"]) == (3.0, 4.0, 1.0, 10.0)
    assert summary["p90_ms"] == pytest.approx(7.6)  # linear interpolation at rank 0.9 * 4 = 3.6
    assert summary["std_ms"] == pytest.approx(math.sqrt((9 + 4 + 1 + 0 + 36) / 5))  # population std


def test_benchmark_in_process(tiny_tflite):
    result, wall_ms = _timed(benchmark, tiny_tflite, warmup=2, runs=12)
    _check(result, 12, wall_ms)
    assert result.input_shapes == [[1, 32, 32, 3]] and result.input_dtypes == ["float32"]
    assert not result.isolated and result.cpu is None
    plain, wall_ms = _timed(benchmark, tiny_tflite, warmup=1, runs=5, use_xnnpack=False, num_threads=2)
    _check(plain, 5, wall_ms, threads=2, delegate="none")
    again = BenchmarkResult.from_dict(result.to_dict(times=True))
    assert again == result
    assert "median" in str(result)


def test_benchmark_isolated_pinned(tiny_tflite, tmp_path):
    path = tmp_path / "tiny.tflite"
    path.write_bytes(tiny_tflite)
    result, wall_ms = _timed(benchmark, str(path), warmup=2, runs=10, isolate=True)
    _check(result, 10, wall_ms)
    assert result.isolated and result.cpu in os.sched_getaffinity(0)
    assert result.name == "tiny.tflite"
    cpu = min(os.sched_getaffinity(0))
    assert benchmark(tiny_tflite, warmup=1, runs=3, isolate=True, cpu=cpu).cpu == cpu


def test_benchmark_keras_model_with_unknown_size(tiny_model):
    result = benchmark(tiny_model, warmup=1, runs=4, input_shape=(40, 40, 3))
    assert result.input_shapes == [[1, 40, 40, 3]]


def test_benchmark_many_interleaved(tiny_tflite, mnv3_small_tflite):
    results, wall_ms = _timed(
        benchmark_many, {"tiny": tiny_tflite, "mnv3": mnv3_small_tflite}, warmup=2, runs=11, rounds=3
    )
    assert list(results) == ["tiny", "mnv3"]
    assert sum(sum(r.times_ms) for r in results.values()) <= wall_ms
    for name, result in results.items():
        _check(result, 11, wall_ms)
        assert result.name == name
    isolated = benchmark_many({"tiny": tiny_tflite, "mnv3": mnv3_small_tflite}, warmup=1, runs=4, isolate=True)
    assert all(r.isolated for r in isolated.values())


@pytest.mark.parametrize("isolate", [False, True])
def test_corrupt_models_raise_clear_errors(tiny_tflite, isolate):
    with pytest.raises(InvalidModelError, match="not a valid Flatbuffer"):
        benchmark(tiny_tflite[: len(tiny_tflite) // 2], runs=2, isolate=isolate)
    with pytest.raises(InvalidModelError, match="not a TFLite flatbuffer"):
        benchmark(b"garbage!" * 20, runs=2, isolate=isolate)
    with pytest.raises(InvalidModelError, match="does not exist"):
        benchmark("/nonexistent/model.tflite", runs=2, isolate=isolate)


@pytest.mark.parametrize("isolate", [False, True])
def test_bad_shapes_raise_clear_errors(tiny_model, tiny_tflite, isolate):
    with pytest.raises(InputShapeError, match="conflicts with TFLite input 0"):
        benchmark(tiny_tflite, runs=2, input_shape=(64, 64, 3), isolate=isolate)
    with pytest.raises(InputShapeError, match="expected 3 positive sizes"):
        benchmark(tiny_tflite, runs=2, input_shape=(32, 32), isolate=isolate)


def test_unknown_size_needs_shape(tiny_model):
    from mnas_keras.tflite import convert

    dynamic = convert(tiny_model)
    with pytest.raises(InputShapeError, match="pass input_shape"):
        benchmark(dynamic, runs=2)
    with pytest.raises(BenchmarkError, match="runs >= 1"):
        benchmark(dynamic, runs=0, input_shape=(32, 32, 3))
    with pytest.raises(BenchmarkError, match="num_threads"):
        benchmark(dynamic, num_threads=0, input_shape=(32, 32, 3))


_FUZZ = r"""
import sys, numpy as np
from mnas_keras.tflite import TFLiteError, benchmark
data = open(sys.argv[1], "rb").read()
outcomes = []
for seed in range(40):
    rng = np.random.default_rng(seed)
    corrupt = bytearray(data)
    for _ in range(rng.integers(1, 6)):  # flip bytes in the tables at both ends, not in weights
        head = rng.random() < 0.5
        at = int(rng.integers(0, 4000)) if head else len(corrupt) - 1 - int(rng.integers(0, 4000))
        corrupt[at] = int(rng.integers(0, 256))
    try:
        benchmark(bytes(corrupt), warmup=1, runs=2)
        outcomes.append("ok")
    except TFLiteError:
        outcomes.append("error")
print(outcomes.count("ok"), outcomes.count("error"))
"""


def test_corrupted_flatbuffers_never_crash(tiny_tflite, tmp_path):
    """Byte flips in the flatbuffer's tables: each load runs or raises a TFLiteError."""
    import subprocess
    import sys

    path = tmp_path / "tiny.tflite"
    path.write_bytes(tiny_tflite)
    proc = subprocess.run([sys.executable, "-c", _FUZZ, str(path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ok, errors = map(int, proc.stdout.split()[-2:])
    assert ok + errors == 40 and errors > 0
