"""Builds NAS-RL macro networks (``mnas_keras.codec.macro``) with stock Keras layers only.

Each layer is conv ("same" padding, no bias) -> BN -> ReLU (NAS-RL section 4.1: ReLU and
batch norm). Its inputs are the outputs of its anchor layers, concatenated along channels, or
the image when it has none; inputs of different sizes are zero-padded at the bottom and
right to the largest (section 3.3). The top concatenates the layers no later layer reads
(padded the same way), then global average pooling and a dense classifier.

Example:
    >>> model = build_macro_network("k3x3_f24,k3x3_s22_f36_in1,k1x1_f24", input_shape=(16, 16, 3),
    ...                             classes=10)
    >>> model.get_layer("top_concat").output.shape  # layer 2 (8x8x36) padded to 16x16, + 24
    (None, 16, 16, 60)
"""

from __future__ import annotations

import keras

from mnas_keras.codec.macro import MacroSpec
from mnas_keras.models.cells import classifier_model

BN_MOMENTUM = 0.99
BN_EPSILON = 1e-3


class MacroNetworkError(ValueError):
    """Settings that cannot make a macro network."""


def _merge(tensors, name):
    """Concatenates along channels, zero-padding each tensor (bottom, right) to the largest size."""
    if len(tensors) == 1:
        return tensors[0]
    height = max(t.shape[1] for t in tensors)
    width = max(t.shape[2] for t in tensors)
    padded = []
    for i, t in enumerate(tensors):
        dh, dw = height - t.shape[1], width - t.shape[2]
        if dh or dw:
            t = keras.layers.ZeroPadding2D(((0, dh), (0, dw)), name=f"{name}_pad{i}")(t)
        padded.append(t)
    return keras.layers.Concatenate(name=f"{name}_concat")(padded)


def build_macro_network(
    spec,
    *,
    input_shape=(32, 32, 3),
    input_tensor=None,
    include_top: bool = True,
    pooling=None,
    classes: int = 10,
    dropout_rate: float = 0.0,
    classifier_activation="softmax",
    name: str = "nasrl",
) -> keras.Model:
    """A functional Keras model from a NAS-RL macro string or ``MacroSpec``.

    Layer ``i`` (1-based) names its layers ``layer{i}_conv``, ``layer{i}_bn``,
    ``layer{i}_relu`` (and ``layer{i}_concat``/``_pad{j}`` when it merges inputs).

    Args:
        spec: a ``MacroSpec`` or macro string.
        input_shape: ``(height, width, channels)`` with a fixed height and width.
        input_tensor: optional Keras tensor to build on.
        include_top: end with global average pooling and a dense classifier.
        pooling: without the top, ``None``, ``"avg"`` or ``"max"`` (after the output concat).
        classes: classifier outputs.
        dropout_rate: dropout before the classifier.
        classifier_activation: the classifier's activation (``None`` for logits).
        name: the model's name.

    Returns:
        A functional ``keras.Model``; its feature output ``top_concat`` (or the single output
        layer's ReLU) is as large as the largest output layer.

    Raises:
        MacroNetworkError: an input without a fixed height and width, or a bad ``pooling``.
        MacroStringError: a malformed macro string.
    """
    spec = spec if isinstance(spec, MacroSpec) else MacroSpec.from_string(spec)
    if input_tensor is not None:
        input_shape = tuple(input_tensor.shape[1:])
    if input_shape is None or len(input_shape) != 3 or any(d is None for d in input_shape[:2]):
        raise MacroNetworkError(
            "macro networks pad mismatched sizes and need a fixed input size; expected (height, width, "
            f"channels). Received: input_shape={input_shape}"
        )
    if pooling not in (None, "avg", "max"):
        raise MacroNetworkError(f"Expected pooling in (None, 'avg', 'max'). Received: pooling={pooling!r}")
    inputs = keras.Input(tuple(input_shape)) if input_tensor is None else input_tensor
    outputs = []
    for i, layer in enumerate(spec.layers, start=1):
        x = _merge([outputs[a - 1] for a in layer.anchors], f"layer{i}") if layer.anchors else inputs
        x = keras.layers.Conv2D(layer.filters, layer.kernel, strides=layer.strides, padding="same",
                                use_bias=False, name=f"layer{i}_conv")(x)
        x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"layer{i}_bn")(x)
        outputs.append(keras.layers.Activation("relu", name=f"layer{i}_relu")(x))
    x = _merge([outputs[i - 1] for i in spec.output_layers], "top")
    return classifier_model(inputs, x, include_top=include_top, pooling=pooling, classes=classes,
                            dropout_rate=dropout_rate, classifier_activation=classifier_activation,
                            input_tensor=input_tensor, name=name)
