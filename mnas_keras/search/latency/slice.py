"""Cutting a converted ``.tflite`` model into one small model per independent branch.

The latency table converts many block "parts" at once, as the independent branches of one
multi-input Keras model (one conversion instead of hundreds), then cuts the flatbuffer into
one model per branch: the operators reachable from the branch's input, the tensors and
weight buffers they use, the branch's output. The cut models hold exactly the operators the
whole converted network holds for that block, so they time the same kernels. Only LiteRT's
generated flatbuffer schema is used (no TensorFlow).

Example:
    >>> import keras
    >>> from mnas_keras.tflite import convert, list_operators
    >>> a, b = keras.Input((8, 8, 3)), keras.Input((4, 4, 5))
    >>> model = keras.Model([a, b], [keras.layers.Conv2D(4, 3)(a), keras.layers.ReLU()(b)])
    >>> parts = split_branches(convert(model))
    >>> [sorted(list_operators(p)) for p in parts]
    [['CONV_2D'], ['RELU']]
"""

from __future__ import annotations

import copy
import re

from mnas_keras.tflite.errors import TFLiteError

_INPUT_INDEX = re.compile(r"input_(\d+)")


class SliceError(TFLiteError):
    """A converted model could not be cut into its branches (a flatbuffer problem, not a
    search setting: a ``TFLiteError``, so a ``ValueError``)."""


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def _name(tensor) -> str:
    name = tensor.name
    return name.decode() if isinstance(name, bytes) else str(name or "")


def _pack(model) -> bytes:
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def split_branches(tflite: bytes) -> list[bytes]:
    """One standalone ``.tflite`` per input of a model whose inputs feed independent branches.

    Inputs are ordered by the ``input_<i>`` index that :func:`mnas_keras.tflite.convert`
    gives them (the Keras model's input order).

    Raises:
        SliceError: the model has several subgraphs, or two inputs share operators, or an
            input reaches no output.
    """
    schema = _schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
    if len(model.subgraphs) != 1:
        raise SliceError(f"expected a single-subgraph model; it has {len(model.subgraphs)}")
    graph = model.subgraphs[0]
    consumers: dict[int, list[int]] = {}
    for index, op in enumerate(graph.operators):
        for t in op.inputs if op.inputs is not None else ():
            if t >= 0:
                consumers.setdefault(int(t), []).append(index)
    graph_outputs = {int(t) for t in graph.outputs}
    inputs = [int(t) for t in graph.inputs]

    def order_key(item):
        position, tensor = item
        match = _INPUT_INDEX.search(_name(graph.tensors[tensor]))
        return (int(match.group(1)) if match else position, position)

    ordered = [t for _, t in sorted(enumerate(inputs), key=order_key)]
    owner: dict[int, int] = {}
    parts = []
    for branch, tensor in enumerate(ordered):
        ops, frontier = set(), [tensor]
        while frontier:
            t = frontier.pop()
            for op_index in consumers.get(t, ()):
                if op_index in ops:
                    continue
                if op_index in owner:
                    raise SliceError(f"inputs {owner[op_index]} and {branch} share operator {op_index}")
                owner[op_index] = branch
                ops.add(op_index)
                frontier.extend(int(o) for o in graph.operators[op_index].outputs)
        outs = sorted({int(o) for i in ops for o in graph.operators[i].outputs} & graph_outputs)
        if not outs:
            raise SliceError(f"input {branch} ({_name(graph.tensors[tensor])!r}) reaches no output")
        parts.append(_cut(schema, model, graph, sorted(ops), [tensor], outs))
    return parts


def _cut(schema, model, graph, op_indices, inputs, outputs) -> bytes:
    used: list[int] = []
    seen = set()

    def use(t):
        t = int(t)
        if t >= 0 and t not in seen:
            seen.add(t)
            used.append(t)

    for t in inputs:
        use(t)
    for i in op_indices:
        op = graph.operators[i]
        for group in (op.inputs, op.outputs, op.intermediates):
            for t in group if group is not None else ():
                use(t)
    tensor_map = {old: new for new, old in enumerate(used)}
    buffers = [schema.BufferT()]
    buffer_map = {0: 0}
    tensors = []
    for old in used:
        tensor = copy.copy(graph.tensors[old])
        b = int(tensor.buffer or 0)
        if b not in buffer_map:
            buffer_map[b] = len(buffers)
            buffers.append(model.buffers[b])
        tensor.buffer = buffer_map[b]
        tensors.append(tensor)
    ops = []
    for i in op_indices:
        op = copy.copy(graph.operators[i])
        op.inputs = [tensor_map[int(t)] if t >= 0 else -1 for t in (op.inputs if op.inputs is not None else ())]
        op.outputs = [tensor_map[int(t)] for t in (op.outputs if op.outputs is not None else ())]
        if op.intermediates is not None:
            op.intermediates = [tensor_map[int(t)] for t in op.intermediates]
        ops.append(op)
    sub = schema.SubGraphT()
    sub.tensors = tensors
    sub.inputs = [tensor_map[t] for t in inputs]
    sub.outputs = [tensor_map[t] for t in outputs]
    sub.operators = ops
    sub.name = graph.name
    out = schema.ModelT()
    out.version = model.version
    out.operatorCodes = model.operatorCodes
    out.subgraphs = [sub]
    out.description = model.description
    out.buffers = buffers
    return _pack(out)
