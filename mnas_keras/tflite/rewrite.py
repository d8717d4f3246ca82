"""Graph rewrites applied to a copy of a Keras model before int8 conversion.

Why: LiteRT's XNNPACK delegate runs HARD_SWISH in float only. In a full-integer model every
int8 HARD_SWISH falls back to the built-in kernel and splits the delegated graph, so an int8
MobileNetV3 runs slower than its float version (``benchmarks/RESULTS.md``, "int8 and
hard-swish"). Writing ``hard_swish(x) = x * relu6(x + 3) / 6`` with operators that XNNPACK
runs in int8 (an ADD with a fused RELU6 and a MUL) fixes that; the ``1/6`` is folded into the
kernels of the layers that consume the activation, so each hard-swish costs two int8
element-wise operators instead of a fallback kernel. The function computed is unchanged.

Plans, per hard-swish layer:

* ``"fold"``: the layer computes ``6 * hard_swish(x)``, and every weighted layer its output
  reaches through scale-preserving layers (pooling, dropout, reshape, padding, one side of
  a ``Multiply``) gets its kernel divided by 6.
* ``"explicit"``: the layer computes ``(x / 6) * relu6(x + 3)`` (three int8 operators), used
  where the scale cannot be absorbed, e.g. when the activation is a model output.

Example:
    >>> import keras, numpy as np
    >>> inputs = keras.Input((8, 8, 3))
    >>> x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    >>> x = keras.layers.Activation("hard_swish")(x)
    >>> model = keras.Model(inputs, keras.layers.Conv2D(2, 1)(x))
    >>> rewritten, report = rewrite_hard_swish(model)
    >>> report["folded"], report["explicit"]
    (1, 0)
    >>> x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    >>> bool(np.allclose(model(x), rewritten(x), atol=1e-5))
    True
"""

from __future__ import annotations

from typing import Any

import keras

from mnas_keras.models.graph import NestedModelError, flatten_model, leaf_layers

_HARD_SWISH_FUNCTIONS = tuple(
    f for f in (getattr(keras.activations, n, None) for n in ("hard_swish", "hard_silu")) if f is not None
)

# Layers whose output is ``scale * f(x)`` when their input is ``scale * x`` (scale > 0).
_SCALE_PRESERVING = (
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.AveragePooling2D,
    keras.layers.MaxPooling2D,
    keras.layers.Dropout,
    keras.layers.SpatialDropout2D,
    keras.layers.Reshape,
    keras.layers.Flatten,
    keras.layers.ZeroPadding2D,
    keras.layers.Identity,
)
# Layers that can absorb an input scale into their kernel (``y = x @ W + b``).
_WEIGHTED = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)
# Layers whose inputs must share one scale, which the output then carries.
_SAME_SCALE = (keras.layers.Add, keras.layers.Average, keras.layers.Maximum, keras.layers.Minimum,
               keras.layers.Concatenate, keras.layers.Subtract)

_SCALE = 6.0


def is_hard_swish(layer) -> bool:
    """True for a ``keras.layers.Activation`` computing hard-swish (``"hard_swish"``/``"hard_silu"``)."""
    return isinstance(layer, keras.layers.Activation) and getattr(layer, "activation", None) in _HARD_SWISH_FUNCTIONS


def count_hard_swish(model) -> int:
    """The number of hard-swish activation layers in ``model``, nested models included."""
    return sum(1 for layer in leaf_layers(model) if is_hard_swish(layer))


def _scaled_hard_swish(x):
    """``6 * hard_swish(x)``: an ADD with a fused RELU6 and a MUL, both int8 on XNNPACK."""
    return x * keras.ops.relu6(x + 3.0)


def _explicit_hard_swish(x):
    """``hard_swish(x)`` written so the converter does not fuse it back into HARD_SWISH."""
    return (x * (1.0 / _SCALE)) * keras.ops.relu6(x + 3.0)


def _graph(model):
    """The functional graph behind ``model`` (a Functional or Sequential model), or None."""
    if hasattr(model, "_nodes_by_depth"):
        return model
    inner = getattr(model, "_functional", None)
    return inner if inner is not None and hasattr(inner, "_nodes_by_depth") else None


def _nodes_in_order(graph):
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            if node.operation is not None and not node.is_input:
                yield node


def _plan(graph, candidates: set[str]) -> tuple[set[str], dict[str, int]]:
    """Which hard-swish layers (by name) can be folded, and the kernels to divide.

    Propagates a symbolic scale ``6**k`` (and the candidates it comes from) from each
    candidate's output. A candidate whose scale would reach a layer that can neither absorb
    nor carry it, or a model output, is dropped, and the pass repeats.

    Returns:
        ``(folded names, {weighted layer name: k})``: divide that kernel by ``6**k``.
    """
    candidates = set(candidates)
    calls: dict[str, int] = {}
    for node in _nodes_in_order(graph):
        calls[node.operation.name] = calls.get(node.operation.name, 0) + 1
    none = (0, frozenset())
    while True:
        scale: dict[int, tuple[int, frozenset]] = {}  # tensor id -> (k, origins)
        kernels: dict[str, int] = {}
        failed: set[str] = set()
        for node in _nodes_in_order(graph):
            op = node.operation
            ins = [scale.get(id(t), none) for t in node.input_tensors]
            origins = frozenset().union(*(o for _, o in ins))
            out = none
            if op.name in candidates:
                if origins or calls[op.name] != 1:
                    failed |= origins | {op.name}
                else:
                    out = (1, frozenset({op.name}))
            elif not origins:
                pass
            elif isinstance(op, _WEIGHTED) and calls[op.name] == 1 and len(ins) == 1:
                kernels[op.name] = ins[0][0]
            elif isinstance(op, _SCALE_PRESERVING) and len(ins) == 1:
                out = ins[0]
            elif isinstance(op, keras.layers.Multiply):
                out = (sum(k for k, _ in ins), origins)
            elif isinstance(op, _SAME_SCALE) and len({k for k, _ in ins}) == 1:
                out = (ins[0][0], origins)
            else:
                failed |= origins
            for tensor in node.outputs:
                scale[id(tensor)] = out
        for tensor in graph.outputs:
            failed |= scale.get(id(tensor), none)[1]
        if not failed:
            return candidates, kernels
        candidates -= failed


def rewrite_hard_swish(model, mode: str = "fold") -> tuple[Any, dict]:
    """A copy of ``model`` whose hard-swish layers convert to int8-friendly operators.

    Args:
        model: a functional or Sequential Keras model (others are returned unchanged);
            nested functional/Sequential models (a backbone inside a new model) are
            inlined first (``mnas_keras.models.graph.flatten_model``).
        mode: ``"fold"`` (fold the ``1/6`` into the consuming kernels where possible, the
            explicit form elsewhere) or ``"explicit"`` (the explicit form everywhere).

    Returns:
        ``(model_or_copy, report)``; the report counts the hard-swish ``layers``, how many
        were ``folded`` and how many written ``explicit``, and names the ``mode`` applied
        (``"native"`` when nothing was rewritten, with a ``reason``). The copy is
        meant for conversion only: its activations are plain functions, not serializable.
    """
    if mode not in ("fold", "explicit"):
        raise ValueError(f"hard-swish rewrite mode {mode!r}: expected 'fold' or 'explicit'")
    if any(is_hard_swish(layer) for layer in leaf_layers(model)):
        try:
            model = flatten_model(model)
        except NestedModelError as err:
            return model, {"mode": "native", "layers": count_hard_swish(model), "folded": 0, "explicit": 0,
                           "reason": str(err)}
    names = [layer.name for layer in model.layers if is_hard_swish(layer)]
    graph = _graph(model)
    if not names or graph is None:
        reason = "no hard-swish layers" if not names else "not a functional model"
        return model, {"mode": "native", "layers": len(names), "folded": 0, "explicit": 0, "reason": reason}
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    folded, kernels = _plan(_graph(copy), set(names)) if mode == "fold" else (set(), {})
    for name in names:
        copy.get_layer(name).activation = _scaled_hard_swish if name in folded else _explicit_hard_swish
    for target, power in kernels.items():
        kernel = copy.get_layer(target).kernel
        kernel.assign(kernel / _SCALE**power)
    return copy, {"mode": mode, "layers": len(names), "folded": len(folded),
                  "explicit": len(names) - len(folded)}
