"""NASNet-A Mobile built from its two cells as data (``mnas_keras.codec.cells``).

``NASNetMobile`` is the network of ``keras.applications.NASNetMobile`` (NASNet-A 4 @ 1056,
arXiv 1707.07012 Table 3: 5.3M parameters, 564M multiply-adds, 74.0% top-1), assembled by
``mnas_keras.models.cells.build_cell_network`` from ``NASNET_A_NORMAL`` and
``NASNET_A_REDUCTION``. With 1000 classes at 224x224 it has 5,326,716 parameters (5,289,978
trainable), the count of keras.applications' model, whose weights it can take
(``tests/models/test_nasnet.py`` copies them across and compares outputs).
"""

from __future__ import annotations

from mnas_keras.applications.base import check_common, load_weights_file
from mnas_keras.applications.errors import WeightsUnavailableError
from mnas_keras.codec.cells import NASNET_A_NORMAL, NASNET_A_REDUCTION
from mnas_keras.models.cells import build_cell_network

#: NASNet-A Mobile: N = 4 normal cells per stage, penultimate width 1056 = 24 F with F = 44
#: (keras.applications NASNetMobile and TF-Slim ``nasnet_mobile``).
MOBILE = dict(num_cells=4, penultimate_filters=1056, stem_filters=32, filter_multiplier=2)


def NASNetMobile(
    input_shape=None,
    alpha=1.0,
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    classes=1000,
    pooling=None,
    dropout_rate=0.5,
    classifier_activation="softmax",
    include_preprocessing=True,
    name=None,
    **kwargs,
):
    """Instantiates NASNet-A Mobile (NASNet, arXiv 1707.07012) from its cell strings.

    Args:
        input_shape: optional ``(height, width, channels)`` with a fixed height and width of at
            least 32; default ``(224, 224, 3)`` (the cells need a fixed size).
        alpha: width multiplier: the first stage's cell width is ``round(44 * alpha)``
            (at least 4); the stem conv keeps 32 filters.
        include_top: whether to include ReLU, global pooling and the classifier.
        weights: ``None`` or the path to a weights file of this architecture. There is no
            ``"imagenet"`` download: copy keras.applications' NASNetMobile weights across
            instead (``WeightsUnavailableError``).
        input_tensor: optional Keras tensor to use as the model input.
        classes: number of classes when ``include_top`` is True.
        pooling: ``None``, ``"avg"`` or ``"max"`` when ``include_top`` is False.
        dropout_rate: dropout before the classifier; 0.5 as TF-Slim's mobile NASNet trains
            (keras.applications has none; no effect at inference).
        classifier_activation: activation of the classifier (``None`` for logits).
        include_preprocessing: map raw [0, 255] pixels to [-1, 1] inside the model (what
            ``keras.applications.nasnet.preprocess_input`` does outside it).
        name: model name (default ``"nasnet_mobile"``).
        **kwargs: further ``build_cell_network`` options (``num_cells``, ``stem_filters``,
            ``skip_reduction``, ...), or other cells as ``normal=`` / ``reduction=`` strings.

    Returns:
        A functional ``keras.Model``.

    Raises:
        ValueError: bad arguments, as keras.applications phrases them.
        WeightsUnavailableError: ``weights="imagenet"``.

    Example:
        >>> from mnas_keras.applications import NASNetMobile
        >>> NASNetMobile(input_shape=(32, 32, 3), alpha=0.25, weights=None, classes=10, num_cells=1).output_shape
        (None, 10)
    """
    check_common(weights, include_top, classes, input_shape, pooling, input_tensor)
    if weights == "imagenet":
        raise WeightsUnavailableError(
            "NASNetMobile has no ImageNet weights download here. Build it with weights=None and "
            "copy the weights of keras.applications.NASNetMobile(weights='imagenet') across by layer, "
            "or pass the path to a weights file of this architecture."
        )
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
        raise ValueError(f"Expected alpha > 0. Received: alpha={alpha!r}")
    settings = dict(MOBILE)
    penultimate = settings.pop("penultimate_filters")
    settings.update(kwargs)
    normal = settings.pop("normal", NASNET_A_NORMAL)
    reduction = settings.pop("reduction", NASNET_A_REDUCTION)
    filters = max(4, round(penultimate // 24 * alpha))
    if input_shape is None and input_tensor is None:
        input_shape = (224, 224, 3)
    model = build_cell_network(
        normal,
        reduction,
        input_shape=input_shape,
        input_tensor=input_tensor,
        filters=filters,
        include_top=include_top,
        pooling=pooling,
        classes=classes,
        dropout_rate=dropout_rate,
        classifier_activation=classifier_activation,
        include_preprocessing=include_preprocessing,
        name=name or "nasnet_mobile",
        **settings,
    )
    if weights is not None:
        load_weights_file(model, weights)
    return model
