"""Nested models: a flat view of a functional model whose layers include other models.

The README's transfer-learning pattern (a backbone called inside a new functional model)
hides the backbone's layers from ``model.layers``. :func:`flatten_model` replays the graph
with each nested functional or Sequential model inlined, reusing the very same layer objects
(so weights are shared, not copied), which is what per-layer tools (the int8 hard-swish
rewrite, the profiler, QAT's rebuild) need. :func:`leaf_layers` lists every non-model layer
at any depth.

Example:
    >>> import keras
    >>> inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="a")])
    >>> x = keras.Input((4,))
    >>> outer = keras.Model(x, keras.layers.Dense(2, name="b")(inner(x)))
    >>> [layer.name for layer in flatten_model(outer).layers[1:]]
    ['a', 'b']
    >>> flatten_model(outer).get_layer("a") is inner.get_layer("a")
    True
"""

from __future__ import annotations

import keras
from keras import tree


class NestedModelError(ValueError):
    """A nested model that cannot be flattened (e.g. duplicate layer names, a subclassed model)."""


def _graph(model):
    """The functional graph behind a Functional or Sequential model, or None."""
    if hasattr(model, "_nodes_by_depth") and hasattr(model, "_run_through_graph"):
        return model
    inner = getattr(model, "_functional", None)
    if inner is not None and hasattr(inner, "_nodes_by_depth"):
        return inner
    return None


def is_nested(model) -> bool:
    """True when one of ``model.layers`` is itself a ``keras.Model``."""
    return any(isinstance(layer, keras.Model) for layer in getattr(model, "layers", ()))


def leaf_layers(model) -> list:
    """Every layer of ``model`` that is not itself a model, depth first, nested models included."""
    out = []
    for layer in getattr(model, "layers", ()):
        if isinstance(layer, keras.Model):
            out.extend(leaf_layers(layer))
        else:
            out.append(layer)
    return out


def _replay(graph, inputs, training):
    def call(op, *args, **kwargs):
        inner = _graph(op) if isinstance(op, keras.Model) else None
        if inner is not None:
            mode = kwargs.get("training", training)
            flat = tree.flatten(args[0]) if len(args) == 1 else tree.flatten(args)
            return _replay(inner, flat, mode)
        if isinstance(op, keras.Model):
            raise NestedModelError(
                f"nested model {op.name!r} ({type(op).__name__}) is not functional or Sequential; "
                "it cannot be flattened"
            )
        if training is not None and "training" not in kwargs and getattr(op, "_call_has_training_arg", False):
            kwargs["training"] = training
        return op(*args, **kwargs)

    return graph._run_through_graph(inputs, operation_fn=lambda op: op, call_fn=call)


def flatten_model(model):
    """``model`` itself when it nests no model, else a flat functional model sharing its layers.

    Nested functional and Sequential models are inlined; a ``training=`` argument given to a
    nested call is passed on to its layers, so a frozen-BN backbone stays in inference mode.

    Args:
        model: a functional or Sequential ``keras.Model``.

    Returns:
        A functional ``keras.Model`` with the same inputs, outputs, name and layer objects.

    Raises:
        NestedModelError: a nested model is subclassed (no graph), or two nested models use
            one layer name.
    """
    if not is_nested(model):
        return model
    graph = _graph(model)
    if graph is None:
        raise NestedModelError(f"model {model.name!r} ({type(model).__name__}) has no functional graph to flatten")
    inputs = [
        keras.Input(batch_shape=tuple(t.shape), dtype=t.dtype, name=t._keras_history[0].name)
        for t in graph.inputs
    ]
    outputs = _replay(graph, inputs, None)
    try:
        return keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs, name=model.name)
    except ValueError as err:
        raise NestedModelError(f"cannot flatten nested model {model.name!r}: {err}") from None
