"""Keras model -> TFLite flatbuffer, built-in ops only, with optional quantization.

The default ``method="trace"`` traces the model once as a single ``tf.function`` (inference
mode) and hands that concrete function to ``tf.lite.TFLiteConverter`` on its frozen-graph
path: the variables are folded into constants and no SavedModel is written. It produces the
same operators and outputs as ``TFLiteConverter.from_keras_model`` (``method="keras"``, kept
for comparison) at a fraction of the cost: Keras's SavedModel export, which traces seven
functions and writes them to disk, is most of the stock converter's time (see
``benchmarks/RESULTS.md``).

Example:
    >>> import keras
    >>> from mnas_keras.tflite import convert, list_operators
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3),
    ...                           keras.layers.Activation("hard_swish")])
    >>> flatbuffer = convert(model)
    >>> list_operators(flatbuffer)
    {'CONV_2D': 1, 'HARD_SWISH': 1}
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from typing import Any, Callable, Iterable, Sequence, Union

import numpy as np

from mnas_keras import _files
from mnas_keras.tflite.errors import (
    InputShapeError,
    QuantizationError,
    TFLiteConversionError,
    TFLiteError,
    UnsupportedOpsError,
)
from mnas_keras.tflite.flatbuffer import METADATA_NAME, add_metadata, check_builtin_ops

QUANTIZATIONS = (None, "float16", "dynamic", "int8", "int8_io")
"""Accepted ``quantization`` values: float32, float16 weights, dynamic-range int8 weights,
full integer with float input/output, full integer with int8 input/output."""

METHODS = ("trace", "keras")

HARD_SWISH_MODES = ("auto", "native", "fold", "explicit")
"""``hard_swish`` choices of :func:`convert` (see its docstring)."""

DILATION_MODES = ("native", "keras")
"""``dilation`` choices of :func:`convert` (see its docstring)."""

RepresentativeData = Union[Callable[[], Iterable[Any]], Any]

_INT8 = ("int8", "int8_io")

FLOAT_OPS_IN_INT8 = ("SOFTMAX", "BATCH_MATMUL", "GELU")
"""Operators an int8 model with attention or GELU keeps in float32 (see :func:`convert`).

LiteRT's XNNPACK delegate runs none of them in int8 (the int8 SOFTMAX, the BATCH_MATMUL of
two activations and the int8 GELU fall back to built-in kernels and split the delegated
graph), but runs all of them, and the QUANTIZE/DEQUANTIZE around them, in float32."""


def _float_islands(model) -> bool:
    """Whether ``model`` has attention cores or GELU activations (by class/function name)."""
    from mnas_keras.models.graph import leaf_layers

    for layer in leaf_layers(model):
        if type(layer).__name__ in ("MultiQueryAttention", "MultiHeadAttention"):
            return True
        if getattr(getattr(layer, "activation", None), "__name__", "") == "gelu":
            return True
    return False


def _quantize_with_float_ops(converter, quantization):
    """Calibrates, then quantizes everything except :data:`FLOAT_OPS_IN_INT8`."""
    tf = _tf()
    from tensorflow.lite.python import convert as tfl_convert

    converter.experimental_mlir_quantizer = True
    converter._experimental_calibrate_only = True  # calibration statistics only
    calibrated = converter.convert()
    io_type = tf.int8 if quantization == "int8_io" else tf.float32
    return tfl_convert.mlir_quantize(
        calibrated,
        fully_quantize=quantization == "int8_io",
        input_data_type=io_type,
        output_data_type=io_type,
        denylisted_ops=list(FLOAT_OPS_IN_INT8),
    )


def _tf():
    import tensorflow as tf

    return tf


def _keras():
    import keras

    return keras


def load_keras_model(model):
    """Returns ``model`` itself (Keras 3 or tf_keras), or the model loaded from a ``.keras``
    file (safe mode on)."""
    import keras

    import mnas_keras.heads  # noqa: F401 - registers the package's models for loading
    import mnas_keras.models  # noqa: F401

    if isinstance(model, keras.Model):
        return model
    if callable(model) and hasattr(model, "inputs") and hasattr(model, "layers"):
        return model  # a tf_keras (Keras 2) model, e.g. from the QAT/pruning bridge
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not path.endswith(".keras"):
            raise TFLiteConversionError(
                f"model file {path!r} is not a Keras 3 '.keras' file; expected a path ending "
                "in '.keras' or a keras.Model"
            )
        from mnas_keras._serialization import InvalidKerasFileError, load_model

        try:
            return load_model(path)  # registers mnas_keras classes; names bad archives
        except InvalidKerasFileError as err:
            raise TFLiteConversionError(str(err)) from None
    raise TFLiteConversionError(
        f"expected a keras.Model or a path to a '.keras' file, received {type(model).__name__}"
    )


#: Compute dtypes TFLite's built-in kernels do not run (a mixed-precision model's layers).
HALF_COMPUTE_DTYPES = ("float16", "bfloat16")


def float32_compute(model):
    """``(model, 0)``, or a float32 twin of a mixed-precision model and how many layers it changed.

    A model trained with ``mixed_float16``/``mixed_bfloat16`` computes in half precision
    (its variables stay float32); TFLite's built-in kernels run neither, so every op of such
    a model was refused as non-builtin. The twin (nested models copied too) has the same
    layers and weights with a float32 policy; ``convert`` converts it.

    Example:
        >>> import keras
        >>> mixed = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, dtype="mixed_float16")])
        >>> twin, changed = float32_compute(mixed)
        >>> changed, twin.layers[-1].compute_dtype
        (1, 'float32')
    """
    layers = [layer for layer in model._flatten_layers(include_self=False)
              if not isinstance(layer, _keras().Model) and getattr(layer, "compute_dtype", None) in HALF_COMPUTE_DTYPES]
    if not layers:
        return model, 0
    from mnas_keras.tflite.dilation import _clone

    def replace(layer):
        if isinstance(layer, _keras().Model) or getattr(layer, "compute_dtype", None) not in HALF_COMPUTE_DTYPES:
            return None
        config = layer.get_config()
        config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    try:
        return _clone(model, replace), len(layers)
    except Exception as err:  # noqa: BLE001 - a subclassed model cannot be cloned: say what to do
        raise TFLiteConversionError(
            f"model {model.name!r} computes in {layers[0].compute_dtype} (mixed precision), which TFLite's "
            f"built-in kernels do not run, and it cannot be copied in float32 ({type(err).__name__}: {err}); "
            "rebuild it with dtype='float32' and load its weights"
        ) from None


def resolve_input_shapes(model, input_shape=None, batch_size=None) -> list[tuple]:
    """Full input shapes (batch first) for conversion, with ``input_shape`` filling ``None`` dims.

    Args:
        model: a built Keras model.
        input_shape: ``None`` (use the model's own), one shape without or with the batch
            dimension (``(64, 64, 3)`` or ``(1, 64, 64, 3)``), or a list of such shapes for
            a multi-input model.
        batch_size: the batch dimension to bake in (``None`` keeps it dynamic).

    Raises:
        InputShapeError: the rank differs, or a given size conflicts with a fixed one.

    Example:
        >>> import keras
        >>> m = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 1)])
        >>> resolve_input_shapes(m, (32, 32, 3))
        [(None, 32, 32, 3)]
        >>> resolve_input_shapes(m, (32, 32, 4))
        Traceback (most recent call last):
        ...
        mnas_keras.tflite.errors.InputShapeError: input 0 of model 'sequential...' has shape (None, None, None, 3); input_shape (32, 32, 4) conflicts with it at dimension 3 (4 != 3)
    """
    try:
        inputs = list(model.inputs)
    except (AttributeError, ValueError):
        inputs = []
    if not inputs:
        raise InputShapeError(
            f"model {model.name!r} has no defined inputs; build it on keras.Input(...) first"
        )
    if input_shape is None:
        given: list = [None] * len(inputs)
    elif len(inputs) == 1 and all(d is None or isinstance(d, (int, np.integer)) for d in input_shape):
        given = [tuple(input_shape)]
    else:
        given = [None if s is None else tuple(s) for s in input_shape]
    if len(given) != len(inputs):
        raise InputShapeError(
            f"model {model.name!r} has {len(inputs)} inputs; input_shape gives {len(given)} shapes"
        )
    shapes = []
    for index, (tensor, shape) in enumerate(zip(inputs, given)):
        own = tuple(tensor.shape)
        full = (batch_size,) + own[1:] if shape is None else tuple(shape)
        if len(full) == len(own) - 1:
            full = (batch_size,) + full
        if len(full) != len(own):
            raise InputShapeError(
                f"input {index} of model {model.name!r} has shape {own}; input_shape {shape} "
                f"has rank {len(shape)}, expected {len(own) - 1} (without batch) or {len(own)}"
            )
        if batch_size is not None:
            full = (batch_size,) + full[1:]
        merged = [None if full[0] is None else int(full[0])]
        for axis in range(1, len(own)):
            mine, theirs = own[axis], full[axis]
            if theirs is not None and int(theirs) < 1:
                raise InputShapeError(
                    f"input_shape {shape} has a non-positive size at dimension {axis}"
                )
            if mine is not None and theirs is not None and int(mine) != int(theirs):
                raise InputShapeError(
                    f"input {index} of model {model.name!r} has shape {own}; input_shape "
                    f"{shape} conflicts with it at dimension {axis} ({theirs} != {mine})"
                )
            merged.append(None if theirs is None and mine is None else int(theirs or mine))
        shapes.append(tuple(merged))
    return shapes


def _calibration_samples(representative_data, shapes, dtypes, limit) -> list[list[np.ndarray]]:
    """Materializes representative data as single-sample batches, validated against ``shapes``."""
    tf = _tf()
    if callable(representative_data) and not isinstance(representative_data, tf.data.Dataset):
        try:
            source = representative_data()
        except Exception as err:
            raise QuantizationError(
                f"representative_data() raised {type(err).__name__}: {err}"
            ) from None
    else:
        source = representative_data
    if isinstance(source, np.ndarray):
        source = [source]
    if isinstance(source, tf.data.Dataset):
        source = source.as_numpy_iterator()
    try:
        iterator = iter(source)
    except TypeError:
        raise QuantizationError(
            "representative_data must be a tf.data.Dataset, a numpy array of input batches, or "
            f"a callable returning an iterable of input batches; received {type(source).__name__}"
        ) from None
    samples: list[list[np.ndarray]] = []
    for element in iterator:
        if isinstance(element, dict):
            element = list(element.values())
        if isinstance(element, (tuple, list)):
            # (features, labels[, weights]) pairs from a labelled dataset: keep the features.
            parts = list(element)
            if len(shapes) == 1 and len(parts) >= 1:
                parts = [parts[0]]
            element = parts[0] if len(parts) == 1 else parts
        parts = element if isinstance(element, list) else [element]
        if len(parts) != len(shapes):
            raise QuantizationError(
                f"representative_data yields {len(parts)} arrays per element; the model has "
                f"{len(shapes)} inputs"
            )
        arrays = []
        for part, shape in zip(parts, shapes):
            array = np.asarray(part)
            if array.ndim == len(shape) - 1:
                array = array[None]
            if array.ndim != len(shape) or any(
                want is not None and int(want) != got for want, got in zip(shape[1:], array.shape[1:])
            ):
                raise QuantizationError(
                    f"representative_data batch of shape {array.shape} does not fit the model "
                    f"input shape {shape}"
                )
            arrays.append(array)
        for i in range(arrays[0].shape[0]):
            samples.append([a[i : i + 1].astype(d) for a, d in zip(arrays, dtypes)])
            if len(samples) >= limit:
                return samples
    if not samples:
        raise QuantizationError("representative_data yielded no input batches")
    return samples


def _configure(converter, quantization, representative_data, shapes, dtypes, calibration_steps):
    tf = _tf()
    if quantization not in QUANTIZATIONS:
        raise QuantizationError(
            f"unknown quantization {quantization!r}; expected one of {QUANTIZATIONS}"
        )
    if quantization in _INT8 and representative_data is None:
        raise QuantizationError(
            f"quantization={quantization!r} (full integer) needs representative_data: a "
            "tf.data.Dataset, an array of input batches, or a callable returning an iterable "
            "of input batches (about 100 samples from the training distribution)"
        )
    if quantization not in _INT8 and representative_data is not None:
        raise QuantizationError(
            f"representative_data is only used by quantization 'int8'/'int8_io', not "
            f"{quantization!r}"
        )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization is None:
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantization in _INT8:
        samples = _calibration_samples(representative_data, shapes, dtypes, calibration_steps)
        converter.representative_dataset = lambda: iter(samples)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if quantization == "int8_io":
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8


def _converter_error(err, model_name) -> TFLiteConversionError:
    """Turns a ``ConverterError`` into ours, naming non-builtin ops and their layers."""
    ops, layers = [], []
    for data in getattr(err, "errors", None) or []:
        code = str(getattr(data, "error_code", ""))
        name = data.operator.name if data.HasField("operator") else ""
        if "NEEDS_FLEX" in code or "NEEDS_CUSTOM" in code or (
            data.error_code and name and "neither a custom op nor a flex op" in data.error_message
        ):
            ops.append(name or "unknown")
            for call in data.location.call:
                if call.name:
                    layers.append(call.name)
                    break
    text = str(err)
    if not ops:
        found = re.findall(r"TF Select ops: ([^\n]+)", text)
        ops = [op.strip() for line in found for op in line.split(",")]
    if ops:
        return UnsupportedOpsError(ops, layers)
    lines = [line for line in text.splitlines() if "error:" in line]
    detail = (lines[-1] if lines else text.strip().splitlines()[-1] if text.strip() else "")[:500]
    return TFLiteConversionError(f"TFLite conversion of model {model_name!r} failed: {detail}")


@contextlib.contextmanager
def _quiet_converter():
    """Silences the converter's Python-side warnings (not its C++ log lines)."""
    import logging

    import warnings

    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            # Emitted for every full-integer conversion; the calibration covers the inputs.
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
            yield
    finally:
        logger.setLevel(level)


def trace(model, shapes: Sequence[tuple]):
    """One inference-mode concrete function of ``model`` for inputs of ``shapes``."""
    tf = _tf()
    specs = [
        tf.TensorSpec(shape, tf.as_dtype(tensor.dtype or "float32"), name=f"input_{i}")
        for i, (shape, tensor) in enumerate(zip(shapes, model.inputs))
    ]
    single = len(specs) == 1

    @tf.function(input_signature=specs, autograph=False)
    def serve(*args):
        return model(args[0] if single else list(args), training=False)

    try:
        return serve.get_concrete_function()
    except Exception as err:
        raise InputShapeError(
            f"model {model.name!r} cannot be traced at input shape(s) {list(shapes)}: "
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        ) from None


def convert(
    model,
    quantization: str | None = None,
    representative_data: RepresentativeData | None = None,
    input_shape: Sequence | None = None,
    *,
    batch_size: int | None = None,
    path: str | os.PathLike | None = None,
    method: str = "trace",
    calibration_steps: int = 100,
    hard_swish: str = "auto",
    dilation: str = "native",
) -> bytes:
    """Converts a Keras model to a TFLite flatbuffer that uses built-in operators only.

    An ``int8``/``int8_io`` model whose Keras model has an attention core
    (``MultiQueryAttention``, ``MultiHeadAttention``) or GELU activations keeps
    :data:`FLOAT_OPS_IN_INT8` in float32, with QUANTIZE/DEQUANTIZE around them, so that
    XNNPACK runs the whole model in one partition; the metadata records ``float_ops``.

    Args:
        model: a ``keras.Model`` or a path to a ``.keras`` file (loaded with safe mode on).
        quantization: ``None`` (float32), ``"float16"`` (float16 weights), ``"dynamic"``
            (dynamic-range int8 weights), ``"int8"`` (full integer, float input/output) or
            ``"int8_io"`` (full integer with int8 input and output tensors).
        representative_data: calibration inputs for the int8 modes: a ``tf.data.Dataset``
            (of inputs or ``(inputs, labels)``, batched or not), a numpy array of inputs, or
            a callable returning an iterable of input batches. At most ``calibration_steps``
            samples are used.
        input_shape: a shape with or without the batch dimension, filling the ``None``
            (spatial) dimensions of the model's input, e.g. ``(224, 224, 3)``.
        batch_size: bake in this batch size (default: dynamic, as the stock converter).
        path: also write the flatbuffer to this file.
        method: ``"trace"`` (fast, default) or ``"keras"`` (the stock
            ``TFLiteConverter.from_keras_model``; no ``input_shape``/``batch_size``).
        calibration_steps: the number of calibration samples for the int8 modes.
        hard_swish: how hard-swish activations are converted: ``"auto"`` (default:
            ``"fold"`` for ``int8``/``int8_io``, ``"native"`` otherwise), ``"native"`` (one
            HARD_SWISH operator: fastest in float, but XNNPACK runs it in float only, so an
            int8 model falls back to a slow kernel), ``"fold"`` (int8-friendly ADD+MUL with
            the ``1/6`` folded into the next layers' kernels) or ``"explicit"`` (ADD+MUL+MUL).
            The function is the same in every case; see :mod:`mnas_keras.tflite.rewrite`.
        dilation: ``"native"`` (default) writes dilated ``Conv2D``/``DepthwiseConv2D``
            layers as TFLite's native dilated ``CONV_2D``/``DEPTHWISE_CONV_2D`` at any
            (also dynamic) input shape; ``"keras"`` converts them as TensorFlow writes them,
            which leaves ``SPACE_TO_BATCH_ND``/``BATCH_TO_SPACE_ND`` pairs that XNNPACK
            does not run whenever a dimension is dynamic (see
            :mod:`mnas_keras.tflite.dilation`).

    A mixed-precision model (``mixed_float16``/``mixed_bfloat16`` policies) is converted as its
    float32 twin (:func:`float32_compute`; metadata ``float32_compute``): same weights,
    float32 compute, which is what TFLite's built-in kernels run.

    Returns:
        The ``.tflite`` flatbuffer bytes. The choices made are stored in its metadata:
        :func:`mnas_keras.tflite.conversion_info` reads them back.

    Raises:
        QuantizationError: an unknown mode, or int8 without usable representative data.
        InputShapeError: ``input_shape`` does not fit the model.
        UnsupportedOpsError: the model needs non-builtin (select TF / flex / custom) ops.
        TFLiteConversionError: any other conversion failure.

    Example:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(4, 3)])
        >>> data = np.random.default_rng(0).uniform(size=(8, 16, 16, 3)).astype("float32")
        >>> fb = convert(model, "int8", representative_data=data, input_shape=(16, 16, 3))
        >>> fb[4:8]
        b'TFL3'
    """
    tf = _tf()
    if method not in METHODS:
        raise TFLiteConversionError(f"unknown method {method!r}; expected one of {METHODS}")
    if hard_swish not in HARD_SWISH_MODES:
        raise TFLiteConversionError(f"unknown hard_swish mode {hard_swish!r}; expected one of {HARD_SWISH_MODES}")
    if dilation not in DILATION_MODES:
        raise TFLiteConversionError(f"unknown dilation mode {dilation!r}; expected one of {DILATION_MODES}")
    model = load_keras_model(model)
    shapes = resolve_input_shapes(model, input_shape, batch_size)
    half = 0
    if isinstance(model, _keras().Model):  # mixed precision: converted at float32 compute
        model, half = float32_compute(model)
    dilated = 0
    if dilation == "native" and isinstance(model, _keras().Model):
        from mnas_keras.tflite.dilation import native_dilated_convs

        model, dilated = native_dilated_convs(model)
    pools = 0
    if quantization in _INT8 and isinstance(model, _keras().Model):
        from mnas_keras.tflite.dilation import average_pools_as_depthwise

        model, pools = average_pools_as_depthwise(model)
    if hard_swish == "auto":
        hard_swish = "fold" if quantization in _INT8 else "native"
    rewrite = {"mode": "native"}
    if isinstance(model, _keras().Model):
        from mnas_keras.tflite.rewrite import count_hard_swish, rewrite_hard_swish

        if hard_swish == "native":
            rewrite = {"mode": "native", "layers": count_hard_swish(model)}
        else:
            model, rewrite = rewrite_hard_swish(model, hard_swish)
    dtypes = [np.dtype(getattr(t.dtype, "name", t.dtype) or "float32") for t in model.inputs]
    with _quiet_converter():
        if method == "keras":
            if input_shape is not None or batch_size is not None:
                raise InputShapeError(
                    "method='keras' converts the model at its own input shape; use "
                    "method='trace' to set input_shape or batch_size"
                )
            converter = tf.lite.TFLiteConverter.from_keras_model(model)
        else:
            concrete = trace(model, shapes)
            converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
            # Freeze the traced graph directly instead of saving a temporary SavedModel.
            converter.experimental_lower_to_saved_model = False
        _configure(converter, quantization, representative_data, shapes, dtypes, calibration_steps)
        float_ops = quantization in _INT8 and isinstance(model, _keras().Model) and _float_islands(model)
        try:
            # The stock path exports a SavedModel first and Keras prints its summary.
            with contextlib.redirect_stdout(io.StringIO()) if method == "keras" else contextlib.nullcontext():
                if float_ops:
                    flatbuffer = _quantize_with_float_ops(converter, quantization)
                else:
                    flatbuffer = converter.convert()
        except Exception as err:
            if isinstance(err, TFLiteConversionError):
                raise
            raise _converter_error(err, model.name) from None
    flatbuffer = bytes(flatbuffer)
    check_builtin_ops(flatbuffer)
    info = {"quantization": quantization, "hard_swish": rewrite}
    if half:
        info["float32_compute"] = {"layers": half}
    if dilated:
        info["dilation"] = {"mode": dilation, "layers": dilated}
    if pools:
        info["average_pools_as_depthwise"] = pools
    if float_ops:
        info["float_ops"] = list(FLOAT_OPS_IN_INT8)
    flatbuffer = add_metadata(flatbuffer, METADATA_NAME, json.dumps(info, sort_keys=True).encode())
    if path is not None:
        save(flatbuffer, path)
    return flatbuffer


def save(tflite: bytes, path: str | os.PathLike) -> str:
    """Writes flatbuffer bytes to ``path`` atomically (parent folders are created).

    Example:
        >>> import os, tempfile
        >>> target = os.path.join(tempfile.mkdtemp(), "sub", "m.tflite")
        >>> save(b"1234TFL3", target) == target
        True

    Raises:
        TFLiteError: ``path`` is a directory.
        OSError: the folder cannot be created or written.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise TFLiteError(f"cannot write the TFLite model to {path!r}: it is a directory; expected a file path "
                          "such as model.tflite")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = _files.mkstemp(dir=folder, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(bytes(tflite))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    return path
