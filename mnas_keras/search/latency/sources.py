"""Latency sources: where an evaluator gets a network's latency from.

A :class:`LatencySource` turns a built (trained) Keras model into latency fields for the
journal (``latency_ms`` and friends, milliseconds), and may act once more at the end of
the search (``finalize``). The proxy evaluator holds one and knows nothing of how it
measures; the search loop and the executors know nothing of latency at all. Sources:

* :class:`MeasuredLatency` (``latency_mode="measured"``): convert each model with
  :func:`mnas_keras.tflite.convert` and time it with :func:`mnas_keras.tflite.benchmark`;
* :class:`~mnas_keras.search.latency.modes.TableLatency` (``"predicted"`` and
  ``"predicted_then_measured"``): a :class:`~mnas_keras.search.latency.table.LatencyTable`
  predicts; in the second mode ``finalize`` measures the Pareto front.

Remote measurement is a *runner* passed in with :meth:`LatencySource.with_runner`: a
callable ``runner(fn, *args, **kwargs)`` that runs one benchmark call somewhere else (the
Ray executor's :class:`~mnas_keras.search.execution.ray_executor.RemoteLatency` runs it as
a task on a node with a latency device). A new latency source implements the protocol and
is given to ``ProxyEvaluator(latency_source=...)``.

Example:
    >>> source = MeasuredLatency(input_size=32, runs=5, warmup=1)
    >>> isinstance(source, LatencySource), source.config()
    (True, {})
    >>> routed = source.with_runner(lambda fn, *args, **kwargs: fn(*args, **kwargs))
    >>> routed is not source and routed.runs == 5
    True
"""

from __future__ import annotations

import copy
import time
from typing import Any, Callable, Protocol, runtime_checkable

#: A runner: ``runner(fn, *args, **kwargs)`` returns ``fn(*args, **kwargs)`` computed somewhere.
Runner = Callable[..., Any]


@runtime_checkable
class LatencySource(Protocol):
    """What :class:`~mnas_keras.search.evaluation.proxy.ProxyEvaluator` asks for latency."""

    def latency(self, model, calibration=None) -> tuple[dict, bytes | None, bytes | None]:
        """``(fields, fp32 .tflite or None, int8 .tflite or None)`` of a built model
        (``model.blocks`` its block strings). ``fields`` holds ``latency_ms`` (> 0,
        milliseconds) and anything else to journal; ``calibration`` are training images
        (int8 calibration)."""

    def finalize(self, records: list[dict], journal, rescore, log=print) -> None:
        """Called once after the search loop (see ``Evaluator.finalize``)."""

    def config(self) -> dict:
        """Settings that define results besides the evaluator's own (checked on resume)."""

    def with_runner(self, runner: Runner) -> "LatencySource":
        """A copy whose benchmark calls go through ``runner``."""


def _call(fn, *args, **kwargs):
    return fn(*args, **kwargs)


class MeasuredLatency:
    """Converts each model and times it on LiteRT (one thread, warm-up, median).

    Args:
        input_size: square input resolution the latency is measured at (pixels).
        num_threads, warmup, runs: LiteRT benchmark settings.
        isolate: time in a separate process pinned to one core.
        int8: also convert and time full-integer int8 (``int8_latency_ms``).
        objective: ``"fp32"`` or ``"int8"``: which latency is ``latency_ms``.
        runner: runs each benchmark call (default: here).
    """

    mode = "measured"
    table = None

    def __init__(self, input_size: int, num_threads: int = 1, warmup: int = 10, runs: int = 50,
                 isolate: bool = True, int8: bool = False, objective: str = "fp32", runner: Runner | None = None):
        self.input_size, self.num_threads, self.warmup, self.runs = int(input_size), num_threads, warmup, runs
        self.isolate, self.int8, self.objective = bool(isolate), bool(int8), objective
        self.runner = runner or _call

    def with_runner(self, runner: Runner) -> "MeasuredLatency":
        routed = copy.copy(self)
        routed.runner = runner
        return routed

    def config(self) -> dict:
        return {}

    def finalize(self, records, journal, rescore, log=print) -> None:
        return None

    def _time(self, tflite: bytes, shape):
        from mnas_keras.tflite import benchmark

        return self.runner(benchmark, tflite, num_threads=self.num_threads, warmup=self.warmup, runs=self.runs,
                           input_shape=shape, isolate=self.isolate)

    def latency(self, model, calibration=None) -> tuple[dict, bytes, bytes | None]:
        from mnas_keras.tflite import convert

        size = self.input_size
        shape = (size, size, 3)
        out: dict[str, Any] = {}
        start = time.perf_counter()
        fp32 = convert(model, input_shape=shape)
        out["convert_seconds"] = time.perf_counter() - start
        result = self._time(fp32, shape)
        out.update(fp32_latency_ms=result.median_ms, latency_p90_ms=result.p90_ms, tflite_bytes=len(fp32))
        int8 = None
        if self.int8:
            images = calibration[:64]
            if images.shape[1:3] != (size, size):
                import tensorflow as tf

                images = tf.image.resize(images, (size, size)).numpy()
            int8 = convert(model, "int8", representative_data=images, input_shape=shape)
            out["int8_latency_ms"] = self._time(int8, shape).median_ms
        out["latency_ms"] = out["int8_latency_ms"] if self.objective == "int8" else out["fp32_latency_ms"]
        return out, fp32, int8
