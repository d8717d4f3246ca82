"""Builds NASNet-style networks from cell specs, with stock Keras layers only.

The network (NASNet, arXiv 1707.07012, Fig. 2, ImageNet layout) is a 3x3 stride-2 stem conv
and batch norm, ``stem_cells`` reduction cells, then ``N`` normal cells, a reduction cell,
``N`` normal cells, a reduction cell and ``N`` normal cells; then ReLU, global average pool
and the classifier. The cell width starts at ``filters / multiplier**stem_cells`` and is
multiplied by ``filter_multiplier`` at each reduction (``filters`` in the first normal
cells). The operation conventions follow the paper's appendix A.4 and the keras.applications
NASNet (so that NASNet-A reproduces ``keras.applications.NASNetMobile`` exactly):

* every cell first brings its two inputs to its width and size: ``h_i`` by ReLU, 1x1 conv, BN;
  ``h_(i-1)`` by a factorized reduction (two shifted stride-2 1x1 convs, concatenated, BN)
  when its size differs, by ReLU, 1x1 conv, BN when only its width differs, as it is otherwise;
* in a reduction cell, ops reading state 0 or 1 have stride 2; stride-2 ops zero-pad as
  keras.applications' ``correct_pad`` and then pool or convolve "valid";
* ``sepKxK``: (ReLU, separable conv, BN) twice, the stride on the first; ``convKxK``,
  ``conv1xK_Kx1`` and ``dil3x3`` (rate 2; a stride-2 one subsamples after the conv): ReLU,
  conv(s), BN; pools and ``id`` keep their input, and add a 1x1 conv (+ BN, ReLU first for
  ``id``) when the width or the stride must change;
* the output concatenates the cell's output states; a state still at the input size in a
  reduction cell is brought down by a factorized reduction first.

Example:
    >>> from mnas_keras.codec.cells import NASNET_A_REDUCTION
    >>> x = keras.Input((16, 16, 8))
    >>> y, _ = build_cell(x, None, NASNET_A_REDUCTION, 8, reduction=True, name="r")
    >>> tuple(y.shape)  # half the size, 4 states of F = 8 channels concatenated
    (None, 8, 8, 32)
"""

from __future__ import annotations

import keras

from mnas_keras.codec.cells import CellSpec

BN_MOMENTUM = 0.9997  # keras.applications NASNet and TF-Slim's mobile arg scope
BN_EPSILON = 1e-3


class CellNetworkError(ValueError):
    """Settings that cannot make a cell network (sizes, widths, cell specs)."""


def _as_cell(cell) -> CellSpec:
    return cell if isinstance(cell, CellSpec) else CellSpec.from_string(cell)


def _bn(name, bn):
    return keras.layers.BatchNormalization(momentum=bn[0], epsilon=bn[1], name=name)


def _conv(filters, kernel, name, strides=1, padding="same", dilation=1):
    return keras.layers.Conv2D(filters, kernel, strides=strides, padding=padding, dilation_rate=dilation,
                               use_bias=False, kernel_initializer="he_normal", name=name)


def _pad_for_stride(x, kernel, name):
    """Zero padding before a stride-2 "valid" op, as keras.applications' ``correct_pad``.

    Output size is then ``ceil(n / 2)`` for every kernel size.
    """
    pads = []
    for size, k in zip(x.shape[1:3], kernel):
        adjust = 1 if size is None else 1 - size % 2
        pads.append((max(0, k // 2 - adjust), k // 2))
    if all(p == (0, 0) for p in pads):
        return x
    return keras.layers.ZeroPadding2D(tuple(pads), name=name)(x)


def _factorized_reduction(x, filters, name, bn):
    """Halves the size: ReLU, then two 1x1 stride-2 convs (one on the input shifted by one
    pixel), concatenated to ``filters`` channels, then BN (NASNet appendix A.4)."""
    x = keras.layers.Activation("relu", name=f"{name}_relu")(x)
    a = keras.layers.AveragePooling2D(1, strides=2, padding="valid", name=f"{name}_pool1")(x)
    a = _conv(filters // 2, 1, f"{name}_conv1")(a)
    b = keras.layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"{name}_shift_pad")(x)
    b = keras.layers.Cropping2D(((1, 0), (1, 0)), name=f"{name}_shift_crop")(b)
    b = keras.layers.AveragePooling2D(1, strides=2, padding="valid", name=f"{name}_pool2")(b)
    b = _conv(filters - filters // 2, 1, f"{name}_conv2")(b)
    x = keras.layers.Concatenate(name=f"{name}_concat")([a, b])
    return _bn(f"{name}_bn", bn)(x)


def _relu_conv_bn(x, filters, kernel, name, bn, strides=1):
    x = keras.layers.Activation("relu", name=f"{name}_relu")(x)
    return _bn(f"{name}_bn", bn)(_conv(filters, kernel, f"{name}_conv", strides=strides)(x))


def _separable(x, filters, k, strides, name, bn):
    for i, s in ((1, strides), (2, 1)):
        x = keras.layers.Activation("relu", name=f"{name}_relu{i}")(x)
        padding = "same"
        if s == 2:
            x = _pad_for_stride(x, (k, k), f"{name}_pad")
            padding = "valid"
        x = keras.layers.SeparableConv2D(filters, k, strides=s, padding=padding, use_bias=False,
                                         name=f"{name}_sep{i}")(x)
        x = _bn(f"{name}_sep{i}_bn", bn)(x)
    return x


def _conv_op(x, filters, kernels, strides, name, bn, dilation=1):
    x = keras.layers.Activation("relu", name=f"{name}_relu")(x)
    for i, kernel in enumerate(kernels):
        # A factorized 1xK, Kx1 pair strides along its kernel's long side each.
        s = strides if len(kernels) == 1 else ((1, strides) if i == 0 else (strides, 1))
        s = (s, s) if isinstance(s, int) else s
        padding = "same"
        if s != (1, 1) and dilation == 1:
            x = _pad_for_stride(x, kernel, f"{name}_pad{i + 1}")
            padding = "valid"
        x = _conv(filters, kernel, f"{name}_conv{i + 1}", strides=1 if dilation > 1 else s,
                  padding=padding, dilation=dilation)(x)
    if dilation > 1 and strides == 2:
        x = keras.layers.AveragePooling2D(1, strides=2, padding="valid", name=f"{name}_subsample")(x)
    return _bn(f"{name}_bn", bn)(x)


def _pool_op(x, kind, k, filters, strides, name, bn):
    layer = keras.layers.MaxPooling2D if kind == "max" else keras.layers.AveragePooling2D
    if strides == 2:
        x = _pad_for_stride(x, (k, k), f"{name}_pad")
        x = layer(k, strides=2, padding="valid", name=f"{name}_pool")(x)
    else:
        x = layer(k, strides=1, padding="same", name=f"{name}_pool")(x)
    if x.shape[-1] != filters:
        x = _bn(f"{name}_proj_bn", bn)(_conv(filters, 1, f"{name}_proj_conv")(x))
    return x


def _apply_op(x, op, filters, strides, name, bn):
    if op == "id":
        if strides == 1 and x.shape[-1] == filters:
            return x
        return _relu_conv_bn(x, filters, 1, f"{name}_proj", bn, strides=strides)
    if op.startswith("sep"):
        return _separable(x, filters, int(op[3]), strides, name, bn)
    if op.startswith(("avg", "max")):
        return _pool_op(x, op[:3], int(op[3]), filters, strides, name, bn)
    if op == "dil3x3":
        return _conv_op(x, filters, [(3, 3)], strides, name, bn, dilation=2)
    if op == "conv1x3_3x1":
        return _conv_op(x, filters, [(1, 3), (3, 1)], strides, name, bn)
    if op == "conv1x7_7x1":
        return _conv_op(x, filters, [(1, 7), (7, 1)], strides, name, bn)
    k = int(op[4])  # conv1x1, conv3x3
    return _conv_op(x, filters, [(k, k)], strides, name, bn)


def build_cell(x, p, cell, filters: int, *, reduction: bool, name: str, bn_momentum: float = BN_MOMENTUM,
               bn_epsilon: float = BN_EPSILON):
    """Applies one cell and returns ``(output, x)`` (the next cell's two inputs).

    Args:
        x: ``h_i``, a 4-D channels-last Keras tensor with a fixed height and width.
        p: ``h_(i-1)`` (``None``: use ``x``, as the first cell does); the same size as ``x``
            or twice it.
        cell: a ``CellSpec`` or cell string.
        filters: the cell's width ``F``; every op outputs ``F`` channels, a concat block ``2F``.
        reduction: apply stride 2 to the ops reading state 0 or 1 (halves the size).
        name: prefix of the cell's layer names.
        bn_momentum: batch norm momentum (default 0.9997, keras.applications NASNet).
        bn_epsilon: batch norm epsilon (default 1e-3).

    Returns:
        ``(output, x)``: the output concatenates ``cell.output_states``.
    """
    cell = _as_cell(cell)
    bn = (bn_momentum, bn_epsilon)
    if p is None:
        p = x
    elif tuple(p.shape[1:3]) != tuple(x.shape[1:3]):
        p = _factorized_reduction(p, filters, f"{name}_adjust", bn)
    elif p.shape[-1] != filters:
        p = _relu_conv_bn(p, filters, 1, f"{name}_adjust", bn)
    h = _relu_conv_bn(x, filters, 1, f"{name}_h", bn)
    states = [h, p]
    for b, block in enumerate(cell.blocks):
        outs = []
        for side, index, op in zip("ab", block.inputs, block.ops):
            strides = 2 if reduction and index < 2 else 1
            outs.append(_apply_op(states[index], op, filters, strides, f"{name}_b{b + 1}{side}_{op}", bn))
        merge = keras.layers.Add if block.combine == "add" else keras.layers.Concatenate
        states.append(merge(name=f"{name}_b{b + 1}_{block.combine}")(outs))
    outputs = []
    for index in cell.output_states:
        state = states[index]
        if reduction and index < 2:
            state = _factorized_reduction(state, state.shape[-1], f"{name}_out{index}_reduce", bn)
        outputs.append(state)
    out = outputs[0] if len(outputs) == 1 else keras.layers.Concatenate(name=f"{name}_concat")(outputs)
    return out, x


def build_cell_network(
    normal,
    reduction,
    *,
    input_shape=(224, 224, 3),
    input_tensor=None,
    num_cells: int = 4,
    filters: int = 44,
    stem_filters: int = 32,
    stem_cells: int = 2,
    filter_multiplier: int = 2,
    skip_reduction: bool = False,
    include_top: bool = True,
    pooling=None,
    classes: int = 1000,
    dropout_rate: float = 0.0,
    classifier_activation="softmax",
    include_preprocessing: bool = False,
    bn_momentum: float = BN_MOMENTUM,
    bn_epsilon: float = BN_EPSILON,
    name: str = "cell_network",
) -> keras.Model:
    """A functional Keras model from a normal and a reduction cell.

    Layer names: ``stem_conv``/``stem_bn``; cell ``i`` (0-based, in order) prefixes its layers
    with ``cell{i}`` (``cell3_b1a_sep5x5_sep1`` is the first separable conv of op A of block 1
    of the fourth cell); the classifier is ``predictions``.

    Args:
        normal: the normal cell (``CellSpec`` or cell string).
        reduction: the reduction cell.
        input_shape: ``(height, width, channels)``, fixed height and width of at least 32.
        input_tensor: optional Keras tensor to build on (its shape is used).
        num_cells: ``N``, normal cells per stage (3 stages).
        filters: ``F``, the width of the first stage's normal cells.
        stem_filters: filters of the stem conv.
        stem_cells: reduction cells between the stem conv and the first stage (2 on ImageNet).
        filter_multiplier: width factor per reduction.
        skip_reduction: the normal cell after a reduction cell takes as ``h_(i-1)`` the
            reduction cell's own ``h_(i-1)`` instead of its input (NASNet-A Large).
        include_top: end with global average pooling and a dense classifier.
        pooling: without the top, ``None``, ``"avg"`` or ``"max"``.
        classes: classifier outputs.
        dropout_rate: dropout before the classifier.
        classifier_activation: the classifier's activation (``None`` for logits).
        include_preprocessing: map raw [0, 255] pixels to [-1, 1] first
            (``keras.applications.nasnet.preprocess_input``).
        bn_momentum: batch norm momentum of every layer (0.9997 as keras.applications).
        bn_epsilon: batch norm epsilon (1e-3).
        name: the model's name.

    Returns:
        A functional ``keras.Model``: ``(batch, H, W, C)`` to ``(batch, classes)`` with the top.

    Raises:
        CellNetworkError: an input without a fixed size of at least 32, or a width too small.
        CellStringError: a malformed cell string.
    """
    normal, reduction = _as_cell(normal), _as_cell(reduction)
    if input_tensor is not None:
        input_shape = tuple(input_tensor.shape[1:])
    if input_shape is None or len(input_shape) != 3 or any(d is None for d in input_shape[:2]):
        raise CellNetworkError(
            f"cell networks need a fixed input size; expected (height, width, channels). Received: "
            f"input_shape={input_shape}"
        )
    if min(input_shape[:2]) < 32:
        raise CellNetworkError(f"Input size must be at least 32x32. Received: input_shape={tuple(input_shape)}")
    if filters // filter_multiplier ** stem_cells < 2 or num_cells < 1:
        raise CellNetworkError(
            f"expected filters / filter_multiplier**stem_cells >= 2 and num_cells >= 1. Received: filters={filters}, "
            f"filter_multiplier={filter_multiplier}, stem_cells={stem_cells}, num_cells={num_cells}"
        )
    if pooling not in (None, "avg", "max"):
        raise CellNetworkError(f"Expected pooling in (None, 'avg', 'max'). Received: pooling={pooling!r}")
    inputs = keras.Input(tuple(input_shape)) if input_tensor is None else input_tensor
    x = inputs
    if include_preprocessing:
        x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="rescaling")(x)
    x = _conv(stem_filters, 3, "stem_conv", strides=2, padding="valid")(x)
    bn = (bn_momentum, bn_epsilon)
    x = _bn("stem_bn", bn)(x)
    p = None
    index = 0

    def cell(x, p, spec, width, is_reduction):
        nonlocal index
        out = build_cell(x, p, spec, width, reduction=is_reduction, name=f"cell{index}", bn_momentum=bn[0],
                         bn_epsilon=bn[1])
        index += 1
        return out

    for s in range(stem_cells):
        x, p = cell(x, p, reduction, filters // filter_multiplier ** (stem_cells - s), True)
    width = filters
    for stage in range(3):
        if stage:
            x, p_new = cell(x, p, reduction, width, True)
            p = p if skip_reduction else p_new
        for _ in range(num_cells):
            x, p = cell(x, p, normal, width, False)
        width *= filter_multiplier
    x = keras.layers.Activation("relu", name="head_relu")(x)
    return classifier_model(inputs, x, include_top=include_top, pooling=pooling, classes=classes,
                            dropout_rate=dropout_rate, classifier_activation=classifier_activation,
                            input_tensor=input_tensor, name=name)


def classifier_model(inputs, x, *, include_top, pooling, classes, dropout_rate, classifier_activation,
                     input_tensor, name):
    """The keras.applications top shared by the cell and macro builders: pooling, dropout and
    the classifier when ``include_top``, else optional ``"avg"``/``"max"`` pooling; the model's
    inputs are ``input_tensor``'s sources when one was given."""
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout_rate:
            x = keras.layers.Dropout(dropout_rate, name="dropout")(x)
        x = keras.layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    if input_tensor is not None:
        inputs = keras.utils.get_source_inputs(input_tensor)
    return keras.Model(inputs, x, name=name)
