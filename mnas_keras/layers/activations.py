"""Activation layers by the codec's activation names, for Keras 3.

Names: ``relu``, ``relu6``, ``hswish`` (hard-swish, ``x * relu6(x + 3) / 6``), ``swish``,
``gelu`` (exact, ``x * Phi(x)`` with the normal CDF; PyTorch's ``nn.GELU()``, MobileNetV4
Hybrid-Large),
``sigmoid`` and ``hsig`` (hard-sigmoid, ``relu6(x + 3) / 6``, the SE gate of MobileNetV3).

Example:
    >>> import numpy as np
    >>> layer = activation_layer("hswish", name="act")
    >>> [round(float(v), 4) for v in np.asarray(layer(np.array([-4.0, 0.0, 1.0, 4.0])))]
    [-0.0, 0.0, 0.6667, 4.0]
"""

import keras

ACTIVATION_NAMES = ("relu", "relu6", "hswish", "swish", "gelu", "sigmoid", "hsig")


def activation_layer(kind: str, name: str | None = None) -> keras.layers.Layer:
    """A Keras 3 layer computing activation ``kind`` (see the module docstring)."""
    if kind == "relu":
        return keras.layers.ReLU(name=name)
    if kind == "relu6":
        return keras.layers.ReLU(6.0, name=name)
    if kind == "hswish":
        return keras.layers.Activation("hard_swish", name=name)
    if kind == "swish":
        return keras.layers.Activation("swish", name=name)
    if kind == "gelu":
        return keras.layers.Activation("gelu", name=name)  # approximate=False: erf
    if kind == "sigmoid":
        return keras.layers.Activation("sigmoid", name=name)
    if kind == "hsig":
        return keras.layers.Activation("hard_sigmoid", name=name)
    raise ValueError(f"unknown activation {kind!r}; expected one of {ACTIVATION_NAMES}")
