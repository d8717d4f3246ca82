"""The network's global options, declared once (no TensorFlow).

:class:`NetworkOptions` is the one declaration of the scalars around a network's block
strings (width multiplier, stem, activation, head, classifier, dropout, batch norm,
preprocessing, output stride): their names, types, defaults and checks.
``mnas_keras.Architecture`` takes its option fields (type and default) from it,
``mnas_keras.MnasNet`` takes a ``NetworkOptions`` (or its fields as keyword arguments) and
writes them flat into its config, the graph builder (``mnas_keras.models.BuildOptions`` is
this class) reads it, and the applications pass an architecture's options through by name.

The defaults are MnasNet-A1's (tensorflow/tpu ``mnasnet_models.py``: stem 32, head 1280,
dropout 0.2, batch-norm momentum 0.99 and epsilon 1e-3, ReLU).

Example:
    >>> options = NetworkOptions(alpha=0.75, classes=10)
    >>> options.alpha, options.stem_filters, options.head_filters, options.dropout_rate
    (0.75, 32, 1280, 0.2)
    >>> NetworkOptions(alpha=0)
    Traceback (most recent call last):
    ...
    ValueError: Expected alpha > 0. Received: alpha=0
"""

from __future__ import annotations

import dataclasses

#: Heads a network may end with (see ``mnas_keras.Architecture``).
HEADS = ("mnasnet", "mobilenetv3", "mobilenetv4")
#: What ``include_preprocessing`` may put in front of a network.
PREPROCESSING = ("imagenet_mean_std", "scale_-1_1")
#: The activations a network (and a block that names none) may use.
ACTIVATIONS = ("relu", "relu6", "hswish", "swish", "gelu")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclasses.dataclass(frozen=True)
class NetworkOptions:
    """A network's global options (see the module docstring); values are normalized to
    their field's type (``alpha=1`` becomes ``1.0``).

    Attributes:
        alpha: width multiplier (tensorflow/tpu rounding to multiples of 8; 1.0 = none).
        stem_filters: filters of the 3x3 stride-2 stem conv.
        scale_stem: whether ``alpha`` scales the stem (MnasNet yes, MobileNetV3 no).
        activation: the model's activation (stem, head, blocks that name none): one of
            :data:`ACTIVATIONS`.
        head: ``"mnasnet"``, ``"mobilenetv3"`` or ``"mobilenetv4"`` (see ``mnas_keras.Architecture``).
        head_filters: 1280 for MnasNet (never scaled); MobileNetV3's last point width
            (scaled only when alpha > 1).
        head_expansion: MobileNetV3's pre-pool width as a multiple of the last stage's.
        include_top, pooling, classes, classifier_activation: as in keras.applications
            (``classes`` may be ``None`` without the top).
        dropout_rate: dropout before the classifier, in [0, 1).
        drop_connect_rate: stochastic depth rate on residual branches (scaled per block), in [0, 1).
        bn_momentum, bn_epsilon: batch-norm settings.
        include_preprocessing: put ``preprocessing`` in front (inputs then in [0, 255]).
        preprocessing: ``"imagenet_mean_std"`` or ``"scale_-1_1"``.
        output_stride: 32, or 16 (8, 4) to dilate the last stride-2 stage(s) instead of striding.

    Raises:
        ValueError: a value out of range, naming it (keras.applications' phrasing).
    """

    alpha: float = 1.0
    stem_filters: int = 32
    scale_stem: bool = True
    activation: str = "relu"
    head: str = "mnasnet"
    head_filters: int = 1280
    head_expansion: int = 6
    include_top: bool = True
    pooling: str | None = None
    classes: int | None = 1000
    classifier_activation: str | None = "softmax"
    dropout_rate: float = 0.2
    drop_connect_rate: float = 0.0
    bn_momentum: float = 0.99
    bn_epsilon: float = 1e-3
    include_preprocessing: bool = False
    preprocessing: str = "imagenet_mean_std"
    output_stride: int = 32

    def __post_init__(self):
        _check(self.alpha > 0, f"Expected alpha > 0. Received: alpha={self.alpha}")
        _check(self.activation in ACTIVATIONS,
               f"Expected activation in {ACTIVATIONS}. Received: activation={self.activation!r}")
        _check(self.head in HEADS, f"Expected head in {HEADS}. Received: head={self.head!r}")
        _check(self.pooling in (None, "avg", "max"),
               f"Expected pooling in (None, 'avg', 'max'). Received: pooling={self.pooling!r}")
        _check(self.output_stride in (4, 8, 16, 32),
               f"Expected output_stride in (4, 8, 16, 32). Received: output_stride={self.output_stride}")
        _check(0.0 <= self.dropout_rate < 1.0,
               f"Expected 0 <= dropout_rate < 1. Received: dropout_rate={self.dropout_rate}")
        _check(0.0 <= self.drop_connect_rate < 1.0,
               f"Expected 0 <= drop_connect_rate < 1. Received: drop_connect_rate={self.drop_connect_rate}")
        _check(self.preprocessing in PREPROCESSING,
               f"Expected preprocessing in {PREPROCESSING}. Received: preprocessing={self.preprocessing!r}")
        _check(
            not self.include_top or (isinstance(self.classes, int) and self.classes > 0),
            f"Expected a positive integer number of classes with include_top=True. Received: classes={self.classes!r}",
        )
        for name, kind in _NORMALIZED.items():
            object.__setattr__(self, name, kind(getattr(self, name)))

    def replace(self, **changes) -> "NetworkOptions":
        """A copy with ``changes`` (checked again).

        Raises:
            ValueError: a name that is not an option, or a bad value.
        """
        unknown = sorted(set(changes) - set(OPTION_NAMES))
        _check(not unknown, f"Unknown network option(s) {unknown}. Expected some of {list(OPTION_NAMES)}.")
        return dataclasses.replace(self, **changes)


#: The fields normalized to a Python type (as ``MnasNet.get_config`` writes them).
_NORMALIZED = {"alpha": float, "stem_filters": int, "scale_stem": bool, "head_filters": int, "head_expansion": int,
               "include_top": bool, "dropout_rate": float, "drop_connect_rate": float, "bn_momentum": float,
               "bn_epsilon": float, "include_preprocessing": bool, "output_stride": int}
#: The option names, in declaration order.
OPTION_NAMES = tuple(f.name for f in dataclasses.fields(NetworkOptions))


def option_fields(cls):
    """Class decorator (before ``@dataclasses.dataclass``): gives ``cls`` the
    :class:`NetworkOptions` fields it lists in ``_OPTIONS``, with their types and defaults,
    after its own fields without defaults and before those with defaults.

    Example:
        >>> @dataclasses.dataclass(frozen=True)
        ... @option_fields
        ... class Named:
        ...     _OPTIONS = ("alpha", "dropout_rate")
        ...     name: str
        >>> Named("x")
        Named(name='x', alpha=1.0, dropout_rate=0.2)
    """
    own = dict(cls.__dict__.get("__annotations__", {}))
    declared = {f.name: f for f in dataclasses.fields(NetworkOptions)}
    required = {k: v for k, v in own.items() if k not in cls.__dict__}
    optional = {k: v for k, v in own.items() if k in cls.__dict__}
    options = {}
    for name in cls._OPTIONS:
        options[name] = declared[name].type
        setattr(cls, name, declared[name].default)
    cls.__annotations__ = {**required, **options, **optional}
    return cls
