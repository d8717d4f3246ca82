"""Errors raised by ``mnas_keras.tflite``.

Every error is a ``ValueError`` subclass whose message names the bad input (model, file, op,
shape or argument) and what was expected, so callers never see a deep TensorFlow traceback.

Example:
    >>> issubclass(UnsupportedOpsError, TFLiteConversionError)
    True
    >>> str(UnsupportedOpsError(["FlexMatrixDeterminant"]))  # doctest: +ELLIPSIS
    'the converted model uses non-builtin TFLite operators: FlexMatrixDeterminant; ...'
"""

from __future__ import annotations

from typing import Iterable


class TFLiteError(ValueError):
    """Base class of every error raised by ``mnas_keras.tflite``."""


class TFLiteConversionError(TFLiteError):
    """A Keras model could not be converted to a TFLite flatbuffer."""


class UnsupportedOpsError(TFLiteConversionError):
    """The model needs operators that are not TFLite built-ins (select TF / flex / custom).

    Attributes:
        ops: the offending operator names, e.g. ``["FlexMatrixDeterminant"]`` or
            ``["tf.MatrixDeterminant"]``.
        layers: where known, the Keras layers (graph locations) that produced them.
    """

    def __init__(self, ops: Iterable[str], layers: Iterable[str] = ()):
        self.ops = sorted(set(ops))
        self.layers = sorted(set(layers))
        where = f" (from {', '.join(self.layers)})" if self.layers else ""
        super().__init__(
            "the converted model uses non-builtin TFLite operators: "
            f"{', '.join(self.ops)}{where}; expected built-in ops only (no select TF / flex "
            "or custom ops), so replace the layers that produce them"
        )


class QuantizationError(TFLiteConversionError):
    """Bad ``quantization`` choice or missing/ill-formed representative data."""


class InvalidModelError(TFLiteError):
    """A ``.tflite`` file or buffer is missing, truncated or not a valid TFLite flatbuffer."""


class InputShapeError(TFLiteError):
    """An input shape the model cannot take (wrong rank, conflicting or unknown sizes)."""


class BenchmarkError(TFLiteError):
    """A latency measurement failed (for example the isolated worker process died)."""


class QATError(TFLiteError):
    """The quantization-aware-training / pruning bridge could not rebuild or train a model."""
