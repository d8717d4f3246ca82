"""MobileNetV3 Large and Small, numerically the keras.applications models.

``ours.set_weights(keras.applications.MobileNetV3Small(...).get_weights())`` works and the
outputs match; ``weights="imagenet"`` loads keras.applications' own weight files through
``keras.utils.get_file`` (same file names, hashes and cache folder).

Example:
    >>> from mnas_keras.applications import MobileNetV3Small
    >>> model = MobileNetV3Small(input_shape=(32, 32, 3), weights=None, classes=10)
    >>> model.output_shape
    (None, 10)
"""

from __future__ import annotations

import os

import keras

from mnas_keras.applications.base import build_application, check_common, load_weights_file
from mnas_keras.applications.errors import WeightsUnavailableError

BASE_WEIGHT_PATH = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/"
# (with top, without top) md5 hashes of keras.applications' files.
WEIGHTS_HASHES = {
    "large_224_0.75_float": ("765b44a33ad4005b3ac83185abf1d0eb", "40af19a13ebea4e2ee0c676887f69a2e"),
    "large_224_1.0_float": ("59e551e166be033d707958cf9e29a6a7", "07fb09a5933dd0c8eaafa16978110389"),
    "large_minimalistic_224_1.0_float": ("675e7b876c45c57e9e63e6d90a36599c", "ec5221f64a2f6d1ef965a614bdae7973"),
    "small_224_0.75_float": ("cb65d4e5be93758266aa0a7f2c6708b7", "ebdb5cc8e0b497cd13a7c275d475c819"),
    "small_224_1.0_float": ("8768d4c2e7dee89b9d02b2d03d65d862", "d3e8ec802a04aa4fc771ee12a9a9b836"),
    "small_minimalistic_224_1.0_float": ("99cd97fb2fcdad2bf028eb838de69e37", "cde8136e733e811080d9fcd8a252f7e4"),
}

_DOC = """Instantiates the {title} architecture (MobileNetV3, arXiv 1905.02244).

    Same signature, layers, weights and outputs as ``keras.applications.{title}``, built from
    the block strings of ``mnas_keras.ARCHITECTURES["{arch}"]``.

    Args:
        input_shape: optional ``(height, width, channels)``, at least 32x32; default
            ``(None, None, 3)``. Any channel count builds with ``weights=None``;
            ``weights="imagenet"`` needs 3 (``ValueError`` otherwise).
        alpha: width multiplier of the blocks (and of the last point conv when > 1).
        minimalistic: kernels 3, no squeeze-excite, ReLU everywhere.
        include_top: whether to include the classifier.
        weights: ``None``, ``"imagenet"`` (keras.applications' files via
            ``keras.utils.get_file``), or the path to a weights file.
        input_tensor: optional Keras tensor to use as the model input.
        classes: number of classes when ``include_top`` is True.
        pooling: ``None``, ``"avg"`` or ``"max"`` when ``include_top`` is False.
        dropout_rate: dropout before the classifier.
        classifier_activation: activation of the classifier (``None`` for logits).
        include_preprocessing: rescale raw [0, 255] pixels to [-1, 1] inside the model.
        name: model name.
        **kwargs: further ``mnas_keras.MnasNet`` options.

    Returns:
        A ``mnas_keras.MnasNet`` (a ``keras.Model``).
"""


def weights_file(model_type: str, alpha: float, minimalistic: bool, include_top: bool):
    """keras.applications' file name and md5 for one MobileNetV3 variant."""
    key = f"{model_type}{'_minimalistic' if minimalistic else ''}_224_{alpha}_float"
    if key not in WEIGHTS_HASHES:
        raise WeightsUnavailableError(
            f"ImageNet weights exist only for alpha 0.75 or 1.0 (minimalistic: 1.0). "
            f"Received: alpha={alpha}, minimalistic={minimalistic}"
        )
    if include_top:
        return f"weights_mobilenet_v3_{key}.h5", WEIGHTS_HASHES[key][0]
    return f"weights_mobilenet_v3_{key}_no_top_v2.h5", WEIGHTS_HASHES[key][1]


def keras_cache_dir() -> str:
    """The folder ``keras.utils.get_file`` caches into (``$KERAS_HOME`` or ``~/.keras``)."""
    return os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")


def fetch_imagenet_weights(model_type, alpha, minimalistic, include_top) -> str:
    """Returns the local path of the ImageNet weights, downloading them if possible."""
    file_name, file_hash = weights_file(model_type, alpha, minimalistic, include_top)
    cache_dir = keras_cache_dir()
    try:
        return keras.utils.get_file(
            file_name,
            BASE_WEIGHT_PATH + file_name,
            cache_subdir="models",
            file_hash=file_hash,
            cache_dir=cache_dir,
        )
    except Exception as err:  # noqa: BLE001 - offline, blocked, or a corrupt cached file
        folder = os.path.join(cache_dir, "models")
        raise WeightsUnavailableError(
            f"Could not get ImageNet weights file '{file_name}' ({err.__class__.__name__}: {err}). "
            f"Download {BASE_WEIGHT_PATH + file_name} and place it in '{folder}' "
            f"(md5 {file_hash}), or pass weights=None."
        ) from None


def _mobilenet_v3(model_type, title, input_shape, alpha, minimalistic, include_top, weights,
                  input_tensor, classes, pooling, dropout_rate, classifier_activation,
                  include_preprocessing, name, **kwargs):
    check_common(weights, include_top, classes, input_shape, pooling, input_tensor)
    if weights == "imagenet":
        weights_file(model_type, alpha, minimalistic, include_top)  # validates early
    model = build_application(
        f"mobilenet_v3_{model_type}",
        input_shape=input_shape,
        alpha=alpha,
        include_top=include_top,
        input_tensor=input_tensor,
        classes=classes,
        pooling=pooling,
        dropout_rate=dropout_rate,
        classifier_activation=classifier_activation,
        include_preprocessing=include_preprocessing,
        minimalistic_variant=minimalistic,
        name=name or title,
        **kwargs,
    )
    if weights == "imagenet":
        load_weights_file(model, fetch_imagenet_weights(model_type, alpha, minimalistic, include_top))
    elif weights is not None:
        load_weights_file(model, weights)
    return model


def MobileNetV3Large(
    input_shape=None,
    alpha=1.0,
    minimalistic=False,
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    classes=1000,
    pooling=None,
    dropout_rate=0.2,
    classifier_activation="softmax",
    include_preprocessing=True,
    name=None,
    **kwargs,
):
    return _mobilenet_v3(
        "large", "MobileNetV3Large", input_shape, alpha, minimalistic, include_top, weights,
        input_tensor, classes, pooling, dropout_rate, classifier_activation,
        include_preprocessing, name, **kwargs
    )


def MobileNetV3Small(
    input_shape=None,
    alpha=1.0,
    minimalistic=False,
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    classes=1000,
    pooling=None,
    dropout_rate=0.2,
    classifier_activation="softmax",
    include_preprocessing=True,
    name=None,
    **kwargs,
):
    return _mobilenet_v3(
        "small", "MobileNetV3Small", input_shape, alpha, minimalistic, include_top, weights,
        input_tensor, classes, pooling, dropout_rate, classifier_activation,
        include_preprocessing, name, **kwargs
    )


# keras.applications style: one shared docstring template, filled per constructor.
MobileNetV3Large.__doc__ = _DOC.format(title="MobileNetV3Large", arch="mobilenet_v3_large")
MobileNetV3Small.__doc__ = _DOC.format(title="MobileNetV3Small", arch="mobilenet_v3_small")
