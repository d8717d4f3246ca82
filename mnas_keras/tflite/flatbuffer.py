"""Reading and inspecting ``.tflite`` flatbuffers without TensorFlow.

Everything here parses the model with LiteRT's generated flatbuffer schema
(``ai_edge_litert.schema_py_generated``), so it is cheap and safe on untrusted bytes:
garbage raises :class:`InvalidModelError`, it never reaches native code.

Example:
    >>> from mnas_keras.tflite.flatbuffer import read_model
    >>> read_model(b"not a model")
    Traceback (most recent call last):
    ...
    mnas_keras.tflite.errors.InvalidModelError: TFLite model (11 bytes) is not a TFLite flatbuffer: expected the file identifier b'TFL3' at bytes 4-8, found b'a mo'
"""

from __future__ import annotations

import collections
import os
from typing import Union

from mnas_keras.tflite.errors import InvalidModelError, UnsupportedOpsError

TFLiteSource = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]"]

_IDENTIFIER = b"TFL3"


def read_model(tflite: TFLiteSource) -> bytes:
    """Returns the flatbuffer bytes of ``tflite`` (bytes or a path), checked for the header.

    Args:
        tflite: the model as ``bytes``/``bytearray`` or a path to a ``.tflite`` file.

    Raises:
        InvalidModelError: the path does not exist, or the content is not a TFLite flatbuffer.
    """
    if isinstance(tflite, (bytes, bytearray, memoryview)):
        data, label = bytes(tflite), f"TFLite model ({len(tflite)} bytes)"
    elif isinstance(tflite, (str, os.PathLike)):
        path = os.fspath(tflite)
        if not os.path.isfile(path):
            raise InvalidModelError(f"TFLite file {path!r} does not exist; expected a .tflite file")
        with open(path, "rb") as f:
            data = f.read()
        label = f"TFLite file {path!r}"
    else:
        raise InvalidModelError(
            f"expected TFLite flatbuffer bytes or a path to a .tflite file, received "
            f"{type(tflite).__name__}"
        )
    if len(data) < 8 or data[4:8] != _IDENTIFIER:
        raise InvalidModelError(
            f"{label} is not a TFLite flatbuffer: expected the file identifier {_IDENTIFIER!r} "
            f"at bytes 4-8, found {data[4:8]!r}"
        )
    return data


def _builtin_names() -> dict[int, str]:
    from ai_edge_litert import schema_py_generated as schema

    return {
        value: name
        for name, value in vars(schema.BuiltinOperator).items()
        if not name.startswith("_") and isinstance(value, int)
    }


def list_operators(tflite: TFLiteSource) -> dict[str, int]:
    """Counts the operators of every subgraph, by name.

    Built-in operators use their schema names (``CONV_2D``, ``HARD_SWISH``); custom and
    select-TF (flex) operators use their custom code (``FlexMatrixDeterminant``).

    Args:
        tflite: the model as bytes or a path.

    Returns:
        ``{op_name: count}`` in order of first appearance.

    Raises:
        InvalidModelError: ``tflite`` is not a readable TFLite flatbuffer.
    """
    data = read_model(tflite)
    from ai_edge_litert import schema_py_generated as schema

    names = _builtin_names()
    try:
        model = schema.Model.GetRootAs(data, 0)
        codes = []
        for i in range(model.OperatorCodesLength()):
            code = model.OperatorCodes(i)
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            if builtin == schema.BuiltinOperator.CUSTOM:
                custom = code.CustomCode()
                codes.append(custom.decode("utf-8", "replace") if custom else "CUSTOM")
            else:
                codes.append(names.get(builtin, f"BUILTIN_{builtin}"))
        counts: dict[str, int] = collections.Counter()
        for s in range(model.SubgraphsLength()):
            graph = model.Subgraphs(s)
            for o in range(graph.OperatorsLength()):
                counts[codes[graph.Operators(o).OpcodeIndex()]] += 1
    except Exception as err:  # malformed offsets surface as IndexError/struct.error
        raise InvalidModelError(
            f"TFLite model could not be parsed ({type(err).__name__}: {err}); the file is "
            "truncated or corrupt"
        ) from None
    return dict(counts)


def non_builtin_operators(tflite: TFLiteSource) -> list[str]:
    """Names of the operators that are not TFLite built-ins (flex / select TF / custom)."""
    builtin = set(_builtin_names().values())
    return sorted(op for op in list_operators(tflite) if op not in builtin)


def check_builtin_ops(tflite: TFLiteSource) -> dict[str, int]:
    """Asserts that ``tflite`` uses built-in TFLite operators only.

    Returns:
        The operator counts (as :func:`list_operators`) when every op is built in.

    Raises:
        UnsupportedOpsError: naming each non-builtin operator.
    """
    ops = list_operators(tflite)
    builtin = set(_builtin_names().values())
    bad = [op for op in ops if op not in builtin]
    if bad:
        raise UnsupportedOpsError(bad)
    return ops


METADATA_NAME = "mnas_keras"
"""The flatbuffer metadata entry in which :func:`mnas_keras.tflite.convert` records how it
converted the model (quantization, hard-swish rewrite), as UTF-8 JSON."""


def read_metadata(tflite: TFLiteSource) -> dict[str, bytes]:
    """The model's metadata entries, ``{name: bytes}`` (e.g. ``min_runtime_version``).

    Raises:
        InvalidModelError: ``tflite`` is not a readable TFLite flatbuffer.
    """
    data = read_model(tflite)
    from ai_edge_litert import schema_py_generated as schema

    try:
        model = schema.Model.GetRootAs(data, 0)
        entries = {}
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            buffer = model.Buffers(entry.Buffer())
            if buffer.Offset() > 1:  # stored after the flatbuffer (models over 2 GB)
                raw = data[buffer.Offset(): buffer.Offset() + buffer.Size()]
            else:
                raw = buffer.DataAsNumpy().tobytes() if buffer.DataLength() else b""
            entries[entry.Name().decode("utf-8", "replace")] = raw
    except Exception as err:
        raise InvalidModelError(
            f"TFLite model metadata could not be parsed ({type(err).__name__}: {err}); the file "
            "is truncated or corrupt"
        ) from None
    return entries


def add_metadata(tflite: TFLiteSource, name: str, value: bytes) -> bytes:
    """Returns the model with metadata entry ``name`` set to ``value`` (replaced if present).

    Example:
        >>> import keras
        >>> from mnas_keras.tflite import convert
        >>> fb = convert(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))
        >>> read_metadata(add_metadata(fb, "note", b"hello"))["note"]
        b'hello'
    """
    import flatbuffers
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema

    data = read_model(tflite)
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))
    if any((b.offset or 0) > 1 for b in model.buffers or []):
        raise InvalidModelError("models with buffers stored outside the flatbuffer (over 2 GB) are not supported")
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(bytes(value), dtype=np.uint8)
    entries = [m for m in (model.metadata or []) if (m.name.decode() if isinstance(m.name, bytes) else m.name) != name]
    entry = schema.MetadataT()
    entry.name = name
    model.buffers.append(buffer)
    entry.buffer = len(model.buffers) - 1
    model.metadata = entries + [entry]
    builder = flatbuffers.Builder(len(data) + len(value) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=_IDENTIFIER)
    return bytes(builder.Output())


def conversion_info(tflite: TFLiteSource) -> dict | None:
    """What :func:`mnas_keras.tflite.convert` recorded about this model, or ``None``.

    Returns:
        e.g. ``{"quantization": "int8", "hard_swish": {"mode": "fold", "folded": 19,
        "explicit": 0}}``.
    """
    import json

    raw = read_metadata(tflite).get(METADATA_NAME)
    if raw is None:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidModelError(f"the {METADATA_NAME!r} metadata of the TFLite model is not JSON") from None
