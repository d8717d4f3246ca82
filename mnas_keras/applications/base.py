"""The private builder behind every application constructor (keras.applications signature)."""

from __future__ import annotations

import os

from mnas_keras.codec import Architecture, get_architecture, minimalistic
from mnas_keras.codec import reduced_tail as halve_tail
from mnas_keras.models import MnasNet


def check_common(weights, include_top, classes, input_shape, pooling, input_tensor=None):
    """Argument checks shared by all applications, phrased as keras.applications does.

    Any channel count builds with ``weights=None``; pretrained weights need 3 channels.
    """
    if not (weights in {"imagenet", None} or (isinstance(weights, (str, os.PathLike)) and os.path.exists(weights))):
        raise ValueError(
            "The `weights` argument should be either `None` (random initialization), "
            "`imagenet` (pre-training on ImageNet), or the path to an existing weights file. "
            f"Received: weights={weights}"
        )
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError(
            'If using `weights="imagenet"` with `include_top=True`, `classes` should be 1000. '
            f"Received: classes={classes}"
        )
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"Expected pooling in (None, 'avg', 'max'). Received: pooling={pooling!r}")
    if input_shape is not None and input_tensor is not None:
        tensor_shape = tuple(input_tensor.shape[1:])
        if len(tuple(input_shape)) != len(tensor_shape) or any(
            a is not None and b is not None and a != b for a, b in zip(tuple(input_shape), tensor_shape)
        ):
            raise ValueError(
                "input_shape must match input_tensor's shape. Received "
                f"input_shape={tuple(input_shape)}, input_tensor.shape={tuple(input_tensor.shape)}"
            )
    shape = tuple(input_tensor.shape[1:]) if input_tensor is not None else input_shape
    if shape is not None and len(tuple(shape)) != 3:
        raise ValueError(f"Expected input_shape (height, width, channels). Received: input_shape={shape}")
    channels = tuple(shape)[-1] if shape is not None else 3
    if weights == "imagenet" and channels != 3:
        raise ValueError(
            "ImageNet weights (weights='imagenet') need 3 input channels. Received "
            f"input_shape={tuple(shape)}; pass weights=None to build a {channels}-channel model."
        )
    if input_shape is not None:
        rows, cols = tuple(input_shape)[:2]
        if rows and cols and (rows < 32 or cols < 32):
            raise ValueError(f"Input size must be at least 32x32. Received: input_shape={input_shape}")


# The network options an Architecture records, passed through as they are (dropout_rate is
# handled explicitly); declared once in mnas_keras.codec.options.NetworkOptions.
_ARCHITECTURE_OPTIONS = tuple(name for name in Architecture._OPTIONS if name != "dropout_rate")


def build_application(
    arch: Architecture | str,
    *,
    input_shape=None,
    alpha=1.0,
    include_top=True,
    input_tensor=None,
    classes=1000,
    pooling=None,
    dropout_rate=None,
    classifier_activation="softmax",
    include_preprocessing=True,
    minimalistic_variant=False,
    reduced_tail: bool = False,
    name=None,
    **kwargs,
) -> MnasNet:
    """Builds the application model of ``arch`` with keras.applications-style arguments.

    ``reduced_tail=True`` halves the last stride-2 stage's output and every later stage
    (``mnas_keras.codec.reduced_tail``; the MobileNetV3 paper's setting for detection and
    segmentation backbones).
    """
    if isinstance(arch, str):
        arch = get_architecture(arch)
    blocks = minimalistic(arch.blocks) if minimalistic_variant else arch.blocks
    if reduced_tail:
        blocks = halve_tail(blocks)
    options = {option: getattr(arch, option) for option in _ARCHITECTURE_OPTIONS}
    if minimalistic_variant:
        options["activation"] = "relu"
    options.update(kwargs)  # any MnasNet option may be overridden
    return MnasNet(
        blocks,
        input_shape=input_shape,
        input_tensor=input_tensor,
        alpha=alpha,
        include_top=include_top,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        dropout_rate=arch.dropout_rate if dropout_rate is None else dropout_rate,
        include_preprocessing=include_preprocessing,
        name=name or arch.name,
        **options,
    )


def load_weights_file(model, weights) -> None:
    """Loads a user-supplied weights file into ``model`` with a clear error on mismatch."""
    try:
        model.load_weights(weights)
    except Exception as err:  # noqa: BLE001 - re-raised with the file named
        raise ValueError(
            f"Could not load weights file {weights!r} into {model.name}: {err}. The file must "
            "hold weights of this exact architecture (same alpha, include_top and classes)."
        ) from err
