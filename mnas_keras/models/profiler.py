"""Parameter and multiply-add counts, per layer and in total.

Multiply-adds are counted as the MnasNet and MobileNetV3 papers count them: convolutions
(``H*W*Cout*k*k*Cin/groups``), depthwise convolutions (``H*W*C*k*k``), separable convolutions
(``H*W*C*(k*k + Cout)``, the MnasNet paper's formula), fully connected layers, the SE block's
1x1 convolutions and attention's two matrix products (layers with a ``multiply_adds()`` method,
e.g. ``mnas_keras.layers.MultiQueryAttention``); batch norm, activations, pooling, the SE
multiply, layer scale and residual adds are not counted.

Example:
    >>> from mnas_keras.models import MnasNet
    >>> p = profile(MnasNet(["r1_k3_s11_e1_i32_o16"], input_shape=(32, 32, 3), classes=10))
    >>> p.params == p.trainable_params + p.non_trainable_params
    True
    >>> p.madds > 0
    True
"""

from __future__ import annotations

import dataclasses
import math

import keras


@dataclasses.dataclass(frozen=True)
class LayerProfile:
    name: str
    kind: str
    output_shape: tuple
    params: int
    madds: int


@dataclasses.dataclass(frozen=True)
class Profile:
    """Counts of a model at one input size; ``str(profile)`` is a table."""

    model_name: str
    input_shape: tuple
    params: int
    trainable_params: int
    non_trainable_params: int
    madds: int
    layers: tuple

    def table(self, only_counted: bool = True) -> str:
        rows = [r for r in self.layers if r.madds or r.params or not only_counted]
        width = max([len(r.name) for r in rows] + [5])
        lines = [f"{'layer':<{width}}  {'type':<22} {'output':<18} {'params':>10} {'madds':>13}"]
        for r in rows:
            shape = "x".join(str(d) for d in r.output_shape)
            lines.append(f"{r.name:<{width}}  {r.kind:<22} {shape:<18} {r.params:>10,} {r.madds:>13,}")
        lines.append(
            f"{'total':<{width}}  {'':<22} {'':<18} {self.params:>10,} {self.madds:>13,}"
        )
        return "\n".join(lines)

    def __str__(self) -> str:
        return (
            f"{self.model_name} at {self.input_shape}: {self.params / 1e6:.2f}M params "
            f"({self.trainable_params:,} trainable), {self.madds / 1e6:.1f}M multiply-adds\n"
            + self.table()
        )


def _count(weights) -> int:
    return int(sum(math.prod(w.shape) for w in weights))


def _spatial(shape) -> int:
    return int(math.prod(shape[1:-1])) if len(shape) > 2 else 1


def _layer_madds(layer) -> int:
    if callable(getattr(layer, "multiply_adds", None)):
        return int(layer.multiply_adds())
    out = tuple(layer.output.shape)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        k = math.prod(layer.kernel_size)
        return _spatial(out) * out[-1] * k
    if isinstance(layer, keras.layers.SeparableConv2D):
        # depthwise k x k on every input channel (times the depth multiplier), then pointwise.
        inner = layer.input.shape[-1] * layer.depth_multiplier
        return _spatial(out) * inner * (math.prod(layer.kernel_size) + out[-1])
    if isinstance(layer, keras.layers.Conv2D):
        k = math.prod(layer.kernel_size)
        cin = layer.input.shape[-1] // max(1, getattr(layer, "groups", 1))
        return _spatial(out) * out[-1] * k * cin
    if isinstance(layer, keras.layers.Dense):
        return _spatial(out) * layer.input.shape[-1] * out[-1]
    return 0


def _fixed_size(model, input_shape):
    shape = tuple(model.input_shape[1:])
    if input_shape is None and all(d is not None for d in shape):
        return model
    if input_shape is None:
        input_shape = (224, 224, shape[-1])
    config = model.get_config()
    if "blocks" not in config:
        if all(d is not None for d in shape):  # fixed, but another size was asked for
            raise ValueError(
                f"profile(input_shape={tuple(input_shape)}) rebuilds only a mnas_keras.MnasNet at another size; "
                f"{model.name} ({type(model).__name__}) has the fixed input shape {shape}: build it at the size "
                "to count, or leave input_shape out."
            )
        raise ValueError(
            f"profile() needs a model with a fixed input size; {model.name} has input shape "
            f"{shape}. Build it with input_shape=(H, W, C)."
        )
    return model.__class__.from_config({**config, "input_shape": tuple(input_shape)})


def profile(model, input_shape=None) -> Profile:
    """Counts parameters and multiply-adds of ``model``.

    Args:
        model: a functional Keras model (any ``mnas_keras`` model); nested functional or
            Sequential models (a backbone inside a new model) are counted layer by layer.
        input_shape: ``(H, W, C)`` to count at; default the model's own, or 224x224 for a
            ``mnas_keras.MnasNet`` with unknown spatial size. Only a ``MnasNet`` can be
            counted at a size other than its own.

    Raises:
        ValueError: ``model`` is not a ``keras.Model``; ``input_shape`` is not three positive
            integers, or asks another size of a model that is not a ``MnasNet``; a model
            without a fixed size that is not a ``MnasNet``.
    """
    from mnas_keras.models.graph import flatten_model, is_nested

    if not isinstance(model, keras.Model):
        raise ValueError(f"profile() expects a keras.Model; received {type(model).__name__}: {model!r:.80}")
    if input_shape is not None:
        dims = tuple(input_shape)
        if len(dims) != 3 or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in dims):
            raise ValueError(f"Expected input_shape (height, width, channels) of positive integers. "
                             f"Received: input_shape={input_shape!r}")
    if is_nested(model):
        if input_shape is not None or None in tuple(model.input_shape[1:]):
            raise ValueError(
                f"profile() of a model that nests other models ({model.name}) counts at the model's own "
                f"fixed input size; its input shape is {tuple(model.input_shape[1:])} and input_shape="
                f"{input_shape}. Build the outer model with a fixed size, or profile the backbone."
            )
        model = flatten_model(model)
    sized = _fixed_size(model, input_shape)
    rows = []
    for layer in sized.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        rows.append(
            LayerProfile(
                name=layer.name,
                kind=layer.__class__.__name__,
                output_shape=tuple(layer.output.shape[1:]),
                params=_count(layer.weights),
                madds=_layer_madds(layer),
            )
        )
    trainable = _count(sized.trainable_weights)
    non_trainable = _count(sized.non_trainable_weights)
    return Profile(
        model_name=model.name,
        input_shape=tuple(sized.input_shape[1:]),
        params=trainable + non_trainable,
        trainable_params=trainable,
        non_trainable_params=non_trainable,
        madds=int(sum(r.madds for r in rows)),
        layers=tuple(rows),
    )
