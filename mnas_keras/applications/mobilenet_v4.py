"""MobileNetV4 applications (arXiv 2404.10518): Conv-Small/Medium/Large, Hybrid-Medium/Large.

The block strings (``mnas_keras.ARCHITECTURES["mobilenet_v4_*"]``) transcribe timm's
``_gen_mobilenet_v4`` definitions, so the parameter counts equal timm's exactly (1000
classes, trainable: 3,774,024 / 9,715,512 / 32,590,864 / 11,074,648 / 37,764,624; timm
reports 3.77M / 9.72M / 32.59M / 11.07M / 37.76M). The Hybrid models add Mobile MQA
attention blocks (``mqa``) and layer scale (``ls``) on every UIB and MQA block;
Hybrid-Large uses GELU throughout.

Example:
    >>> from mnas_keras.applications import MobileNetV4ConvSmall
    >>> MobileNetV4ConvSmall(input_shape=(32, 32, 3), classes=10).output_shape
    (None, 10)
"""

from __future__ import annotations

from mnas_keras.applications.base import build_application, check_common, load_weights_file
from mnas_keras.applications.errors import WeightsUnavailableError

_DOC = """Instantiates the MobileNetV4 {title} architecture (arXiv 2404.10518).

    Built from the block strings of ``mnas_keras.ARCHITECTURES["{arch}"]`` (timm's
    definition; published input {size}x{size}; {params:,} trainable parameters at 1000
    classes, as timm's). Stem 3x3 stride-2 conv, FusedIB / conv stages, Universal Inverted
    Bottleneck stages{extra}, a 960-filter 1x1 conv, then the MobileNetV4 head: global
    pool, 1x1 conv to 1280 without bias, BN, {act}, dropout, dense.
    Batch norm uses PyTorch's epsilon (1e-5) and momentum (0.9 in Keras terms).

    No official Keras weights exist: ``weights`` is ``None`` or the path of a weights file
    of this architecture. Hook for converted weights: build the model, assign timm's
    tensors to ``model.weights`` in order (transposing convs to HWIO, depthwise to HW C 1,
    the classifier to (in, out)), and ``model.save_weights("x.weights.h5")``.

    Args:
        input_shape: optional ``(height, width, channels)``, at least 32x32; default
            ``(None, None, 3)``.
        alpha: width multiplier of the stem and blocks (the 1280 head is not scaled).
        include_top: whether to include the head after the 960 conv and the classifier.
        weights: ``None`` or the path to a weights file.
        input_tensor: optional Keras tensor to use as the model input.
        classes: number of classes when ``include_top`` is True.
        pooling: ``None``, ``"avg"`` or ``"max"`` when ``include_top`` is False.
        dropout_rate: dropout before the classifier (default 0.2).
        classifier_activation: activation of the classifier (``None`` for logits).
        include_preprocessing: normalize raw [0, 255] pixels with ImageNet mean and std
            inside the model (timm's MobileNetV4 normalization).
        name: model name.
        **kwargs: further ``mnas_keras.MnasNet`` options (``drop_connect_rate``,
            ``output_stride``, ...).

    Returns:
        A ``mnas_keras.MnasNet`` (a ``keras.Model``).

    Raises:
        WeightsUnavailableError: for ``weights="imagenet"`` (no Keras weights exist).
        ValueError: for a bad argument or a weights file of another architecture.
"""


def _mobilenet_v4(arch, title, input_shape, alpha, include_top, weights, input_tensor, classes,
                  pooling, dropout_rate, classifier_activation, include_preprocessing, name, **kwargs):
    if weights == "imagenet":
        raise WeightsUnavailableError(
            f"No official Keras ImageNet weights exist for MobileNetV4 {title}. Pass weights=None, "
            "or the path of a weights file of this architecture (e.g. timm's weights assigned "
            "to model.weights in order, then saved with model.save_weights('x.weights.h5'))."
        )
    check_common(weights, include_top, classes, input_shape, pooling, input_tensor)
    model = build_application(
        arch,
        input_shape=input_shape,
        alpha=alpha,
        include_top=include_top,
        input_tensor=input_tensor,
        classes=classes,
        pooling=pooling,
        dropout_rate=dropout_rate,
        classifier_activation=classifier_activation,
        include_preprocessing=include_preprocessing,
        name=name,
        **kwargs,
    )
    if weights is not None:
        load_weights_file(model, weights)
    return model


def MobileNetV4ConvSmall(
    input_shape=None,
    alpha=1.0,
    include_top=True,
    weights=None,
    input_tensor=None,
    classes=1000,
    pooling=None,
    dropout_rate=0.2,
    classifier_activation="softmax",
    include_preprocessing=True,
    name=None,
    **kwargs,
):
    return _mobilenet_v4(
        "mobilenet_v4_conv_small", "Conv-Small", input_shape, alpha, include_top, weights,
        input_tensor, classes, pooling, dropout_rate, classifier_activation,
        include_preprocessing, name, **kwargs
    )


def MobileNetV4ConvMedium(
    input_shape=None,
    alpha=1.0,
    include_top=True,
    weights=None,
    input_tensor=None,
    classes=1000,
    pooling=None,
    dropout_rate=0.2,
    classifier_activation="softmax",
    include_preprocessing=True,
    name=None,
    **kwargs,
):
    return _mobilenet_v4(
        "mobilenet_v4_conv_medium", "Conv-Medium", input_shape, alpha, include_top, weights,
        input_tensor, classes, pooling, dropout_rate, classifier_activation,
        include_preprocessing, name, **kwargs
    )


def MobileNetV4ConvLarge(
    input_shape=None,
    alpha=1.0,
    include_top=True,
    weights=None,
    input_tensor=None,
    classes=1000,
    pooling=None,
    dropout_rate=0.2,
    classifier_activation="softmax",
    include_preprocessing=True,
    name=None,
    **kwargs,
):
    return _mobilenet_v4(
        "mobilenet_v4_conv_large", "Conv-Large", input_shape, alpha, include_top, weights,
        input_tensor, classes, pooling, dropout_rate, classifier_activation,
        include_preprocessing, name, **kwargs
    )


def MobileNetV4HybridMedium(
    input_shape=None,
    alpha=1.0,
    include_top=True,
    weights=None,
    input_tensor=None,
    classes=1000,
    pooling=None,
    dropout_rate=0.2,
    classifier_activation="softmax",
    include_preprocessing=True,
    name=None,
    **kwargs,
):
    return _mobilenet_v4(
        "mobilenet_v4_hybrid_medium", "Hybrid-Medium", input_shape, alpha, include_top, weights,
        input_tensor, classes, pooling, dropout_rate, classifier_activation,
        include_preprocessing, name, **kwargs
    )


def MobileNetV4HybridLarge(
    input_shape=None,
    alpha=1.0,
    include_top=True,
    weights=None,
    input_tensor=None,
    classes=1000,
    pooling=None,
    dropout_rate=0.2,
    classifier_activation="softmax",
    include_preprocessing=True,
    name=None,
    **kwargs,
):
    return _mobilenet_v4(
        "mobilenet_v4_hybrid_large", "Hybrid-Large", input_shape, alpha, include_top, weights,
        input_tensor, classes, pooling, dropout_rate, classifier_activation,
        include_preprocessing, name, **kwargs
    )


# keras.applications style: one shared docstring template, filled per constructor.
_MQA = (" with Mobile MQA attention blocks (one shared K/V head; K/V downsampled by a stride-2 "
        "depthwise conv at stride 16) and layer scale (init 1e-5) on every UIB and MQA block")
MobileNetV4ConvSmall.__doc__ = _DOC.format(title="Conv-Small", arch="mobilenet_v4_conv_small", size=224,
                                           params=3_774_024, extra="", act="ReLU")
MobileNetV4ConvMedium.__doc__ = _DOC.format(title="Conv-Medium", arch="mobilenet_v4_conv_medium", size=256,
                                            params=9_715_512, extra="", act="ReLU")
MobileNetV4ConvLarge.__doc__ = _DOC.format(title="Conv-Large", arch="mobilenet_v4_conv_large", size=384,
                                           params=32_590_864, extra="", act="ReLU")
MobileNetV4HybridMedium.__doc__ = _DOC.format(title="Hybrid-Medium", arch="mobilenet_v4_hybrid_medium", size=256,
                                              params=11_074_648, extra=_MQA, act="ReLU")
MobileNetV4HybridLarge.__doc__ = _DOC.format(title="Hybrid-Large", arch="mobilenet_v4_hybrid_large", size=384,
                                             params=37_764_624, extra=_MQA, act="GELU (exact, everywhere)")
