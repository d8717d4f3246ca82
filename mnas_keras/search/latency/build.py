"""Measuring latency-table parts and whole networks on LiteRT.

Parts (stem, single blocks, head; see :func:`mnas_keras.search.latency.table.network_parts`)
and whole networks are built by the search's one recipe
(:class:`~mnas_keras.search.latency.recipe.NetworkRecipe`: ``build_part``, ``build``), many at a time as the
independent branches of one multi-input Keras model, converted once with
:func:`mnas_keras.tflite.convert`, and cut into one ``.tflite`` per part
(:func:`mnas_keras.search.latency.slice.split_branches`). Conversion costs seconds per call
whatever the model's size, so batching the parts makes a table of thousands of parts
affordable. The parts are then timed with :func:`mnas_keras.tflite.benchmark_many` in a
separate process pinned to one core, interleaved round by round, batch 1, like the search's
own latency measurement.

Example:
    >>> settings = {"input_size": 32, "stem_filters": 8, "head_filters": 32, "classes": 10,
    ...             "activation": "relu", "include_preprocessing": True}
    >>> parts = convert_parts(["stem:32x32x3>8", "block:16x16:r1_k3_s22_e3_i8_o16_se0.25"], settings)
    >>> from mnas_keras.tflite import list_operators
    >>> sorted(list_operators(parts["block:16x16:r1_k3_s22_e3_i8_o16_se0.25"]))
    ['CONV_2D', 'DEPTHWISE_CONV_2D', 'LOGISTIC', 'MEAN', 'MUL']
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Mapping, Sequence

from mnas_keras.search.latency.parts import DEFAULT_SETTINGS, LatencyTableError, parse_part
from mnas_keras.search.latency.recipe import NetworkRecipe

#: At most this many parts, or about this many weights, per conversion.
MAX_PARTS_PER_MODEL = 64
MAX_PARAMS_PER_MODEL = 12_000_000
#: Parts timed together in one isolated worker.
MAX_PARTS_PER_BENCHMARK = 96
#: Calibration samples of int8 conversions (latency does not depend on the ranges' precision).
INT8_CALIBRATION_SAMPLES = 4
INT8_ATTEMPTS = 4


def _settings(settings: Mapping) -> dict:
    return {**DEFAULT_SETTINGS, **dict(settings)}


def _part_params(key: str, s: Mapping) -> int:
    p = parse_part(key)
    h, w, c = p["input_shape"]
    if p["kind"] == "stem":
        return 27 * p["filters"]
    if p["kind"] == "head":
        return c * s["head_filters"] + s["head_filters"] * s["classes"]
    spec = p["spec"]
    k2, o = spec.kernel * spec.kernel, spec.output_filters
    e = max(1, int(c * float(spec.expansion)))
    if spec.op == "conv":
        return k2 * c * e + (e * o if e != c else 0)
    return c * e + k2 * e + e * o


def _quantize(model, inputs: Sequence, settings: Mapping, seed: int, int8_io: bool, label: str = "") -> bytes | None:
    """Converts for the table's objective: fp32, or int8 with trained-looking BN statistics
    and random calibration data (images for the stem, N(0, 1) features for the rest). Parts
    use int8 input/output (inside a network they pass int8 tensors on); whole networks take
    float images like the search's int8 models.

    XNNPACK (LiteRT 2.3) fails to prepare some int8 models whose random weights give a
    tensor an extreme quantization range (a squeeze-excite branch that is nearly constant);
    such a conversion is redone with other random statistics, up to
    ``INT8_ATTEMPTS`` times."""
    import numpy as np

    from mnas_keras.tflite import TFLiteError, convert, load_interpreter, randomize_batch_norm

    if settings["objective"] != "int8":
        return None
    for attempt in range(INT8_ATTEMPTS):
        randomize_batch_norm(model, seed + 7919 * attempt)
        rng = np.random.default_rng(seed + 7919 * attempt)
        batches = [[(rng.uniform(0, 255, (1, *shape)) if image else rng.normal(0, 1, (1, *shape))).astype("float32")
                    for shape, image in inputs] for _ in range(INT8_CALIBRATION_SAMPLES)]
        tflite = convert(model, "int8_io" if int8_io else "int8", representative_data=lambda: batches,
                         calibration_steps=INT8_CALIBRATION_SAMPLES,
                         **({} if int8_io else {"input_shape": inputs[0][0]}))
        try:
            load_interpreter(tflite, num_threads=1, use_xnnpack=settings["delegate"] == "xnnpack")
            return tflite
        except TFLiteError:
            continue
    raise LatencyTableError(f"LiteRT could not prepare the int8 model of {label or 'a latency table part'} "
                            f"in {INT8_ATTEMPTS} attempts with different random statistics")


def _chunks(keys: Sequence[str], s: Mapping) -> list[list[str]]:
    chunks, current, params = [], [], 0
    for key in keys:
        size = _part_params(key, s)
        if current and (len(current) >= MAX_PARTS_PER_MODEL or params + size > MAX_PARAMS_PER_MODEL):
            chunks.append(current)
            current, params = [], 0
        current.append(key)
        params += size
    if current:
        chunks.append(current)
    return chunks


def convert_parts(keys: Sequence[str], settings: Mapping, log: Callable | None = None) -> dict[str, bytes]:
    """``{part key: standalone .tflite bytes}`` for the given part keys (fp32, or int8 with
    int8 input and output when ``settings["objective"]`` is ``"int8"``)."""
    import keras

    from mnas_keras.search.latency.slice import split_branches
    from mnas_keras.tflite import convert

    s = _settings(settings)
    out: dict[str, bytes] = {}
    keys = list(dict.fromkeys(keys))
    chunks = _chunks(keys, s)
    for number, chunk in enumerate(chunks, start=1):
        start = time.perf_counter()
        keras.utils.set_random_seed(number)
        recipe = NetworkRecipe.from_settings(s)
        tensors = [recipe.build_part(key, prefix=f"p{i}_") for i, key in enumerate(chunk)]
        model = keras.Model([t[0] for t in tensors], [t[1] for t in tensors], name="latency_parts")
        inputs = [(parse_part(key)["input_shape"], key.startswith("stem:")) for key in chunk]
        flatbuffer = _quantize(model, inputs, s, number, int8_io=True, label=f"parts {chunk[:2]}...") or convert(model)
        del model
        keras.backend.clear_session(free_memory=True)
        for key, part in zip(chunk, split_branches(flatbuffer)):
            out[key] = part
        if log:
            log(f"converted parts {len(out)}/{len(keys)} ({time.perf_counter() - start:.1f} s for {len(chunk)})")
    return out


def convert_network(blocks: Sequence[str], settings: Mapping) -> bytes:
    """The ``.tflite`` of a whole network as the search's evaluator builds it
    (:meth:`NetworkRecipe.build`; fp32, or int8 with float input and output for the
    ``"int8"`` objective)."""
    import keras

    from mnas_keras.tflite import convert

    s = _settings(settings)
    model = NetworkRecipe.from_settings(s).build(list(blocks))
    size = s["input_size"]
    try:
        return (_quantize(model, [((size, size, 3), True)], s, 0, int8_io=False, label="|".join(blocks))
                or convert(model, input_shape=(size, size, 3)))
    finally:
        del model
        keras.backend.clear_session(free_memory=True)


@dataclasses.dataclass
class Timing:
    """Latencies of several models timed together (see :func:`time_models`).

    Attributes:
        latencies: ``{name: median ms}`` as measured.
        relative: ``{name: latency / the anchor's latency in the same group}`` (with an anchor).
        anchor_ms: the anchor's median in each group, in order (with an anchor).
    """

    latencies: dict
    relative: dict
    anchor_ms: list
    #: ``{name: BenchmarkResult}`` (every run's time in ``times_ms``), and the anchor's per group.
    results: dict = dataclasses.field(default_factory=dict)
    anchor_results: list = dataclasses.field(default_factory=list)


#: The name the drift-correction anchor is timed under in each group.
ANCHOR = "__anchor__"


def time_models(tflites: Mapping[str, bytes | str], settings: Mapping, *, anchor: bytes | str | None = None,
                runs: int | None = None, warmup: int | None = None, rounds: int = 5,
                group: int = MAX_PARTS_PER_BENCHMARK, log: Callable | None = None) -> Timing:
    """Median LiteRT latency of each model: isolated, pinned, interleaved in groups.

    With ``anchor`` (a ``.tflite``, bytes or path), every group also times the anchor, and
    each model's latency is also given relative to the anchor's in its group. Interleaved in
    one process, both see the same machine speed, so the ratio cancels the drift of a shared
    or thermally throttled machine between groups (measured here: 5-10% within minutes).
    """
    from mnas_keras.tflite import benchmark_many

    s = _settings(settings)
    names = list(tflites)
    if ANCHOR in tflites:
        raise ValueError(f"{ANCHOR!r} is reserved for the anchor model")
    timing = Timing({}, {}, [])
    for start in range(0, len(names), group):
        batch = {n: tflites[n] for n in names[start:start + group]}
        if anchor is not None:
            batch[ANCHOR] = anchor
        results = benchmark_many(batch, num_threads=s["num_threads"], warmup=s["warmup"] if warmup is None else warmup,
                                 runs=s["runs"] if runs is None else runs, use_xnnpack=s["delegate"] == "xnnpack",
                                 isolate=True, rounds=rounds)
        timing.results.update({n: r for n, r in results.items() if n != ANCHOR})
        if anchor is not None:
            timing.anchor_results.append(results[ANCHOR])
            reference = results.pop(ANCHOR).median_ms
            timing.anchor_ms.append(reference)
            timing.relative.update({n: r.median_ms / reference for n, r in results.items()})
        timing.latencies.update({n: r.median_ms for n, r in results.items()})
        if log:
            log(f"timed {len(timing.latencies)}/{len(names)} models")
    return timing


def measure_networks_raw_ms(blocks_list: Sequence[Sequence[str]], settings: Mapping, log: Callable | None = None,
                            **options) -> list[float]:
    """Converts and times whole networks; their raw median milliseconds as measured now, in
    order (no drift correction: :meth:`LatencyTable.measure_networks_table_ms` gives the
    table's units)."""
    tflites = {f"net{i}": convert_network(b, settings) for i, b in enumerate(blocks_list)}
    options.setdefault("group", 16)
    times = time_models(tflites, settings, log=log, **options).latencies
    return [times[f"net{i}"] for i in range(len(blocks_list))]
