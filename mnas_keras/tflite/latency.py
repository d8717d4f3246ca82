"""LiteRT latency measurement the way TFLite's ``benchmark_model`` does it.

One thread by default, warm-up invocations, then timed ``invoke()`` calls (LiteRT's Python
interpreter has no timing API, so each call is timed with ``time.perf_counter_ns``).
``isolate=True`` measures in a fresh Python process pinned to one core (it imports LiteRT and
numpy only, not TensorFlow) and exchanges JSON files with it, so a model that crashes the
runtime cannot take the caller down. :func:`benchmark_many` interleaves several models
round by round so that slow drifts of the machine hit them all alike.

This module imports neither TensorFlow nor Keras unless it has to convert a Keras model.

Example:
    >>> import keras
    >>> from mnas_keras.tflite import benchmark, convert
    >>> model = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(4, 3)])
    >>> result = benchmark(convert(model), input_shape=(16, 16, 3), warmup=2, runs=5)
    >>> result.num_threads, result.delegate, result.input_shapes
    (1, 'xnnpack', [[1, 16, 16, 3]])
    >>> result.min_ms <= result.median_ms <= result.p90_ms
    True
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Mapping, Sequence

import numpy as np

from mnas_keras.tflite import errors as _errors
from mnas_keras.tflite.errors import BenchmarkError, InputShapeError, InvalidModelError, TFLiteError
from mnas_keras.tflite.flatbuffer import read_model


@dataclasses.dataclass
class BenchmarkResult:
    """Latency statistics of one model, in milliseconds per ``invoke()``."""

    median_ms: float
    mean_ms: float
    p90_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    runs: int
    warmup: int
    num_threads: int
    delegate: str
    litert_version: str
    input_shapes: list
    input_dtypes: list
    model_bytes: int
    isolated: bool = False
    cpu: int | None = None
    name: str = ""
    times_ms: list = dataclasses.field(default_factory=list, repr=False)

    def to_dict(self, times: bool = False) -> dict:
        """A JSON-ready dict (``times=True`` keeps every run's time)."""
        data = dataclasses.asdict(self)
        if not times:
            data.pop("times_ms")
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "BenchmarkResult":
        """Inverse of :meth:`to_dict`."""
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})

    def __str__(self) -> str:
        where = f", pinned to cpu {self.cpu}" if self.cpu is not None else ""
        return (
            f"{self.name or 'model'}: median {self.median_ms:.3f} ms (mean {self.mean_ms:.3f}, "
            f"p90 {self.p90_ms:.3f}, min {self.min_ms:.3f}, std {self.std_ms:.3f}) over "
            f"{self.runs} runs, {self.num_threads} thread(s), {self.delegate}, LiteRT "
            f"{self.litert_version}{where}"
        )


def litert_version() -> str:
    """The installed ``ai-edge-litert`` version."""
    try:
        from importlib.metadata import version

        return version("ai-edge-litert")
    except Exception:  # pragma: no cover - only without package metadata
        return "unknown"


def _target_shape(detail: Mapping[str, Any], wanted: Sequence | None, index: int) -> list[int]:
    """The concrete shape to run input ``index`` at, given the model's shape signature."""
    signature = [int(d) for d in detail.get("shape_signature", detail["shape"])]
    current = [int(d) for d in detail["shape"]]
    if wanted is None:
        if any(d < 0 for d in signature[1:]):
            raise InputShapeError(
                f"TFLite input {index} ({detail['name']!r}) has unknown dimensions "
                f"{signature}; pass input_shape, e.g. {tuple(1 if d < 0 else d for d in signature[1:])}"
            )
        return [1] + current[1:] if signature and signature[0] < 0 else current
    wanted = [int(d) for d in wanted]
    if len(wanted) == len(signature) - 1:
        wanted = [1] + wanted
    if len(wanted) != len(signature) or any(d < 1 for d in wanted):
        raise InputShapeError(
            f"input_shape {tuple(wanted)} does not fit TFLite input {index} ({detail['name']!r}) "
            f"of shape {signature}: expected {len(signature) - 1} positive sizes (no batch) "
            f"or {len(signature)}"
        )
    for axis, (have, want) in enumerate(zip(signature, wanted)):
        if have >= 0 and have != want:
            raise InputShapeError(
                f"input_shape {tuple(wanted)} conflicts with TFLite input {index} "
                f"({detail['name']!r}) of fixed shape {signature} at dimension {axis}"
            )
    return wanted


def load_interpreter(tflite, num_threads: int = 1, use_xnnpack: bool = True, input_shape=None):
    """A LiteRT interpreter for ``tflite`` (bytes or path), resized and allocated.

    Args:
        tflite: the flatbuffer bytes or a ``.tflite`` path.
        num_threads: interpreter threads (>= 1).
        use_xnnpack: keep LiteRT's default XNNPACK delegate (``False``: reference kernels).
        input_shape: a shape (with or without batch) for models with ``None`` dimensions; or a
            list of shapes for several inputs. ``None`` batch dimensions become 1.

    Raises:
        InvalidModelError: the bytes are not a valid TFLite flatbuffer.
        InputShapeError: the shape is missing, wrong or rejected by the model's operators.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    data = read_model(tflite)
    if not isinstance(num_threads, int) or num_threads < 1:
        raise BenchmarkError(f"num_threads must be a positive int, received {num_threads!r}")
    resolver = OpResolverType.AUTO if use_xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        interpreter = Interpreter(
            model_content=data, num_threads=num_threads, experimental_op_resolver_type=resolver
        )
    except (ValueError, RuntimeError) as err:
        raise InvalidModelError(
            f"LiteRT could not load the TFLite model ({len(data)} bytes): {err}"
        ) from None
    details = interpreter.get_input_details()
    if input_shape is not None and len(details) > 1:
        shapes = list(input_shape)
    else:
        shapes = [input_shape] + [None] * (len(details) - 1)
    if len(shapes) != len(details):
        raise InputShapeError(f"the model has {len(details)} inputs; received {len(shapes)} shapes")
    for i, (detail, wanted) in enumerate(zip(details, shapes)):
        target = _target_shape(detail, wanted, i)
        if target != [int(d) for d in detail["shape"]]:
            interpreter.resize_tensor_input(detail["index"], target, strict=False)
    try:
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as err:
        got = [list(map(int, d["shape"])) for d in interpreter.get_input_details()]
        raise InputShapeError(
            f"the TFLite model cannot run at input shape(s) {got}: {str(err).strip()}"
        ) from None
    return interpreter


@dataclasses.dataclass
class DelegationReport:
    """How much of a model LiteRT's XNNPACK delegate took over.

    Attributes:
        partitions: delegated subgraphs (each boundary costs a hand-over; 1 is ideal).
        undelegated: ``{op_name: count}`` of the operators left to LiteRT's built-in kernels.
        operators: the model's operator count.
    """

    partitions: int
    undelegated: dict
    operators: int


def delegation(tflite, num_threads: int = 1, input_shape=None) -> DelegationReport:
    """Which operators of ``tflite`` XNNPACK runs, and which fall back to built-in kernels.

    A slow quantized model is usually one whose operators XNNPACK declined (an int8
    HARD_SWISH, an ADD whose quantization scales are out of its range): each one runs on a
    slower kernel and splits the delegated graph. LiteRT's Python API has no op profiler; this
    reads the interpreter's node list after the delegate replaced what it took.

    Example:
        >>> import keras
        >>> from mnas_keras.tflite import convert
        >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3)])
        >>> delegation(convert(model, batch_size=1))
        DelegationReport(partitions=1, undelegated={}, operators=1)
    """
    interpreter = load_interpreter(tflite, num_threads=num_threads, input_shape=input_shape)
    nodes = interpreter._get_ops_details()  # the execution plan's nodes, delegates included
    delegates = [n for n in nodes if n["op_name"] == "DELEGATE"]
    ops = [n for n in nodes if n["op_name"] != "DELEGATE"]
    into = {int(t) for n in delegates for t in n["inputs"]}
    out_of = {int(t) for n in delegates for t in n["outputs"]}
    graph_outputs = {int(d["index"]) for d in interpreter.get_output_details()}
    consumers: dict[int, list[int]] = {}
    for n in ops:
        for t in n["inputs"]:
            consumers.setdefault(int(t), []).append(n["index"])
    # An operator kept by the runtime writes tensors read by a delegate, by another kept
    # operator, or returned as model outputs; the delegate's own outputs are not its.
    kept: set[int] = set()
    changed = True
    while changed:
        changed = False
        for n in ops:
            outs = {int(t) for t in n["outputs"]}
            if n["index"] in kept or outs & out_of:
                continue
            if outs & (into | graph_outputs) or any(c in kept for t in outs for c in consumers.get(t, [])):
                kept.add(n["index"])
                changed = True
    counts: dict[str, int] = {}
    for n in ops:
        if n["index"] in kept:
            counts[n["op_name"]] = counts.get(n["op_name"], 0) + 1
    return DelegationReport(partitions=len(delegates), undelegated=counts, operators=len(ops))


def randomize_batch_norm(model, seed: int = 0, biases: bool = True):
    """Gives every BatchNormalization layer random, trained-looking statistics (in place).

    A freshly initialised network (gamma 1, beta 0, mean 0, variance 1) carries such small
    activations that the int8 quantization scales of residual ADDs fall outside what
    XNNPACK accepts, and it leaves those ADDs to slower kernels: int8 latency measured on
    untrained weights is then wrong. Measure int8 on trained weights, or after this
    (gamma and variance uniform in [0.5, 1.5], beta and mean ~ N(0, 0.2)). With ``biases``,
    convolutions and dense layers that have a bias (squeeze-excite, classifiers) get one in
    [0.1, 1]: with zero biases a narrow squeeze-excite ReLU can be dead on every input, and
    its zero-range int8 tensor makes XNNPACK fail to prepare the model.

    Example:
        >>> import keras
        >>> model = keras.Sequential([keras.Input((4, 4, 2)), keras.layers.BatchNormalization()])
        >>> float(randomize_batch_norm(model).layers[0].moving_variance.numpy().min()) >= 0.5
        True
    """
    import keras

    from mnas_keras.models.graph import leaf_layers

    rng = np.random.default_rng(seed)
    for layer in leaf_layers(model):  # nested models included
        if biases and isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) and layer.use_bias:
            layer.bias.assign(rng.uniform(0.1, 1.0, tuple(layer.bias.shape)).astype("float32"))
        if isinstance(layer, keras.layers.BatchNormalization):
            n = int(layer.moving_mean.shape[0])
            values = {"gamma": rng.uniform(0.5, 1.5, n), "beta": rng.normal(0, 0.2, n),
                      "moving_mean": rng.normal(0, 0.2, n), "moving_variance": rng.uniform(0.5, 1.5, n)}
            for weight in layer.weights:
                weight.assign(values[weight.name].astype("float32"))
    return model


def random_inputs(interpreter, seed: int = 0) -> list[np.ndarray]:
    """Random inputs of the right shape and dtype (uniform in [0, 1) or the integer range)."""
    rng = np.random.default_rng(seed)
    arrays = []
    for detail in interpreter.get_input_details():
        dtype = np.dtype(detail["dtype"])
        shape = tuple(int(d) for d in detail["shape"])
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            arrays.append(rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype))
        else:
            arrays.append(rng.uniform(size=shape).astype(dtype))
    return arrays


def _set_inputs(interpreter, arrays) -> None:
    for detail, array in zip(interpreter.get_input_details(), arrays):
        interpreter.set_tensor(detail["index"], array)


def _invoke(interpreter) -> None:
    try:
        interpreter.invoke()
    except (ValueError, RuntimeError) as err:
        raise BenchmarkError(f"LiteRT invoke() failed: {str(err).strip()}") from None


def _summary(times_ns: list[int]) -> dict:
    ms = np.asarray(times_ns, dtype=np.float64) / 1e6
    return {
        "median_ms": float(np.median(ms)),
        "mean_ms": float(ms.mean()),
        "p90_ms": float(np.percentile(ms, 90)),
        "std_ms": float(ms.std()),
        "min_ms": float(ms.min()),
        "max_ms": float(ms.max()),
        "times_ms": [float(t) for t in ms],
    }


def _measure(
    models: Mapping[str, Any],
    num_threads: int,
    warmup: int,
    runs: int,
    input_shape,
    use_xnnpack: bool,
    rounds: int,
    isolated: bool = False,
    cpu: int | None = None,
) -> dict[str, BenchmarkResult]:
    """Loads every model, warms each up, then times them interleaved over ``rounds``."""
    if runs < 1 or warmup < 0 or rounds < 1:
        raise BenchmarkError(
            f"expected runs >= 1, warmup >= 0, rounds >= 1; received runs={runs}, "
            f"warmup={warmup}, rounds={rounds}"
        )
    loaded = {}
    for name, tflite in models.items():
        shape = input_shape.get(name) if isinstance(input_shape, Mapping) else input_shape
        data = read_model(tflite)
        interpreter = load_interpreter(data, num_threads, use_xnnpack, shape)
        _set_inputs(interpreter, random_inputs(interpreter))
        for _ in range(warmup):
            _invoke(interpreter)
        loaded[name] = (interpreter, len(data))
    times: dict[str, list[int]] = {name: [] for name in loaded}
    per_round = [runs // rounds + (1 if r < runs % rounds else 0) for r in range(rounds)]
    clock = time.perf_counter_ns
    for count in per_round:
        for name, (interpreter, _) in loaded.items():
            bucket = times[name]
            for _ in range(count):
                start = clock()
                interpreter.invoke()
                bucket.append(clock() - start)
    version = litert_version()
    results = {}
    for name, (interpreter, size) in loaded.items():
        details = interpreter.get_input_details()
        results[name] = BenchmarkResult(
            **_summary(times[name]),
            runs=runs,
            warmup=warmup,
            num_threads=num_threads,
            delegate="xnnpack" if use_xnnpack else "none",
            litert_version=version,
            input_shapes=[[int(d) for d in x["shape"]] for x in details],
            input_dtypes=[np.dtype(x["dtype"]).name for x in details],
            model_bytes=size,
            isolated=isolated,
            cpu=cpu,
            name=name,
        )
    return results


def _as_tflite(model, input_shape, quantization, representative_data):
    """Bytes or path for ``model``; Keras models (or ``.keras`` paths) are converted first."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model)
    if isinstance(model, (str, os.PathLike)) and not os.fspath(model).endswith(".keras"):
        return os.fspath(model)
    from mnas_keras.tflite.conversion import convert

    return convert(
        model, quantization, representative_data=representative_data, input_shape=input_shape
    )


def benchmark_many(
    models: Mapping[str, Any],
    num_threads: int = 1,
    warmup: int = 10,
    runs: int = 50,
    input_shape=None,
    use_xnnpack: bool = True,
    isolate: bool = False,
    *,
    rounds: int = 5,
    cpu: int | None = None,
    timeout: float | None = 600.0,
) -> dict[str, BenchmarkResult]:
    """Measures several models interleaved (round-robin over ``rounds`` slices of ``runs``).

    Args:
        models: ``{name: tflite bytes, .tflite path, keras.Model or .keras path}``; Keras
            models are converted to float32 first.
        input_shape: one shape for all, or ``{name: shape}``.
        rounds: the timed runs of each model are split into this many slices, taken in turn.
        Other arguments as in :func:`benchmark`.

    Returns:
        ``{name: BenchmarkResult}`` in the order given.
    """
    tflites = {}
    for name, model in models.items():
        shape = input_shape.get(name) if isinstance(input_shape, Mapping) else input_shape
        tflites[name] = _as_tflite(model, shape, None, None)
    if not isolate:
        return _measure(tflites, num_threads, warmup, runs, input_shape, use_xnnpack, rounds)
    return _run_isolated(tflites, num_threads, warmup, runs, input_shape, use_xnnpack, rounds, cpu, timeout)


def benchmark(
    model_or_tflite,
    num_threads: int = 1,
    warmup: int = 10,
    runs: int = 50,
    input_shape=None,
    use_xnnpack: bool = True,
    isolate: bool = False,
    *,
    quantization: str | None = None,
    representative_data=None,
    cpu: int | None = None,
    timeout: float | None = 600.0,
    name: str = "",
) -> BenchmarkResult:
    """Median/mean/p90/std/min latency of one LiteRT inference, in milliseconds.

    Args:
        model_or_tflite: ``.tflite`` bytes or path, or a ``keras.Model`` / ``.keras`` path
            (converted first with ``quantization`` and ``representative_data``).
        num_threads: interpreter threads (the MnasNet paper measured one big core).
        warmup: untimed invocations before timing.
        runs: timed invocations.
        input_shape: the size to run a model with ``None`` dimensions at (with or without
            batch; a ``None`` batch runs at 1).
        use_xnnpack: keep LiteRT's default XNNPACK delegate.
        isolate: measure in a fresh process pinned to one core (``cpu``, default the last
            core this process may use); a crash there is reported as :class:`BenchmarkError`.
        timeout: seconds allowed for the isolated worker.
        name: a label stored in the result.

    Raises:
        InvalidModelError: corrupt, truncated or missing model file.
        InputShapeError: missing or impossible ``input_shape``.
        BenchmarkError: bad settings, or the runtime failed or crashed while measuring.
    """
    tflite = _as_tflite(model_or_tflite, input_shape, quantization, representative_data)
    label = name or (os.path.basename(tflite) if isinstance(tflite, str) else "model")
    models = {label: tflite}
    if isolate:
        results = _run_isolated(models, num_threads, warmup, runs, input_shape, use_xnnpack, 1, cpu, timeout)
    else:
        results = _measure(models, num_threads, warmup, runs, input_shape, use_xnnpack, 1)
    return results[label]


# ------------------------------------------------------------------ isolated worker
def _default_cpu() -> int | None:
    if not hasattr(os, "sched_getaffinity"):
        return None
    return max(os.sched_getaffinity(0))


def _run_isolated(models, num_threads, warmup, runs, input_shape, use_xnnpack, rounds, cpu, timeout):
    cpu = _default_cpu() if cpu is None else int(cpu)
    with tempfile.TemporaryDirectory(prefix="mnas_tflite_bench_") as folder:
        paths = {}
        for i, (name, tflite) in enumerate(models.items()):
            read_model(tflite)  # missing files and bad headers are reported here, by name
            if isinstance(tflite, str):
                paths[name] = os.path.abspath(tflite)
            else:
                paths[name] = os.path.join(folder, f"model_{i}.tflite")
                with open(paths[name], "wb") as f:
                    f.write(tflite)
        request = {
            "models": paths,
            "num_threads": num_threads,
            "warmup": warmup,
            "runs": runs,
            "input_shape": _jsonable_shape(input_shape),
            "use_xnnpack": bool(use_xnnpack),
            "rounds": rounds,
            "cpu": cpu,
        }
        request_path = os.path.join(folder, "request.json")
        result_path = os.path.join(folder, "result.json")
        with open(request_path, "w") as f:
            json.dump(request, f)
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in [env.get("PYTHONPATH")] if p])
        command = [sys.executable, "-m", "mnas_keras.tflite.latency", request_path, result_path]
        try:
            proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BenchmarkError(f"the isolated benchmark worker exceeded {timeout} s") from None
        if os.path.isfile(result_path):
            with open(result_path) as f:
                answer = json.load(f)
            if "error" in answer:
                kind = getattr(_errors, answer["error"]["type"], BenchmarkError)
                raise kind(answer["error"]["message"])
            return {n: BenchmarkResult.from_dict(d) for n, d in answer["results"].items()}
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        if proc.returncode < 0:
            try:
                sig = signal.Signals(-proc.returncode).name
            except ValueError:
                sig = str(-proc.returncode)
            raise BenchmarkError(
                f"the isolated benchmark worker was killed by {sig} while measuring "
                f"{sorted(models)}; the model is likely corrupt. Last output:\n{tail}"
            )
        raise BenchmarkError(
            f"the isolated benchmark worker exited with status {proc.returncode}:\n{tail}"
        )


def _jsonable_shape(shape):
    if shape is None:
        return None
    if isinstance(shape, Mapping):
        return {k: _jsonable_shape(v) for k, v in shape.items()}
    return [_jsonable_shape(s) if isinstance(s, (list, tuple)) else (None if s is None else int(s)) for s in shape]


def _worker(request_path: str, result_path: str) -> int:
    with open(request_path) as f:
        request = json.load(f)
    cpu = request.get("cpu")
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(cpu)})
    try:
        results = _measure(
            request["models"],
            request["num_threads"],
            request["warmup"],
            request["runs"],
            request["input_shape"],
            request["use_xnnpack"],
            request["rounds"],
            isolated=True,
            cpu=cpu,
        )
        answer: dict = {"results": {n: r.to_dict(times=True) for n, r in results.items()}}
    except TFLiteError as err:
        answer = {"error": {"type": type(err).__name__, "message": str(err)}}
    tmp = result_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(answer, f)
    os.replace(tmp, result_path)
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1], sys.argv[2]))
