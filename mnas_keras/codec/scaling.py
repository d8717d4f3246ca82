"""Width and depth scaling rules shared by every model (pure Python, no TensorFlow)."""

from __future__ import annotations

import math


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Rounds ``value`` to a multiple of ``divisor``, never more than 10% below it.

    This is the rule of tensorflow/tpu's ``round_filters`` and keras.applications'
    ``_depth``: ``max(min_value, int(value + divisor / 2) // divisor * divisor)``, plus one
    ``divisor`` if that fell below 90% of ``value``.

    Example:
        >>> make_divisible(18), make_divisible(30), make_divisible(147.2)
        (24, 32, 144)
    """
    if min_value is None:
        min_value = divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return int(new_value)


def round_filters(filters: int, multiplier: float | None, divisor: int = 8) -> int:
    """Scales a filter count by a width multiplier (tensorflow/tpu rounding).

    ``multiplier`` of ``None`` or ``1.0`` means no scaling at all (tensorflow/tpu's
    default): MnasNet-D1's 36 filters stay 36.

    Example:
        >>> round_filters(32, 0.75), round_filters(36, None), round_filters(36, 1.0)
        (24, 36, 36)
    """
    if not multiplier or multiplier == 1.0:
        return int(filters)
    return make_divisible(filters * multiplier, divisor)


def round_repeats(repeats: int, multiplier: float | None) -> int:
    """Scales a stage's repeat count by a depth multiplier (ceil, as EfficientNet).

    Example:
        >>> round_repeats(3, 1.2), round_repeats(3, None)
        (4, 3)
    """
    if not multiplier:
        return int(repeats)
    return int(math.ceil(multiplier * repeats))
