"""``mnas-tflite``: convert models to TFLite, list their operators, benchmark them on LiteRT.

Usage::

    mnas-tflite convert --model=mnasnet_a1 --input_size=224 --quantization=int8 \\
        --calibration=random:100 --output=mnasnet_a1_int8.tflite
    mnas-tflite convert --model=trained.keras --quantization=float16 --output=m.tflite
    mnas-tflite ops --model=mnasnet_a1_int8.tflite
    mnas-tflite detect --model=ssdlite.tflite --image=street.jpg --output=street_boxes.png
    mnas-tflite benchmark --models=mnasnet_a1,mobilenet_v3_small,keras:MobileNetV2 \\
        --input_size=224 --quantization=none,int8 --runs=50 --isolate --json

A model is a registry name (``mnas_keras.list_models()``, with an optional width suffix such
as ``_075``), ``keras:<Name>`` for a ``keras.applications`` constructor, a ``.keras`` file or
(for ``ops`` and ``benchmark``) a ``.tflite`` file. Flags live in a private ``FlagValues``, so
importing this module defines no global absl flags.

Example:
    >>> main(["mnas-tflite", "convert"])
    Traceback (most recent call last):
    ...
    absl.app.UsageError: convert needs --model (a registry name, keras:<Name> or a .keras file)
"""

from __future__ import annotations

import json
import os
import sys
import time

from absl import app, flags

from mnas_keras.tflite.errors import TFLiteError

COMMANDS = ("convert", "ops", "benchmark", "detect")
_QUANT_CHOICES = ("none", "float16", "dynamic", "int8", "int8_io")


def _flag_values() -> flags.FlagValues:
    fv = flags.FlagValues()
    flags.DEFINE_string("model", None, "convert/ops: registry name, keras:<Name>, .keras or .tflite file.", flag_values=fv)
    flags.DEFINE_list("models", [], "benchmark: comma-separated models (same forms as --model).", flag_values=fv)
    flags.DEFINE_integer("input_size", 224, "Square input size for built or size-less models.", lower_bound=32, flag_values=fv)
    flags.DEFINE_integer("classes", 1000, "Classifier classes of built models.", lower_bound=1, flag_values=fv)
    flags.DEFINE_list("quantization", ["none"], f"One of {_QUANT_CHOICES} (benchmark: a comma list).", flag_values=fv)
    flags.DEFINE_string(
        "calibration", None,
        "int8 calibration data: 'random:N' (uniform [0, 255], fine for latency only), "
        "'digits:N' (scikit-learn digits) or a .npy file of input images.", flag_values=fv,
    )
    flags.DEFINE_string("image", None, "detect: the image file to run the detector on.", flag_values=fv)
    flags.DEFINE_float("min_score", 0.3, "detect: draw detections scoring at least this.", flag_values=fv)
    flags.DEFINE_string("output", None, "convert: output .tflite path (default <model>[_<quant>].tflite).", flag_values=fv)
    flags.DEFINE_integer("threads", 1, "LiteRT interpreter threads.", lower_bound=1, flag_values=fv)
    flags.DEFINE_integer("warmup", 10, "Untimed warm-up invocations.", lower_bound=0, flag_values=fv)
    flags.DEFINE_integer("runs", 50, "Timed invocations per model.", lower_bound=1, flag_values=fv)
    flags.DEFINE_integer("rounds", 5, "Interleaving rounds when benchmarking several models.", lower_bound=1, flag_values=fv)
    flags.DEFINE_boolean("isolate", False, "Measure in a fresh process pinned to one core.", flag_values=fv)
    flags.DEFINE_boolean("xnnpack", True, "Use LiteRT's default XNNPACK delegate.", flag_values=fv)
    flags.DEFINE_boolean("json", False, "Print JSON instead of a table.", flag_values=fv)
    flags.DEFINE_enum(
        "hard_swish", "auto", ["auto", "native", "fold", "explicit"],
        "How hard-swish converts (auto: int8-friendly 'fold' for int8, the native op otherwise).",
        flag_values=fv,
    )
    return fv


def usage() -> str:
    """The command line help."""
    return __doc__.split("Example:")[0].strip() + "\n\nFlags:\n" + _flag_values().get_help()


def _quantizations(values) -> list[str | None]:
    out = []
    for value in values:
        if value not in _QUANT_CHOICES:
            raise app.UsageError(f"--quantization={value!r}; expected one of {_QUANT_CHOICES}")
        out.append(None if value == "none" else value)
    return out


def _model_shape(model, size: int) -> tuple[int, int, int]:
    """The (height, width, channels) a Keras model is converted at: its own fixed size, else
    ``size`` x ``size``."""
    height, width, channels = (model.inputs[0].shape[1:] + (None, None, None))[:3]
    if height is None or width is None:
        height = width = size
    return int(height), int(width), int(channels or 3)


def _calibration(spec: str | None, size: int, quantization, shape: tuple[int, int, int] | None = None):
    """Calibration images for the int8 modes: ``random:N`` / ``digits:N`` made at ``shape``
    (the model's input; default ``size`` x ``size`` x 3), or a ``.npy`` file's images."""
    if quantization not in ("int8", "int8_io"):
        return None
    height, width, channels = shape or (size, size, 3)
    if not spec:
        raise app.UsageError(
            f"--quantization={quantization} needs --calibration ('random:N', 'digits:N' or a .npy file)"
        )
    import numpy as np

    kind, _, count = spec.partition(":")
    if kind in ("random", "digits"):
        try:
            n = int(count or 100)
        except ValueError:
            n = 0
        if n < 1:
            raise app.UsageError(f"--calibration={spec!r}: expected {kind}:<number of samples >= 1>")
        if kind == "random":
            return np.random.default_rng(0).uniform(0, 255, (n, height, width, channels)).astype("float32")
        from mnas_keras.datasets import load_digits

        if height != width or channels not in (1, 3):
            raise app.UsageError(f"--calibration={spec!r}: digits are square images of 1 or 3 channels; the model "
                                 f"takes {height}x{width}x{channels}: use random:N or a .npy file")
        return load_digits(size=height, channels=channels)[0][0][:n]
    if spec.endswith(".npy"):
        if not os.path.isfile(spec):
            raise app.UsageError(f"--calibration file {spec!r} does not exist")
        return _calibration_file(spec)
    raise app.UsageError(f"--calibration={spec!r}; expected 'random:N', 'digits:N' or a .npy file")


def _calibration_file(path: str):
    """The images of a ``.npy`` calibration file: numeric, ``(N, H, W, C)``, N >= 1, finite."""
    import numpy as np

    try:
        data = np.load(path, allow_pickle=False)
    except ValueError as err:
        if "pickle" in str(err):
            raise app.UsageError(
                f"--calibration file {path!r} holds pickled Python objects, which are not loaded; "
                "expected a numeric array of images (N, H, W, C) saved with numpy.save"
            ) from None
        raise app.UsageError(f"--calibration file {path!r} is not a valid .npy array: {err}") from None
    except (OSError, EOFError) as err:
        raise app.UsageError(f"--calibration file {path!r} cannot be read: {err}") from None
    if not isinstance(data, np.ndarray) or data.dtype.kind not in "uif" or data.ndim != 4 or len(data) < 1:
        raise app.UsageError(
            f"--calibration file {path!r} holds an array of shape {getattr(data, 'shape', None)} and dtype "
            f"{getattr(data, 'dtype', None)}; expected numeric images (N, H, W, C) with N >= 1"
        )
    data = data.astype("float32")
    if not np.isfinite(data).all():
        raise app.UsageError(f"--calibration file {path!r} holds NaN or infinite values")
    return data


def _load(name: str, size: int, classes: int):
    """(model or tflite path, input_shape for conversion) for a model argument."""
    if name.endswith(".tflite"):
        return name, None
    if name.endswith(".keras"):
        from mnas_keras.tflite.conversion import load_keras_model

        model = load_keras_model(name)
        dims = tuple(model.inputs[0].shape[1:3])
        return model, ((size, size, model.inputs[0].shape[-1]) if None in dims else None)
    if name.startswith("keras:"):
        import keras

        constructor = getattr(keras.applications, name[len("keras:"):], None)
        if constructor is None:
            raise app.UsageError(f"{name!r}: keras.applications has no {name[6:]!r}")
        return constructor(input_shape=(size, size, 3), weights=None, classes=classes), None
    import mnas_keras
    from mnas_keras.applications.registry import UnknownModelError

    try:
        return mnas_keras.create_model(name, input_shape=(size, size, 3), classes=classes), None
    except UnknownModelError as err:
        raise app.UsageError(str(err)) from None


def _size_if_dynamic(path: str, size: int):
    """``(size, size, C)`` for a .tflite file whose spatial size is unknown, else None."""
    from mnas_keras.tflite.latency import load_interpreter

    try:
        load_interpreter(path)
        return None
    except TFLiteError as err:
        if "unknown dimensions" not in str(err):
            raise
    from ai_edge_litert.interpreter import Interpreter

    from mnas_keras.tflite.flatbuffer import read_model

    detail = Interpreter(model_content=read_model(path)).get_input_details()[0]
    return (size, size, int(detail["shape_signature"][-1]))


def _convert(fv) -> int:
    from mnas_keras.tflite.conversion import convert

    if not fv.model:
        raise app.UsageError("convert needs --model (a registry name, keras:<Name> or a .keras file)")
    if len(fv.quantization) != 1:
        raise app.UsageError("convert takes exactly one --quantization")
    (quantization,) = _quantizations(fv.quantization)
    if fv.model.endswith(".tflite"):
        raise app.UsageError(f"{fv.model!r} is already a .tflite file")
    if fv.output:
        from mnas_keras._cli import check_writable_dir

        check_writable_dir(os.path.dirname(os.path.abspath(fv.output)), "--output folder")
    data = _calibration(fv.calibration, fv.input_size, quantization)  # checked before any model is built
    model, shape = _load(fv.model, fv.input_size, fv.classes)
    if data is not None and not fv.calibration.endswith(".npy"):  # at the model's own size and channels
        data = _calibration(fv.calibration, fv.input_size, quantization, _model_shape(model, fv.input_size))
    stem = os.path.splitext(os.path.basename(fv.model))[0].replace(":", "_")
    output = fv.output or f"{stem}{'_' + quantization if quantization else ''}.tflite"
    start = time.perf_counter()
    flatbuffer = convert(model, quantization, representative_data=data, input_shape=shape, path=output,
                         hard_swish=fv.hard_swish)
    seconds = time.perf_counter() - start
    record = {"model": fv.model, "quantization": quantization or "none", "output": output,
              "bytes": len(flatbuffer), "convert_s": round(seconds, 3),
              "hard_swish": _hard_swish_mode(flatbuffer)}
    print(json.dumps(record) if fv.json else
          f"wrote {output} ({len(flatbuffer) / 1024:.1f} KiB, {record['quantization']}, hard-swish "
          f"{record['hard_swish']}) in {seconds:.2f} s")
    return 0


def _hard_swish_mode(tflite) -> str:
    """How the model's hard-swish layers were converted, from the metadata ``convert`` writes."""
    from mnas_keras.tflite.flatbuffer import conversion_info

    info = conversion_info(tflite) or {}
    report = info.get("hard_swish", {})
    return "none" if report.get("layers") == 0 else report.get("mode", "unknown")


def _ops(fv) -> int:
    from mnas_keras.tflite.flatbuffer import list_operators, non_builtin_operators

    if not fv.model:
        raise app.UsageError("ops needs --model (a .tflite file, or a model to convert first)")
    if fv.model.endswith(".tflite"):
        tflite = fv.model
    else:
        from mnas_keras.tflite.conversion import convert

        model, shape = _load(fv.model, fv.input_size, fv.classes)
        tflite = convert(model, input_shape=shape)
    ops = list_operators(tflite)
    bad = non_builtin_operators(tflite)
    if fv.json:
        print(json.dumps({"model": fv.model, "operators": ops, "non_builtin": bad}))
    else:
        for name, count in sorted(ops.items(), key=lambda kv: -kv[1]):
            print(f"{name:<28}{count:>6}")
        print(f"{'total':<28}{sum(ops.values()):>6}" + (f"   NON-BUILTIN: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


def _benchmark(fv) -> int:
    from mnas_keras.tflite.conversion import convert
    from mnas_keras.tflite.latency import benchmark_many

    names = fv.models or ([fv.model] if fv.model else [])
    if not names:
        raise app.UsageError("benchmark needs --models (comma-separated) or --model")
    quantizations = _quantizations(fv.quantization)
    tflites, rows, shapes = {}, {}, {}
    for name in names:
        model, shape = _load(name, fv.input_size, fv.classes)
        for quantization in quantizations:
            key = f"{name} [{quantization or 'fp32'}]"
            if isinstance(model, str):
                if quantization is not None:
                    raise app.UsageError(f"{name!r} is a .tflite file; it cannot be re-quantized")
                tflites[key], seconds = model, 0.0
                shapes[key] = _size_if_dynamic(model, fv.input_size)
            else:
                spec = fv.calibration or "random:32"
                data = _calibration(spec, fv.input_size, quantization,
                                    None if spec.endswith(".npy") else _model_shape(model, fv.input_size))
                start = time.perf_counter()
                tflites[key] = convert(model, quantization, representative_data=data, input_shape=shape,
                                       hard_swish=fv.hard_swish)
                seconds = time.perf_counter() - start
            rows[key] = {"model": name, "quantization": quantization or "none", "convert_s": round(seconds, 3),
                         "hard_swish": _hard_swish_mode(tflites[key])}
    results = benchmark_many(
        tflites, num_threads=fv.threads, warmup=fv.warmup, runs=fv.runs,
        input_shape=shapes,
        use_xnnpack=fv.xnnpack, isolate=fv.isolate, rounds=fv.rounds,
    )
    records = [{**rows[key], **result.to_dict()} for key, result in results.items()]
    if fv.json:
        print(json.dumps(records, indent=1))
        return 0
    header = f"{'model':<34}{'quant':>8}{'hswish':>8}{'KiB':>9}{'conv s':>8}{'median':>9}{'mean':>9}{'p90':>9}{'min':>9}{'std':>8}"
    print(header)
    print("-" * len(header))
    for r in records:
        print(
            f"{r['model']:<34}{r['quantization']:>8}{r['hard_swish']:>8}{r['model_bytes'] / 1024:>9.0f}{r['convert_s']:>8.2f}"
            f"{r['median_ms']:>9.3f}{r['mean_ms']:>9.3f}{r['p90_ms']:>9.3f}{r['min_ms']:>9.3f}{r['std_ms']:>8.3f}"
        )
    by_model: dict[str, dict[str, float]] = {}
    for r in records:
        by_model.setdefault(r["model"], {})[r["quantization"]] = r["median_ms"]
    pairs = [(m, q) for m, q in by_model.items() if "none" in q and len(q) > 1]
    if pairs:
        print()
        print(f"{'model':<34}" + "".join(f"{k + '/fp32':>14}" for k in pairs[0][1] if k != "none"))
        for model, medians in pairs:
            print(f"{model:<34}" + "".join(
                f"{medians[k] / medians['none']:>14.2f}" for k in medians if k != "none"))
    first = records[0]
    print(
        f"(ms per invoke; {first['num_threads']} thread(s), {first['delegate']}, LiteRT "
        f"{first['litert_version']}, {first['runs']} runs after {first['warmup']} warm-up, "
        f"{'isolated on cpu ' + str(first['cpu']) if first['isolated'] else 'in-process'})"
    )
    return 0


def _detect(fv) -> int:
    """Runs a ``convert_detector`` .tflite on one image and draws its boxes into a PNG."""
    if not fv.model or not fv.model.endswith(".tflite"):
        raise app.UsageError("detect needs --model=<detector>.tflite (made by mnas_keras.tflite.convert_detector)")
    if not fv.image:
        raise app.UsageError("detect needs --image=<image file>")
    import numpy as np
    from PIL import Image

    from mnas_keras.tflite.detection import run_detector
    from mnas_keras.tflite.errors import InvalidModelError

    if not os.path.exists(fv.model):
        raise InvalidModelError(f"--model {fv.model!r} does not exist")
    try:
        image = Image.open(fv.image).convert("RGB")
    except (OSError, ValueError) as err:
        raise TFLiteError(f"--image {fv.image!r} cannot be read as an image: {err}") from None
    result = run_detector(fv.model, np.asarray(image, np.float32))
    if "boxes" not in result:
        raise TFLiteError(f"{fv.model!r} is a raw export (no TFLite_Detection_PostProcess); convert it with postprocess=True")
    from mnas_keras.heads.drawing import draw_boxes

    scores = np.asarray(result["scores"], np.float64)
    keep = scores >= fv.min_score
    boxes = np.clip(np.asarray(result["boxes"], np.float64)[keep], 0.0, 1.0)
    classes = np.asarray(result["classes"])[keep]
    width, height = image.size
    image = Image.fromarray(draw_boxes(np.asarray(image), boxes, classes, scores[keep],
                                       width=max(1, round(min(width, height) / 200))))
    kept = [{"box": [round(float(v), 4) for v in box], "class": int(cls), "score": round(float(score), 4)}
            for box, cls, score in zip(boxes, classes, scores[keep])]
    output = fv.output or os.path.splitext(fv.image)[0] + "_detections.png"
    image.save(output)
    print(json.dumps({"output": output, "detections": kept}))
    return 0


def main(argv) -> int:
    """Entry point with an explicit argv (``argv[0]`` is the program name)."""
    fv = _flag_values()
    try:
        rest = fv(list(argv))
    except flags.Error as err:
        raise app.UsageError(str(err)) from None
    command = rest[1] if len(rest) > 1 else None
    if command not in COMMANDS or len(rest) > 2:
        raise app.UsageError(f"expected one command of {COMMANDS}; received {rest[1:]}")
    from mnas_keras import _cli

    _cli.import_tensorflow(sys.argv)  # argv here has lost --verbosity to absl
    try:
        return {"convert": _convert, "ops": _ops, "benchmark": _benchmark, "detect": _detect}[command](fv)
    except TFLiteError as err:
        print(f"mnas-tflite {command}: error: {_cli.one_line(err)}", file=sys.stderr)
        return 2


def _parse_absl_flags(argv):
    if any(arg in ("-h", "--help", "--helpshort", "--helpfull", "help") for arg in argv[1:]):
        print(usage())
        sys.exit(0)
    from mnas_keras import _cli

    try:
        rest = flags.FLAGS(argv, known_only=True)
    except flags.Error as err:
        _cli.fail("mnas-tflite", err)
    _cli.quiet_logs(argv)  # the converter logs at INFO through absl
    return rest


def run() -> None:
    """Console script ``mnas-tflite``: bad flags, values and files exit 2 with one
    ``mnas-tflite: error:`` line; TensorFlow's start-up noise only with ``--verbosity``."""
    from mnas_keras import _cli

    _cli.quiet_logs(sys.argv)
    app.run(lambda argv: _cli.stop_on_interrupt("mnas-tflite", _cli.guard, "mnas-tflite", main, argv, resumable=False),
            flags_parser=_parse_absl_flags)


if __name__ == "__main__":
    run()
