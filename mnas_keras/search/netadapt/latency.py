"""Latency sources for NetAdapt: called on a built ``MnasNet``, they return milliseconds.

* :class:`MeasuredLatency`: converts to float32 LiteRT and times it (1 thread by default,
  XNNPACK), interleaved with an *anchor* in the same process; the result is
  ``anchor_ms * candidate / anchor`` from one interleaved run, so the drift of a shared
  machine cancels as in the latency table (:mod:`mnas_keras.search.latency.table`). The
  NetAdapt loop makes the current network the anchor at each iteration (its journaled
  milliseconds), so every proposal is timed against the network it must beat by ``delta``.
  A network whose input is fixed to another size is rebuilt at ``input_size`` for timing.
* :class:`TableLatency`: a :class:`~mnas_keras.search.latency.table.LatencyTable`'s prediction
  (the search's calibrated table, or a run's own layer-wise one; parts the table lacks are
  measured on LiteRT once and saved).
* any search :class:`~mnas_keras.search.latency.sources.LatencySource` (the seam the proxy
  evaluator uses, e.g. its undrifted ``MeasuredLatency``) is accepted as is
  (:func:`latency_ms`).
* :class:`MAddsLatency`: multiply-adds in millions from :func:`mnas_keras.models.profile`,
  a deterministic stand-in for tests and quick dry runs (not a latency).

Example:
    >>> from mnas_keras.models import MnasNet
    >>> m = MnasNet(["r1_k3_s11_e1_i8_o8"], stem_filters=8, input_shape=(16, 16, 3), classes=2,
    ...             head_filters=16)
    >>> MAddsLatency(16)(m)  # stem 8x8 * 27*8 + dw 8x8 * 8*9 + pw 8x8 * 8*8 + head 8x8 * 8*16 + 16*2
    0.030752
"""

from __future__ import annotations

import math

from mnas_keras.search.errors import SearchConfigError

SOURCES = ("measured", "table", "madds")


class MAddsLatency:
    """Multiply-adds (millions) at ``input_size``: deterministic and fast; for tests."""

    name = "madds"

    def __init__(self, input_size: int = 32):
        self.input_size = int(input_size)

    def config(self) -> dict:
        return {"source": self.name, "input_size": self.input_size}

    def __call__(self, model) -> float:
        from mnas_keras.models import profile

        return profile(model, (self.input_size, self.input_size, model.input_shape[-1])).madds / 1e6


class TableLatency:
    """Predicted latency from a :class:`LatencyTable` (:meth:`LatencyTable.predict`; parts the
    table lacks are measured on LiteRT once, in one batch per :meth:`prefetch`, and saved).

    The table knows networks by their block strings at its own input size; a network whose
    stem was narrowed (a width group that includes the stem) is the same sum over its own
    parts, its stem part measured at the new width. Every network is predicted, also one the
    table holds a whole-network measurement of, so that the seed and its children are on one
    scale.
    """

    name = "table"

    def __init__(self, table):
        self.table = table

    def config(self) -> dict:
        return {"source": self.name, "table": getattr(self.table, "path", None),
                "input_size": self.table.settings.get("input_size"),
                "objective": self.table.settings.get("objective")}

    def __call__(self, model) -> float:
        return self.blocks_ms(model.blocks, model.get_config()["stem_filters"])

    def blocks_ms(self, blocks, stem_filters: int) -> float:
        """The prediction for a network given by its block strings (or specs) and stem width,
        without building it: the NetAdapt loop probes proposal widths this way (building a
        Keras network per probe took ~1 s, the table's sum microseconds)."""
        strings = _strings(blocks)
        # always the prediction, never a whole-network measurement the table caches (a
        # search's Pareto front, the seed among them): one scale for the seed and its children
        self.prefetch([(strings, stem_filters)])
        return float(self.table.predict(strings, stem_filters=stem_filters))

    def prefetch(self, networks) -> int:
        """Measures, in one batch, the parts that any of ``networks`` (``(blocks, stem)``
        pairs) needs and the table lacks; saves the table. Returns how many were measured."""
        keys = [key for blocks, stem in networks for key in self.table.missing(_strings(blocks), stem)]
        measured = self.table.measure_parts(keys)
        if measured and self.table.path:
            self.table.save()
        return len(measured)


def _strings(blocks) -> list[str]:
    return [b if isinstance(b, str) else b.to_string() for b in blocks]


def latency_ms(source, model) -> float:
    """Milliseconds of ``model`` from a NetAdapt source (a callable) or any search
    :class:`~mnas_keras.search.latency.sources.LatencySource` (``latency(model)``)."""
    if hasattr(source, "latency") and not callable(source):
        return float(source.latency(model)[0]["latency_ms"])
    if callable(source):
        return float(source(model))
    return float(source.latency(model)[0]["latency_ms"])


class MeasuredLatency:
    """LiteRT latency, drift-corrected by an anchor timed in the same interleaved run.

    Args:
        input_size: the square input the networks are timed at.
        num_threads, warmup, runs, rounds: benchmark settings
            (:func:`mnas_keras.tflite.benchmark_many`).
        anchor_runs: timed runs of the anchor's first, lone measurement.
    """

    name = "measured"

    def __init__(self, input_size: int = 32, num_threads: int = 1, warmup: int = 5, runs: int = 40,
                 rounds: int = 4, anchor_runs: int = 200):
        if runs < rounds or rounds < 1:
            raise SearchConfigError(f"need runs >= rounds >= 1; received runs={runs}, rounds={rounds}")
        self.input_size, self.num_threads = int(input_size), int(num_threads)
        self.warmup, self.runs, self.rounds, self.anchor_runs = int(warmup), int(runs), int(rounds), int(anchor_runs)
        self.anchor: bytes | None = None
        self.anchor_ms: float | None = None

    def config(self) -> dict:
        return {"source": self.name, "input_size": self.input_size, "num_threads": self.num_threads,
                "warmup": self.warmup, "runs": self.runs, "rounds": self.rounds}

    def _at_size(self, model):
        """``model``, or, when its input is fixed to another size, the same network rebuilt
        from its config at ``input_size`` (float32 latency does not depend on the weights'
        values, so none are copied)."""
        shape = tuple(model.input_shape[1:3])
        if shape in ((self.input_size, self.input_size), (None, None)):
            return model
        config = model.get_config() if hasattr(model, "get_config") else None
        if not isinstance(config, dict) or "input_shape" not in config:
            raise SearchConfigError(f"the network's input is fixed to {shape}; cannot time it at "
                                    f"{self.input_size}x{self.input_size} (build it with a free input size)")
        config = {**config, "input_shape": (self.input_size, self.input_size, model.input_shape[-1])}
        return type(model).from_config(config)

    def _convert(self, model) -> bytes:
        from mnas_keras.tflite import convert

        model = self._at_size(model)
        return convert(model, input_shape=(self.input_size, self.input_size, model.input_shape[-1]))

    def set_anchor(self, model, anchor_ms: float | None = None) -> float:
        """Makes ``model`` the anchor; times it alone unless ``anchor_ms`` (a resumed run's
        journaled value) is given. Returns the anchor's milliseconds."""
        from mnas_keras.tflite import benchmark

        self.anchor = self._convert(model)
        if anchor_ms is None:
            result = benchmark(self.anchor, num_threads=self.num_threads, warmup=self.warmup * 2,
                               runs=self.anchor_runs,
                               input_shape=(self.input_size, self.input_size, model.input_shape[-1]))
            anchor_ms = result.median_ms
        self.anchor_ms = float(anchor_ms)
        return self.anchor_ms

    def __call__(self, model) -> float:
        from mnas_keras.tflite import benchmark_many

        if self.anchor is None:
            return self.set_anchor(model)
        results = benchmark_many({"anchor": self.anchor, "model": self._convert(model)}, num_threads=self.num_threads,
                                 warmup=self.warmup, runs=self.runs, rounds=self.rounds,
                                 input_shape=(self.input_size, self.input_size, model.input_shape[-1]))
        ratio = results["model"].median_ms / results["anchor"].median_ms
        if not math.isfinite(ratio) or ratio <= 0:
            raise SearchConfigError(f"LiteRT timing gave a ratio of {ratio} to the anchor")
        return self.anchor_ms * ratio


def make_source(kind: str, *, input_size: int = 32, table=None, **options):
    """A latency source by name: ``"measured"``, ``"table"`` (needs ``table``) or ``"madds"``."""
    if kind == "measured":
        return MeasuredLatency(input_size, **options)
    if kind == "table":
        if table is None:
            raise SearchConfigError("latency source 'table' needs a LatencyTable (--table)")
        return TableLatency(table)
    if kind == "madds":
        return MAddsLatency(input_size)
    raise SearchConfigError(f"latency source must be one of {SOURCES}; received {kind!r}")
