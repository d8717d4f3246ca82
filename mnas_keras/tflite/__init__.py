"""TFLite / LiteRT tools: conversion, quantization, parity checks and latency benchmarks.

Names load lazily so that ``mnas_keras.tflite.latency`` (used by the isolated benchmark
worker) runs without importing TensorFlow.

Example:
    >>> import mnas_keras.tflite as tfl
    >>> tfl.QUANTIZATIONS
    (None, 'float16', 'dynamic', 'int8', 'int8_io')
"""

import importlib

_LAZY = {
    "convert": "mnas_keras.tflite.conversion",
    "save": "mnas_keras.tflite.conversion",
    "convert_detector": "mnas_keras.tflite.detection",
    "run_detector": "mnas_keras.tflite.detection",
    "QUANTIZATIONS": "mnas_keras.tflite.conversion",
    "HARD_SWISH_MODES": "mnas_keras.tflite.conversion",
    "rewrite_hard_swish": "mnas_keras.tflite.rewrite",
    "native_dilated_convs": "mnas_keras.tflite.dilation",
    "conversion_info": "mnas_keras.tflite.flatbuffer",
    "read_metadata": "mnas_keras.tflite.flatbuffer",
    "benchmark": "mnas_keras.tflite.latency",
    "benchmark_many": "mnas_keras.tflite.latency",
    "BenchmarkResult": "mnas_keras.tflite.latency",
    "load_interpreter": "mnas_keras.tflite.latency",
    "delegation": "mnas_keras.tflite.latency",
    "randomize_batch_norm": "mnas_keras.tflite.latency",
    "DelegationReport": "mnas_keras.tflite.latency",
    "compare": "mnas_keras.tflite.verify",
    "ParityReport": "mnas_keras.tflite.verify",
    "run_tflite": "mnas_keras.tflite.verify",
    "quantization_aware_training": "mnas_keras.tflite.qat",
    "prune": "mnas_keras.tflite.qat",
    "tf_keras_parity": "mnas_keras.tflite.qat",
    "CompressionResult": "mnas_keras.tflite.qat",
    "list_operators": "mnas_keras.tflite.flatbuffer",
    "check_builtin_ops": "mnas_keras.tflite.flatbuffer",
    "read_model": "mnas_keras.tflite.flatbuffer",
    "TFLiteError": "mnas_keras.tflite.errors",
    "TFLiteConversionError": "mnas_keras.tflite.errors",
    "UnsupportedOpsError": "mnas_keras.tflite.errors",
    "QuantizationError": "mnas_keras.tflite.errors",
    "InvalidModelError": "mnas_keras.tflite.errors",
    "InputShapeError": "mnas_keras.tflite.errors",
    "BenchmarkError": "mnas_keras.tflite.errors",
    "QATError": "mnas_keras.tflite.errors",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mnas_keras.tflite' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
