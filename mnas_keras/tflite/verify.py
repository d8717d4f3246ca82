"""Parity between a Keras model and its TFLite conversion, run on LiteRT.

Example:
    >>> import keras, numpy as np
    >>> from mnas_keras.tflite import compare, convert
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3),
    ...                           keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    >>> data = np.random.default_rng(0).normal(size=(6, 8, 8, 3)).astype("float32")
    >>> report = compare(model, convert(model), data)
    >>> report.max_abs_diff < 1e-5, report.top1_agreement, report.num_samples
    (True, 1.0, 6)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from mnas_keras.tflite.errors import InputShapeError, TFLiteError
from mnas_keras.tflite.latency import load_interpreter


@dataclasses.dataclass
class ParityReport:
    """How far LiteRT's outputs are from Keras's on the same inputs.

    Attributes:
        max_abs_diff: the largest ``|keras - tflite|`` over all outputs and samples.
        max_rel_diff: ``max_abs_diff`` divided by the largest ``|keras|`` output (relative
            to the output's range; per-element ratios explode near zero).
        mean_abs_diff: the mean of ``|keras - tflite|``.
        top1_agreement: the share of samples whose argmax agrees, for 2-D (classifier)
            first outputs; ``None`` otherwise.
        num_samples: samples compared.
        quantized_io: whether LiteRT's input/output were integer (quantized for the run and
            dequantized for the comparison).
    """

    max_abs_diff: float
    max_rel_diff: float
    mean_abs_diff: float
    top1_agreement: float | None
    num_samples: int
    quantized_io: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        top1 = "n/a" if self.top1_agreement is None else f"{100 * self.top1_agreement:.1f}%"
        return (
            f"max |diff| {self.max_abs_diff:.3g} (relative {self.max_rel_diff:.3g}), mean "
            f"{self.mean_abs_diff:.3g}, top-1 agreement {top1} over {self.num_samples} samples"
        )


def _batches(data, batch_size):
    """Yields numpy input batches from an array or a tf.data.Dataset (features or pairs)."""
    if isinstance(data, np.ndarray):
        for start in range(0, len(data), batch_size):
            yield data[start : start + batch_size]
        return
    import tensorflow as tf

    if isinstance(data, tf.data.Dataset):
        for element in data.as_numpy_iterator():
            if isinstance(element, (tuple, list)):
                element = element[0]
            yield np.asarray(element)
        return
    raise TFLiteError(
        f"compare() data must be a numpy array of inputs or a tf.data.Dataset; received "
        f"{type(data).__name__}"
    )


def _quantize(array: np.ndarray, detail) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    if not np.issubdtype(dtype, np.integer):
        return array.astype(dtype)
    scale, zero = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(array / scale + zero), info.min, info.max).astype(dtype)


def _dequantize(array: np.ndarray, detail) -> np.ndarray:
    if not np.issubdtype(array.dtype, np.integer):
        return array.astype(np.float64)
    scale, zero = detail["quantization"]
    return (array.astype(np.float64) - zero) * scale


def run_tflite(tflite, data, *, num_threads: int = 1, batch_size: int = 32) -> list[np.ndarray]:
    """Runs a single-input TFLite model on ``data``; returns each output, float64, all samples.

    Integer (int8/uint8) inputs are quantized and outputs dequantized with the tensors' own
    scale and zero point. A fixed batch dimension (e.g. 1) is run sample by sample.
    """
    return _run_tflite(tflite, data, num_threads, batch_size)[0]


def _one_sample_hint(tflite, data, num_threads) -> None:
    """Raises a clearer ``InputShapeError`` when ``data`` is one sample without its batch axis
    (``(H, W, C)`` for a model taking ``(N, H, W, C)``)."""
    if not isinstance(data, np.ndarray):
        return
    (detail,) = load_interpreter(tflite, num_threads).get_input_details()
    expected = [int(d) for d in detail["shape_signature"]]
    if data.ndim == len(expected) - 1:
        sample = ", ".join("?" if d < 0 else str(d) for d in expected[1:])
        raise InputShapeError(
            f"data of shape {tuple(data.shape)} is one sample; expected a batch (N, {sample}): pass "
            "data[None] (or numpy.expand_dims(data, 0))"
        ) from None


def _run_tflite(tflite, data, num_threads, batch_size):
    interpreter = None
    outputs: list[list[np.ndarray]] = []
    quantized = False
    for batch in _batches(data, batch_size):
        if interpreter is None:
            try:
                interpreter = load_interpreter(tflite, num_threads, input_shape=batch.shape[1:])
            except InputShapeError:
                _one_sample_hint(tflite, data, num_threads)
                raise
            (detail,) = interpreter.get_input_details()
            dynamic_batch = int(detail["shape_signature"][0]) < 0
            out_details = interpreter.get_output_details()
            outputs = [[] for _ in out_details]
            quantized = np.issubdtype(np.dtype(detail["dtype"]), np.integer)
        chunks = [batch] if dynamic_batch else [batch[i : i + 1] for i in range(len(batch))]
        for chunk in chunks:
            if dynamic_batch and int(interpreter.get_input_details()[0]["shape"][0]) != len(chunk):
                interpreter.resize_tensor_input(detail["index"], [len(chunk), *chunk.shape[1:]], strict=False)
                interpreter.allocate_tensors()
            interpreter.set_tensor(detail["index"], _quantize(chunk, detail))
            interpreter.invoke()
            for store, out in zip(outputs, interpreter.get_output_details()):
                store.append(_dequantize(interpreter.get_tensor(out["index"]).copy(), out))
    if interpreter is None:
        raise TFLiteError("compare() received no input samples")
    return [np.concatenate(parts) for parts in outputs], quantized


def _keras_outputs(model, data, batch_size) -> list[np.ndarray]:
    import tensorflow as tf

    parts: list[list[np.ndarray]] = []
    for batch in _batches(data, batch_size):
        out = tf.nest.flatten(model(batch, training=False))
        if not parts:
            parts = [[] for _ in out]
        for store, tensor in zip(parts, out):
            store.append(np.asarray(tensor, dtype=np.float64))
    return [np.concatenate(p) for p in parts]


def compare(model, tflite, data, *, num_threads: int = 1, batch_size: int = 32) -> ParityReport:
    """Compares Keras and LiteRT outputs of a single-input model on the same inputs.

    Args:
        model: the Keras model (or ``.keras`` path).
        tflite: its conversion, as bytes or a ``.tflite`` path.
        data: input samples, a numpy array ``(N, ...)`` or a ``tf.data.Dataset`` of input
            batches (or ``(inputs, labels)`` batches).
        num_threads: LiteRT threads.
        batch_size: batch size for array data.

    Returns:
        A :class:`ParityReport`.

    Raises:
        InputShapeError: the data's shape does not fit the converted model.
        TFLiteError: empty data or mismatched outputs.
    """
    from mnas_keras.tflite.conversion import load_keras_model

    model = load_keras_model(model)
    if isinstance(data, np.ndarray):
        data = data.astype(np.float32) if data.dtype == np.float64 else data
    lite, quantized = _run_tflite(tflite, data, num_threads, batch_size)
    ref = _keras_outputs(model, data, batch_size)
    if len(ref) != len(lite) or any(a.shape != b.shape for a, b in zip(ref, lite)):
        raise InputShapeError(
            f"Keras outputs {[a.shape for a in ref]} and TFLite outputs "
            f"{[b.shape for b in lite]} do not match"
        )
    diffs = np.concatenate([np.abs(a - b).ravel() for a, b in zip(ref, lite)])
    scale = max(float(max(np.abs(a).max() for a in ref)), np.finfo(np.float32).tiny)
    top1: Any = None
    if ref[0].ndim == 2:
        top1 = float(np.mean(ref[0].argmax(-1) == lite[0].argmax(-1)))
    return ParityReport(
        max_abs_diff=float(diffs.max()),
        max_rel_diff=float(diffs.max() / scale),
        mean_abs_diff=float(diffs.mean()),
        top1_agreement=top1,
        num_samples=int(ref[0].shape[0]),
        quantized_io=quantized,
    )
