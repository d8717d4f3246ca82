"""A snake_case registry of the application models, shared by the CLIs, training,
TFLite and search: ``create_model("mnasnet_a1")``, ``create_model("mobilenet_v3_small_075")``.

Example:
    >>> "mnasnet_a1" in list_models()
    True
    >>> create_model("mnasnet_small_050", input_shape=(32, 32, 3), classes=10).name
    'mnasnet_small'
"""

from __future__ import annotations

import re

from mnas_keras.applications import mnasnet, mobilenet_v3, mobilenet_v4, nasnet

_CONSTRUCTORS = {
    "mnasnet_a1": (mnasnet.MnasNetA1, {}),
    "mnasnet_b1": (mnasnet.MnasNetB1, {}),
    "mnasnet_small": (mnasnet.MnasNetSmall, {}),
    "mnasnet_d1": (mnasnet.MnasNetD1, {}),
    "mnasnet_d1_320": (mnasnet.MnasNetD1_320, {}),
    "mobilenet_v3_large": (mobilenet_v3.MobileNetV3Large, {}),
    "mobilenet_v3_small": (mobilenet_v3.MobileNetV3Small, {}),
    "mobilenet_v3_large_minimalistic": (mobilenet_v3.MobileNetV3Large, {"minimalistic": True}),
    "mobilenet_v3_small_minimalistic": (mobilenet_v3.MobileNetV3Small, {"minimalistic": True}),
    "mobilenet_v4_conv_small": (mobilenet_v4.MobileNetV4ConvSmall, {}),
    "mobilenet_v4_conv_medium": (mobilenet_v4.MobileNetV4ConvMedium, {}),
    "mobilenet_v4_conv_large": (mobilenet_v4.MobileNetV4ConvLarge, {}),
    "nasnet_mobile": (nasnet.NASNetMobile, {}),

    "mobilenet_v4_hybrid_medium": (mobilenet_v4.MobileNetV4HybridMedium, {}),
    "mobilenet_v4_hybrid_large": (mobilenet_v4.MobileNetV4HybridLarge, {}),
}
_ALPHA_SUFFIX = re.compile(r"^(.*)_(\d{3})$")


class UnknownModelError(ValueError):
    """The model name is not in the registry."""


def list_models() -> list[str]:
    """Registry names (each also accepts a width suffix such as ``_075`` for alpha 0.75)."""
    return sorted(_CONSTRUCTORS)


def parse_model_name(name: str) -> tuple[str, dict]:
    """Splits ``"mnasnet_a1_050"`` into ``("mnasnet_a1", {"alpha": 0.5})``.

    Raises:
        UnknownModelError: ``name`` is not a string, or not a registry name.
    """
    if not isinstance(name, str):
        raise UnknownModelError(f"a model name must be a string like 'mnasnet_a1'; received "
                                f"{type(name).__name__}: {name!r}. Expected one of {list_models()}")
    key = name.lower().replace("-", "_")
    options: dict = {}
    if key not in _CONSTRUCTORS:
        match = _ALPHA_SUFFIX.match(key)
        if match and match.group(1) in _CONSTRUCTORS:
            key = match.group(1)
            options["alpha"] = int(match.group(2)) / 100
        else:
            raise UnknownModelError(
                f"Unknown model {name!r}. Expected one of {list_models()}, optionally with a "
                "width suffix such as '_075'."
            )
    return key, options


def create_model(name: str, **kwargs):
    """Builds a registered application model; ``kwargs`` go to its constructor.

    Weights default to ``None`` here (random initialization); pass ``weights=...`` to load.

    Args:
        name: a :func:`list_models` name, optionally with a width suffix (``_075``: alpha 0.75).
        **kwargs: the constructor's arguments (``input_shape``, ``classes``, ``alpha``...).

    Returns:
        The application's ``keras.Model``.

    Raises:
        UnknownModelError: ``name`` is not a registry name (the message lists them).

    Example:
        >>> create_model("mobilenet_v3_small_050", input_shape=(32, 32, 3), classes=4).output_shape
        (None, 4)
    """
    key, options = parse_model_name(name)
    constructor, fixed = _CONSTRUCTORS[key]
    arguments = {"weights": None, **fixed, **options, **kwargs}
    return constructor(**arguments)
