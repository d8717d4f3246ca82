"""Dilated convolutions that reach LiteRT as native dilated ``CONV_2D`` / ``DEPTHWISE_CONV_2D``.

Why: Keras' ``Conv2D`` / ``DepthwiseConv2D`` with ``dilation_rate > 1`` call
``tf.nn.convolution`` / ``tf.nn.depthwise_conv2d``, which TensorFlow writes as
``SpaceToBatchND -> convolution -> BatchToSpaceND``. The TFLite converter folds that
pattern back into one dilated operator only when every shape is static; with a dynamic
batch (the converter's default) or spatial size, a MnasNet-A1 at ``output_stride=16``
keeps 3 SPACE_TO_BATCH_ND / BATCH_TO_SPACE_ND pairs, the batch norms around them stay
unfolded MUL/ADD, XNNPACK declines the pairs and the graph splits into 7 delegate
partitions (measured here, with this package's converter and the stock one).

:func:`native_dilated_convs` returns a copy of a model whose dilated convolutions call the
TensorFlow kernels ``Conv2D`` / ``DepthwiseConv2dNative`` with their ``dilations``
attribute. The converter maps those to TFLite's own dilation factors, folds the batch
norms and XNNPACK runs the whole graph. The copy is for conversion only: TensorFlow's CPU
kernels do not run dilated ``Conv2D``/``DepthwiseConv2dNative`` themselves.
:func:`mnas_keras.tflite.convert` applies it (``dilation="native"``, the default).

Example:
    >>> import keras
    >>> inputs = keras.Input((None, None, 8))
    >>> x = keras.layers.DepthwiseConv2D(3, padding="same", dilation_rate=2)(inputs)
    >>> model = keras.Model(inputs, keras.layers.Conv2D(4, 3, padding="same", dilation_rate=2)(x))
    >>> copy, count = native_dilated_convs(model)
    >>> count
    2
    >>> from mnas_keras.tflite import convert, list_operators
    >>> list_operators(convert(model, input_shape=(17, 23, 8)))
    {'DEPTHWISE_CONV_2D': 1, 'CONV_2D': 1}
"""

from __future__ import annotations

import keras


def _dilated(layer) -> bool:
    rate = tuple(getattr(layer, "dilation_rate", (1, 1)))
    return any(int(r) > 1 for r in rate)


def _finish(layer, outputs):
    import tensorflow as tf

    if layer.use_bias:
        outputs = tf.nn.bias_add(outputs, layer.bias)
    if layer.activation is not None:
        outputs = layer.activation(outputs)
    return outputs


class NativeDilatedConv2D(keras.layers.Conv2D):
    """``Conv2D`` written as TensorFlow's ``Conv2D`` op with ``dilations`` (conversion only)."""

    def call(self, inputs):
        import tensorflow as tf

        rate = [1, *(int(r) for r in self.dilation_rate), 1]
        strides = [1, *(int(s) for s in self.strides), 1]
        outputs = tf.raw_ops.Conv2D(
            input=inputs, filter=self.kernel, strides=strides, padding=self.padding.upper(),
            dilations=rate,
        )
        return _finish(self, outputs)


class NativeDilatedDepthwiseConv2D(keras.layers.DepthwiseConv2D):
    """``DepthwiseConv2D`` written as ``DepthwiseConv2dNative`` with ``dilations`` (conversion only)."""

    def call(self, inputs):
        import tensorflow as tf

        rate = [1, *(int(r) for r in self.dilation_rate), 1]
        strides = [1, *(int(s) for s in self.strides), 1]
        outputs = tf.raw_ops.DepthwiseConv2dNative(
            input=inputs, filter=self.kernel, strides=strides, padding=self.padding.upper(),
            dilations=rate,
        )
        return _finish(self, outputs)


def _replacement(layer):
    """The native class for a dilated channels-last 2D convolution, else ``None``."""
    if not _dilated(layer) or getattr(layer, "data_format", "channels_last") != "channels_last":
        return None
    if type(layer) is keras.layers.DepthwiseConv2D:
        return NativeDilatedDepthwiseConv2D
    if type(layer) is keras.layers.Conv2D and getattr(layer, "groups", 1) == 1:
        return NativeDilatedConv2D
    return None


def count_dilated(model) -> int:
    """Dilated ``Conv2D``/``DepthwiseConv2D`` layers in ``model`` (nested models included)."""
    return sum(1 for layer in model._flatten_layers(include_self=False) if _replacement(layer))


def _clone(model, replace):
    """A copy of ``model`` with ``replace(layer)`` (or a fresh copy) for every layer; the
    weights are copied layer by layer (a replacement keeps its own initial weights)."""

    def clone(layer):
        new = replace(layer)
        return new if new is not None else layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone, recursive=True)
    originals = {layer.name: layer for layer in model._flatten_layers(include_self=False)}
    for layer in copy._flatten_layers(include_self=False):
        source = originals.get(layer.name)
        if source is not None and source.weights and len(source.weights) == len(layer.weights) \
                and not isinstance(layer, keras.Model):
            layer.set_weights(source.get_weights())
    return copy


def native_dilated_convs(model):
    """A copy of ``model`` whose dilated convolutions convert to native dilated TFLite ops.

    Args:
        model: a functional or Sequential Keras model (nested models are copied too).

    Returns:
        ``(model_or_copy, count)``: ``model`` itself and 0 when it has no dilated
        ``Conv2D``/``DepthwiseConv2D`` (or is a subclassed model that cannot be cloned),
        else a copy with the same weights and ``count`` layers replaced. Run the copy only
        through the TFLite converter (see the module docstring).
    """
    count = count_dilated(model)
    if not count:
        return model, 0

    def replace(layer):
        cls = _replacement(layer)
        return None if cls is None else cls.from_config(layer.get_config())

    try:
        return _clone(model, replace), count
    except Exception:  # noqa: BLE001 - subclassed models: converted as they are
        return model, 0


class AverageAsDepthwise2D(keras.layers.DepthwiseConv2D):
    """A "valid" ``AveragePooling2D`` written as a depthwise conv with constant ``1/(kh*kw)``
    weights: the same function, but an operator XNNPACK runs in int8 (it runs int8
    AVERAGE_POOL_2D on the slow built-in kernel)."""

    def build(self, input_shape):
        super().build(input_shape)
        kh, kw = self.kernel_size
        self.kernel.assign(keras.ops.full(self.kernel.shape, 1.0 / (kh * kw)))


def _average_replacement(layer):
    if type(layer) is not keras.layers.AveragePooling2D or layer.padding != "valid":
        return None
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        return None
    return AverageAsDepthwise2D(layer.pool_size, strides=layer.strides, padding="valid",
                                use_bias=False, name=layer.name)


def average_pools_as_depthwise(model):
    """A copy of ``model`` whose "valid" average pools are constant depthwise convolutions.

    Used by :func:`mnas_keras.tflite.convert` for the int8 modes: XNNPACK does not run int8
    AVERAGE_POOL_2D, so the LR-ASPP gate's 49x49 pooling (the paper's setting) would split
    the graph; an int8 DEPTHWISE_CONV_2D whose equal weights int8 holds exactly is taken.

    Returns:
        ``(model_or_copy, count)`` as :func:`native_dilated_convs`.
    """
    count = sum(1 for layer in model._flatten_layers(include_self=False) if _average_replacement(layer))
    if not count:
        return model, 0
    try:
        return _clone(model, _average_replacement), count
    except Exception:  # noqa: BLE001 - subclassed models: converted as they are
        return model, 0
