"""Turns block specs into a functional graph of standard Keras layers.

The graph uses only stock layers (Conv2D, DepthwiseConv2D, BatchNormalization, activations,
GlobalAveragePooling2D, Multiply, Add, Dropout, Dense) plus ``DropConnect`` in training, so
it converts to built-in TFLite ops and can be rebuilt with another layer namespace (for
example ``tf_keras.layers`` for tensorflow-model-optimization) through a ``LayerKit``, with
the same weights in the same order.

Block semantics follow tensorflow/tpu's MnasNet (and keras.applications' MobileNetV3 for the
``sexp``/``hsig``/fractional-expansion extensions):

* expand 1x1 conv (skipped when ``e == 1``) -> depthwise kxk -> SE -> linear 1x1 project;
* Universal Inverted Bottleneck (MobileNetV4): an optional start depthwise ``a`` before the
  expansion and end depthwise ``p`` after the projection, each with BN and no activation;
  ``k0`` drops the middle depthwise. The stride goes to the middle depthwise, else the start
  one, else the end one (timm's ``UniversalInvertedResidual``); residual iff stride 1 and
  ``i == o``;
* the DECLARED (width-scaled) input filters ``i`` set the expansion width, the SE width of
  ``se_base="input"`` blocks and the identity-skip rule (``i == o`` and stride 1), as in
  tensorflow/tpu; the real tensor width is only the convolutions' input. This reproduces
  mnasnet-small, whose first stage declares ``i16`` behind an 8-filter stem (no shortcut);
* integer expansion: ``i * e`` filters exactly; fractional expansion: rounded to a multiple
  of 8 (MobileNetV3);
* ``conv`` ConvOp: kxk conv to ``o`` (``e == 1``), or a fused kxk expand conv plus linear
  1x1 project (``e > 1``); ``dsconv``: depthwise kxk, BN, act, SE, 1x1 to ``o``, BN, act;
* ``mqa`` (Mobile MQA, MobileNetV4 Hybrid; timm's ``MobileAttention`` with
  ``MultiQueryAttention2d``): BN without activation, query 1x1 conv to ``h * d``, key and
  value each (``v > 1``: ``k x k`` depthwise with stride ``v`` + BN) and a 1x1 conv to ``d``,
  ``mnas_keras.layers.MultiQueryAttention``, 1x1 output conv to ``o``; no biases;
* ``ls`` (layer scale): ``mnas_keras.layers.LayerScale`` (init 1e-5) on the block output,
  before the shortcut (timm applies it to every UIB and MQA block of the Hybrid models,
  strided ones included);
* ``poolskip``: shortcut added always, average-pooled when strided and projected by a 1x1
  conv + BN when the widths differ.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from typing import Any, Callable, Sequence

import keras

from mnas_keras.codec import BlockSpec, make_divisible, round_filters
from mnas_keras.codec.options import NetworkOptions
from mnas_keras.layers import DropConnect, LayerScale, MultiQueryAttention, activation_layer

LAYER_SCALE_INIT = 1e-5
"""Initial layer-scale value of ``ls`` blocks (MobileNetV4's, timm ``layer_scale_init_value``)."""


@dataclasses.dataclass(frozen=True)
class LayerKit:
    """The layer namespace and activation factory the builder draws from."""

    layers: Any = keras.layers
    activation: Callable[[str, str], Any] = activation_layer
    drop_connect: Callable[..., Any] | None = DropConnect


#: The network's global options the builder reads: :class:`mnas_keras.codec.options.NetworkOptions`
#: (declared once there; ``BuildOptions`` is its older name here).
BuildOptions = NetworkOptions


def expanded_width(input_filters: int, expansion: Fraction) -> int:
    """Width of the expanded tensor: exact for integer ``e``, rounded to 8 otherwise.

    Example:
        >>> from fractions import Fraction
        >>> expanded_width(36, Fraction(9)), expanded_width(80, Fraction(23, 10))
        (324, 184)
    """
    if expansion.denominator == 1:
        return int(input_filters * expansion.numerator)
    return make_divisible(input_filters * float(expansion), 8)


def se_width(spec: BlockSpec, expanded: int) -> int:
    """Squeeze width: from the input filters (MnasNet) or expanded filters (MobileNetV3)."""
    if spec.se_base == "expanded":
        return make_divisible(expanded * spec.se_ratio, 8)
    return max(1, int(spec.input_filters * spec.se_ratio))


class _GraphBuilder:
    """Builds one network; keeps the running stride, dilation and endpoints."""

    def __init__(self, opts: BuildOptions, kit: LayerKit):
        self.o = opts
        self.kit = kit
        self.L = kit.layers
        self.stride = 1
        self.in_stride = 1
        self.rate = 1
        self.endpoints: dict[str, str] = {}
        self.block_index = 0
        self.num_blocks = 0

    # ------------------------------------------------------------- primitives
    def bn(self, x, name):
        return self.L.BatchNormalization(
            momentum=self.o.bn_momentum, epsilon=self.o.bn_epsilon, name=name
        )(x)

    def act(self, x, kind, name):
        return self.kit.activation(kind, name)(x)

    def conv(self, x, filters, kernel, name, strides=1, dilation=1, use_bias=False):
        return self.L.Conv2D(
            filters,
            kernel,
            strides=strides,
            padding="same",
            dilation_rate=dilation,
            use_bias=use_bias,
            name=name,
        )(x)

    def depthwise(self, x, kernel, strides, dilation, name):
        return self.L.DepthwiseConv2D(
            kernel,
            strides=strides,
            padding="same",
            dilation_rate=dilation,
            use_bias=False,
            name=name,
        )(x)

    def squeeze_excite(self, x, spec, expanded, prefix):
        channels = x.shape[-1]
        s = self.L.GlobalAveragePooling2D(keepdims=True, name=prefix + "se_squeeze")(x)
        s = self.conv(s, se_width(spec, expanded), 1, prefix + "se_reduce", use_bias=True)
        s = self.act(s, "relu", prefix + "se_relu")
        s = self.conv(s, channels, 1, prefix + "se_expand", use_bias=True)
        gate = "hsig" if spec.se_gate == "hsig" else "sigmoid"
        s = self.act(s, gate, prefix + "se_gate")
        return self.L.Multiply(name=prefix + "se_excite")([x, s])

    # ----------------------------------------------------------------- stride
    def _stride_and_dilation(self, strides):
        """Strides to apply and dilation to use, honouring ``output_stride``."""
        factor = max(strides)
        if factor > 1 and self.stride * factor > self.o.output_stride:
            rate = self.rate
            self.rate *= factor
            return (1, 1), rate
        self.stride *= factor
        return tuple(strides), self.rate

    # ----------------------------------------------------------------- blocks
    def block(self, x, spec: BlockSpec, prefix: str):
        builder = _BLOCKS[spec.op]
        shortcut = x
        activation = spec.activation or self.o.activation
        in_stride = self.in_stride = self.stride
        strides, dilation = self._stride_and_dilation(spec.strides)
        y = builder(self, x, spec, activation, strides, dilation, prefix)
        if spec.layer_scale:
            y = LayerScale(LAYER_SCALE_INIT, name=prefix + "layer_scale")(y)
        return self._skip(shortcut, y, spec, strides, prefix), in_stride

    def _skip(self, shortcut, y, spec, strides, prefix):
        strided = max(strides) > 1
        if spec.skip == "none":
            return y
        if spec.skip == "identity":
            if strided or spec.input_filters != spec.output_filters:
                return y
            if shortcut.shape[-1] != y.shape[-1]:
                return y
        else:  # pooling shortcut
            if strided:
                shortcut = self.L.AveragePooling2D(
                    pool_size=strides, strides=strides, padding="same", name=prefix + "skip_pool"
                )(shortcut)
            if shortcut.shape[-1] != y.shape[-1]:
                shortcut = self.conv(shortcut, y.shape[-1], 1, prefix + "skip_proj")
                shortcut = self.bn(shortcut, prefix + "skip_proj_bn")
        rate = self.o.drop_connect_rate * self.block_index / max(1, self.num_blocks)
        if rate > 0 and self.kit.drop_connect is not None:
            y = self.kit.drop_connect(rate, name=prefix + "drop")(y)
        return self.L.Add(name=prefix + "add")([shortcut, y])

    def _mbconv(self, x, spec, activation, strides, dilation, prefix):
        # UIB (MobileNetV4): the stride goes to the middle depthwise, else the start one,
        # else the end one; the start and end depthwise convs have no activation.
        one = (1, 1)
        if spec.start_kernel:
            start_strides = strides if not spec.kernel else one
            x = self.depthwise(x, spec.start_kernel, start_strides, dilation, prefix + "start_dw")
            x = self.bn(x, prefix + "start_dw_bn")
        if spec.expansion != 1:
            expanded = expanded_width(spec.input_filters, spec.expansion)
            x = self.conv(x, expanded, 1, prefix + "expand")
            x = self.bn(x, prefix + "expand_bn")
            x = self.act(x, activation, prefix + "expand_act")
            if max(spec.strides) > 1:
                self.endpoints[f"expansion_{self.in_stride}"] = prefix + "expand_act"
        else:
            expanded = x.shape[-1]
        if spec.kernel:
            x = self.depthwise(x, spec.kernel, strides, dilation, prefix + "depthwise")
            x = self.bn(x, prefix + "depthwise_bn")
            x = self.act(x, activation, prefix + "depthwise_act")
        if spec.has_se:
            x = self.squeeze_excite(x, spec, expanded, prefix)
        x = self.conv(x, spec.output_filters, 1, prefix + "project")
        x = self.bn(x, prefix + "project_bn")
        if spec.end_kernel:
            end_strides = strides if not (spec.kernel or spec.start_kernel) else one
            x = self.depthwise(x, spec.end_kernel, end_strides, dilation, prefix + "end_dw")
            x = self.bn(x, prefix + "end_dw_bn")
        return x

    def _mqa(self, x, spec, activation, strides, dilation, prefix):
        # Mobile MQA: one K/V head shared by all query heads, K/V optionally downsampled.
        x = self.bn(x, prefix + "attn_norm")
        query = self.conv(x, spec.heads * spec.key_dim, 1, prefix + "query")
        kv = {}
        for part in ("key", "value"):
            y = x
            if spec.kv_stride > 1:
                y = self.depthwise(y, spec.kernel, spec.kv_stride, 1, prefix + part + "_down")
                y = self.bn(y, prefix + part + "_down_bn")
            kv[part] = self.conv(y, spec.key_dim, 1, prefix + part)
        y = MultiQueryAttention(spec.heads, spec.key_dim, name=prefix + "attention")(
            [query, kv["key"], kv["value"]]
        )
        return self.conv(y, spec.output_filters, 1, prefix + "output")

    def _conv(self, x, spec, activation, strides, dilation, prefix):
        fused = spec.expansion != 1
        width = expanded_width(spec.input_filters, spec.expansion) if fused else spec.output_filters
        x = self.conv(x, width, spec.kernel, prefix + "conv", strides=strides, dilation=dilation)
        x = self.bn(x, prefix + "conv_bn")
        x = self.act(x, activation, prefix + "conv_act")
        if spec.has_se:
            x = self.squeeze_excite(x, spec, width, prefix)
        if fused:
            x = self.conv(x, spec.output_filters, 1, prefix + "project")
            x = self.bn(x, prefix + "project_bn")
        return x

    def _dsconv(self, x, spec, activation, strides, dilation, prefix):
        x = self.depthwise(x, spec.kernel, strides, dilation, prefix + "depthwise")
        x = self.bn(x, prefix + "depthwise_bn")
        x = self.act(x, activation, prefix + "depthwise_act")
        if spec.has_se:
            x = self.squeeze_excite(x, spec, x.shape[-1], prefix)
        x = self.conv(x, spec.output_filters, 1, prefix + "pointwise")
        x = self.bn(x, prefix + "pointwise_bn")
        return self.act(x, activation, prefix + "pointwise_act")

    # ------------------------------------------------------------ whole graph
    def stem(self, x, prefix: str = ""):
        o = self.o
        filters = round_filters(o.stem_filters, o.alpha) if o.scale_stem else o.stem_filters
        x = self.conv(x, filters, 3, prefix + "stem_conv", strides=2)
        x = self.bn(x, prefix + "stem_bn")
        x = self.act(x, o.activation, prefix + "stem_act")
        self.stride = 2
        return x

    def build(self, x, specs: Sequence[BlockSpec]):
        o = self.o
        x = self.stem(x)
        last_name = "stem_act"
        scaled = [
            s.replace(
                input_filters=round_filters(s.input_filters, o.alpha),
                output_filters=round_filters(s.output_filters, o.alpha),
            )
            for s in specs
        ]
        blocks = [(si, bi, b) for si, s in enumerate(scaled) for bi, b in enumerate(s.expand())]
        self.num_blocks = len(blocks)
        for index, (si, bi, spec) in enumerate(blocks):
            self.block_index = index
            prefix = f"stage{si + 1}_block{bi + 1}_"
            before = self.stride
            x, _ = self.block(x, spec, prefix)
            if self.stride != before:
                self.endpoints[f"stride_{before}"] = last_name
            last_name = _layer_name_of(x)
        x = self._head(x)
        return x

    def _head(self, x, p: str = ""):
        o = self.o
        if o.head == "mnasnet":
            x = self.conv(x, o.head_filters, 1, p + "head_conv")
            x = self.bn(x, p + "head_bn")
            x = self.act(x, o.activation, p + "head_act")
            self.endpoints[f"stride_{self.stride}"] = p + "head_act"
            if o.include_top:
                x = self.L.GlobalAveragePooling2D(name=p + "avg_pool")(x)
                if o.dropout_rate > 0:
                    x = self.L.Dropout(o.dropout_rate, name=p + "dropout")(x)
                x = self.L.Dense(o.classes, activation=o.classifier_activation, name=p + "predictions")(x)
                return x
        elif o.head == "mobilenetv4":
            # The 960 conv is the last block (timm's 'cn_r1_k1_s1_c960'); after the pool a
            # 1x1 conv without bias, BN and activation, then the classifier.
            self.endpoints[f"stride_{self.stride}"] = _layer_name_of(x)
            if o.include_top:
                x = self.L.GlobalAveragePooling2D(keepdims=True, name=p + "avg_pool")(x)
                x = self.conv(x, o.head_filters, 1, p + "head_point")
                x = self.bn(x, p + "head_point_bn")
                x = self.act(x, o.activation, p + "head_point_act")
                x = self.L.Flatten(name=p + "flatten")(x)
                if o.dropout_rate > 0:
                    x = self.L.Dropout(o.dropout_rate, name=p + "dropout")(x)
                return self.L.Dense(o.classes, activation=o.classifier_activation, name=p + "predictions")(x)
        else:  # mobilenetv3
            width = make_divisible(x.shape[-1] * o.head_expansion, 8)
            x = self.conv(x, width, 1, p + "head_conv")
            x = self.bn(x, p + "head_bn")
            x = self.act(x, o.activation, p + "head_act")
            self.endpoints[f"stride_{self.stride}"] = p + "head_act"
            if o.include_top:
                last = make_divisible(o.head_filters * o.alpha, 8) if o.alpha > 1.0 else o.head_filters
                x = self.L.GlobalAveragePooling2D(keepdims=True, name=p + "avg_pool")(x)
                x = self.conv(x, last, 1, p + "head_point", use_bias=True)
                x = self.act(x, o.activation, p + "head_point_act")
                if o.dropout_rate > 0:
                    x = self.L.Dropout(o.dropout_rate, name=p + "dropout")(x)
                x = self.conv(x, o.classes, 1, p + "logits", use_bias=True)
                x = self.L.Flatten(name=p + "flatten")(x)
                return self.L.Activation(o.classifier_activation, name=p + "predictions")(x)
        if o.pooling == "avg":
            return self.L.GlobalAveragePooling2D(name=p + "avg_pool")(x)
        if o.pooling == "max":
            return self.L.GlobalMaxPooling2D(name=p + "max_pool")(x)
        return x


def _layer_name_of(tensor):
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None
    return history[0].name


_BLOCKS = {
    "mbconv": _GraphBuilder._mbconv,
    "conv": _GraphBuilder._conv,
    "dsconv": _GraphBuilder._dsconv,
    "mqa": _GraphBuilder._mqa,
}


def build_graph(inputs, specs: Sequence[BlockSpec], options: BuildOptions, kit: LayerKit | None = None):
    """Builds the network on ``inputs``; returns ``(outputs, endpoints)``.

    ``endpoints`` maps ``stride_4`` ... ``stride_32`` (the last tensor at each output stride)
    and ``expansion_<s>`` (the expansion output feeding a stride-2 block at stride ``s``) to
    layer names.
    """
    builder = _GraphBuilder(options, kit or LayerKit())
    outputs = builder.build(inputs, list(specs))
    return outputs, dict(builder.endpoints)


def build_stem(inputs, options: BuildOptions = BuildOptions(), kit: LayerKit | None = None, prefix: str = ""):
    """The stem (3x3 stride-2 conv, BN, activation) a network built with ``options`` starts with.

    Example:
        >>> x = keras.Input((32, 32, 3))
        >>> tuple(build_stem(x, BuildOptions(stem_filters=8)).shape)
        (None, 16, 16, 8)
    """
    return _GraphBuilder(options, kit or LayerKit()).stem(inputs, prefix)


def build_block(inputs, spec: BlockSpec | str, options: BuildOptions = BuildOptions(), kit: LayerKit | None = None,
                prefix: str = "block_"):
    """One single block (``r1``), with exactly the layers it has inside a network.

    Example:
        >>> x = keras.Input((16, 16, 16))
        >>> y = build_block(x, "r1_k3_s22_e6_i16_o24_se0.25")
        >>> tuple(y.shape)
        (None, 8, 8, 24)
    """
    spec = spec if isinstance(spec, BlockSpec) else BlockSpec.from_string(spec)
    if spec.repeats != 1:
        raise ValueError(f"build_block builds one block; {spec.to_string()!r} has r{spec.repeats} "
                         "(use spec.expand())")
    return _GraphBuilder(options, kit or LayerKit()).block(inputs, spec, prefix)[0]


def build_head(inputs, options: BuildOptions = BuildOptions(), kit: LayerKit | None = None, prefix: str = ""):
    """The head a network built with ``options`` ends with (``options.head``, ``include_top``).

    Example:
        >>> x = keras.Input((4, 4, 24))
        >>> tuple(build_head(x, BuildOptions(head_filters=64, classes=10)).shape)
        (None, 10)
    """
    return _GraphBuilder(options, kit or LayerKit())._head(inputs, prefix)
