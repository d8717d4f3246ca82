"""The NAS-RL macro grammar: ``MacroLayer``, ``MacroSpec`` and their strings (no TensorFlow).

NAS-RL (Zoph & Le, ICLR 2017, arXiv 1611.01578, section 3) emits a plain convolutional network
layer by layer: each layer's filter height and width, stride and number of filters, and, at
its anchor point, which earlier layers feed it (skip connections). A layer with several inputs
concatenates them along channels, zero-padding the smaller ones (bottom and right) to the
largest size; a layer with none reads the image; the classifier reads every layer output that
no later layer consumed, concatenated the same way (section 3.3).

A macro string is the layers joined by ``,``; a layer is ``_``-joined tokens:

========= ======================================================= ====================
token      meaning                                                  when absent
========= ======================================================= ====================
``k3x5``   filter height x width (> 0)                              required
``s12``    strides, height then width, each 1..3 (``s2`` = ``s22``)  ``s11``
``f36``    number of filters (> 0)                                  required
``in1.3``  anchors: the 1-based earlier layers that feed this one   the image
========= ======================================================= ====================

Canonical strings write ``k``, ``s`` (omitted when ``s11``), ``f`` and ``in`` in that order,
anchors increasing. The paper's CIFAR-10 value sets are ``NASRL_KERNELS`` (heights and widths),
``NASRL_FILTERS`` and ``NASRL_STRIDES`` (section 4.1); the grammar itself accepts any positive
kernel and filter count.

Example:
    >>> net = MacroSpec.from_string("k3x3_f24,k5x1_s2_f36_in1,k1x7_f48_in1.2")
    >>> net.layers[1]
    MacroLayer(kernel=(5, 1), strides=(2, 2), filters=36, anchors=(1,))
    >>> net.to_string(), net.output_layers
    ('k3x3_f24,k5x1_s22_f36_in1,k1x7_f48_in1.2', (3,))
    >>> MacroSpec.from_string("k3x3_f24,k3x3_f24_in2")
    Traceback (most recent call last):
    ...
    mnas_keras.codec.errors.MacroStringError: layer 2 'k3x3_f24_in2': anchor 2 is not an earlier layer; expected 1..1
"""

from __future__ import annotations

import dataclasses
import re

from mnas_keras.codec.errors import MacroStringError

#: NAS-RL's CIFAR-10 choices (section 4.1): filter heights and widths, filters, strides.
NASRL_KERNELS = (1, 3, 5, 7)
NASRL_FILTERS = (24, 36, 48, 64)
NASRL_STRIDES = (1, 2, 3)

_KERNEL = re.compile(r"^k([0-9]+)x([0-9]+)$")
_STRIDE = re.compile(r"^s([1-3])([1-3])?$")
_FILTERS = re.compile(r"^f([0-9]+)$")
_ANCHORS = re.compile(r"^in([0-9]+(\.[0-9]+)*)$")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class MacroLayer:
    """One conv layer (conv, BN, ReLU) of a NAS-RL network.

    Attributes:
        kernel: ``(height, width)``, positive.
        strides: ``(height, width)``, each 1, 2 or 3.
        filters: output channels, positive.
        anchors: 1-based indices of the earlier layers it reads (increasing); ``()`` = the image.
    """

    kernel: tuple
    strides: tuple = (1, 1)
    filters: int = 24
    anchors: tuple = ()

    def __post_init__(self):
        for field in ("kernel", "strides", "anchors"):
            object.__setattr__(self, field, tuple(getattr(self, field)))
        if len(self.kernel) != 2 or not all(_is_int(k) and k > 0 for k in self.kernel):
            raise MacroStringError(f"kernel must be two positive ints; received {self.kernel!r}")
        if len(self.strides) != 2 or not all(_is_int(s) and 1 <= s <= 3 for s in self.strides):
            raise MacroStringError(f"strides must be two ints in 1..3; received {self.strides!r}")
        if not _is_int(self.filters) or self.filters <= 0:
            raise MacroStringError(f"filters must be a positive int; received {self.filters!r}")
        if not all(_is_int(a) and a > 0 for a in self.anchors):
            raise MacroStringError(f"anchors must be positive layer numbers; received {self.anchors!r}")
        if list(self.anchors) != sorted(set(self.anchors)):
            raise MacroStringError(f"anchors {self.anchors} must increase, each at most once")

    def to_string(self) -> str:
        tokens = [f"k{self.kernel[0]}x{self.kernel[1]}"]
        if self.strides != (1, 1):
            tokens.append(f"s{self.strides[0]}{self.strides[1]}")
        tokens.append(f"f{self.filters}")
        if self.anchors:
            tokens.append("in" + ".".join(str(a) for a in self.anchors))
        return "_".join(tokens)


@dataclasses.dataclass(frozen=True)
class MacroSpec:
    """A NAS-RL network: its layers in order.

    Raises:
        MacroStringError: no layers, or an anchor that is not an earlier layer.
    """

    layers: tuple

    def __post_init__(self):
        layers = tuple(self.layers)
        object.__setattr__(self, "layers", layers)
        if not layers:
            raise MacroStringError("a macro network needs at least one layer; received none")
        for i, layer in enumerate(layers, start=1):
            if not isinstance(layer, MacroLayer):
                raise MacroStringError(f"layer {i} must be a MacroLayer; received {type(layer).__name__}")
            for a in layer.anchors:
                if a >= i:
                    expected = f"1..{i - 1}" if i > 1 else "none (layer 1 reads the image)"
                    raise MacroStringError(
                        f"layer {i} {layer.to_string()!r}: anchor {a} is not an earlier layer; expected {expected}"
                    )

    @property
    def output_layers(self) -> tuple:
        """1-based layers that no later layer reads; the classifier concatenates them."""
        used = {a for layer in self.layers for a in layer.anchors}
        return tuple(i for i in range(1, len(self.layers) + 1) if i not in used)

    @classmethod
    def from_string(cls, text: str) -> "MacroSpec":
        """Decodes a macro string (see the module docstring)."""
        if not isinstance(text, str):
            raise MacroStringError(f"a macro string must be a str; received {type(text).__name__}")
        return cls(tuple(_parse_layer(token, i) for i, token in enumerate(text.split(","), start=1)))

    def to_string(self) -> str:
        """The canonical macro string; ``MacroSpec.from_string(s.to_string()) == s``."""
        return ",".join(layer.to_string() for layer in self.layers)

    def __str__(self) -> str:
        return self.to_string()


def _parse_layer(token: str, number: int) -> MacroLayer:
    fields = {}
    for part in token.split("_"):
        for key, pattern in (("kernel", _KERNEL), ("strides", _STRIDE), ("filters", _FILTERS),
                             ("anchors", _ANCHORS)):
            match = pattern.match(part)
            if match:
                break
        else:
            raise MacroStringError(
                f"layer {number} {token!r}: bad token {part!r}; expected kHxW, sHW (1..3), fN or inI.J"
            )
        if key in fields:
            raise MacroStringError(f"layer {number} {token!r}: token {part!r} repeats a {key} token")
        if key == "kernel":
            fields[key] = (int(match.group(1)), int(match.group(2)))
        elif key == "strides":
            first = int(match.group(1))
            fields[key] = (first, int(match.group(2)) if match.group(2) else first)
        elif key == "filters":
            fields[key] = int(match.group(1))
        else:
            fields[key] = tuple(int(a) for a in match.group(1).split("."))
    for key, letter in (("kernel", "kHxW"), ("filters", "fN")):
        if key not in fields:
            raise MacroStringError(f"layer {number} {token!r}: missing the {key} token ({letter})")
    try:
        return MacroLayer(**fields)
    except MacroStringError as err:
        raise MacroStringError(f"layer {number} {token!r}: {err}") from None


def decode_macro(text: str) -> MacroSpec:
    """``MacroSpec.from_string``; raises ``MacroStringError`` naming the bad token."""
    return MacroSpec.from_string(text)


def encode_macro(spec: MacroSpec) -> str:
    """``spec.to_string()``, the canonical macro string."""
    return spec.to_string()
