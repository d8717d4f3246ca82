"""MnasNet applications: A1, B1, small, D1 and D1-320 (tensorflow/tpu's published stages).

Example:
    >>> from mnas_keras.applications import MnasNetA1
    >>> model = MnasNetA1(input_shape=(32, 32, 3), weights=None, classes=10)
    >>> model.output_shape
    (None, 10)
"""

from __future__ import annotations

from mnas_keras.applications.base import build_application, check_common, load_weights_file
from mnas_keras.applications.errors import WeightsUnavailableError

_DOC = """Instantiates the {title} architecture (MnasNet, arXiv 1807.11626).

    Built from the block strings of ``mnas_keras.ARCHITECTURES["{arch}"]``. No official Keras
    ImageNet weights exist for MnasNet: ``weights`` is ``None`` or the path of a weights
    file (for example one converted from the tensorflow/tpu checkpoints and saved with
    ``model.save_weights``).

    Args:
        input_shape: optional ``(height, width, channels)``; default ``(None, None, 3)``.
            Any channel count builds with ``weights=None`` (``include_preprocessing`` then
            uses the average ImageNet mean and std on every channel).
        alpha: width multiplier (tensorflow/tpu rounding; the 1280-filter head is not scaled).
        include_top: whether to include the classifier.
        weights: ``None`` or the path to a weights file.
        input_tensor: optional Keras tensor to use as the model input.
        classes: number of classes when ``include_top`` is True.
        pooling: ``None``, ``"avg"`` or ``"max"`` when ``include_top`` is False.
        dropout_rate: dropout before the classifier (default {dropout}).
        classifier_activation: activation of the classifier (``None`` for logits).
        include_preprocessing: normalize raw [0, 255] pixels with ImageNet mean and std
            inside the model.
        name: model name.
        **kwargs: further ``mnas_keras.MnasNet`` options (``drop_connect_rate``,
            ``output_stride``, ``bn_momentum``, ...).

    Returns:
        A ``mnas_keras.MnasNet`` (a ``keras.Model``).
"""


def _mnasnet(arch, title, input_shape, alpha, include_top, weights, input_tensor, classes,
             pooling, dropout_rate, classifier_activation, include_preprocessing, name, **kwargs):
    if weights == "imagenet":
        raise WeightsUnavailableError(
            f"No official Keras ImageNet weights exist for {title}. Pass weights=None, or the "
            "path of a weights file of this architecture (e.g. tensorflow/tpu's checkpoint "
            "converted by assigning its variables to model.weights in order, then saved with "
            "model.save_weights('x.weights.h5'))."
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


def MnasNetA1(
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
    return _mnasnet(
        "mnasnet_a1", "MnasNet-A1", input_shape, alpha, include_top, weights, input_tensor,
        classes, pooling, dropout_rate, classifier_activation, include_preprocessing, name,
        **kwargs
    )


def MnasNetB1(
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
    return _mnasnet(
        "mnasnet_b1", "MnasNet-B1", input_shape, alpha, include_top, weights, input_tensor,
        classes, pooling, dropout_rate, classifier_activation, include_preprocessing, name,
        **kwargs
    )


def MnasNetSmall(
    input_shape=None,
    alpha=1.0,
    include_top=True,
    weights=None,
    input_tensor=None,
    classes=1000,
    pooling=None,
    dropout_rate=0.0,
    classifier_activation="softmax",
    include_preprocessing=True,
    name=None,
    **kwargs,
):
    return _mnasnet(
        "mnasnet_small", "MnasNet-small", input_shape, alpha, include_top, weights,
        input_tensor, classes, pooling, dropout_rate, classifier_activation,
        include_preprocessing, name, **kwargs
    )


def MnasNetD1(
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
    return _mnasnet(
        "mnasnet_d1", "MnasNet-D1", input_shape, alpha, include_top, weights, input_tensor,
        classes, pooling, dropout_rate, classifier_activation, include_preprocessing, name,
        **kwargs
    )


def MnasNetD1_320(
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
    return _mnasnet(
        "mnasnet_d1_320", "MnasNet-D1-320", input_shape, alpha, include_top, weights,
        input_tensor, classes, pooling, dropout_rate, classifier_activation,
        include_preprocessing, name, **kwargs
    )


# keras.applications style: one shared docstring template, filled per constructor.
MnasNetA1.__doc__ = _DOC.format(title="MnasNet-A1", arch="mnasnet_a1", dropout=0.2)
MnasNetB1.__doc__ = _DOC.format(title="MnasNet-B1", arch="mnasnet_b1", dropout=0.2)
MnasNetSmall.__doc__ = _DOC.format(title="MnasNet-small", arch="mnasnet_small", dropout=0.0)
MnasNetD1.__doc__ = _DOC.format(title="MnasNet-D1", arch="mnasnet_d1", dropout=0.2)
MnasNetD1_320.__doc__ = _DOC.format(title="MnasNet-D1-320", arch="mnasnet_d1_320", dropout=0.2)
