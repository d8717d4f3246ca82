"""Latency-table parts: what a part key means, which parts a network has, the settings.

A part key names one standalone piece of a network as measured for the latency table
(:mod:`mnas_keras.search.latency.table`): ``stem:{size}x{size}x3>{filters}``,
``block:{size}x{size}:{block string}`` (one block, its stride and input filters explicit)
or ``head:{size}x{size}x{filters}``. No TensorFlow.

Example:
    >>> network_parts(["r1_k3_s11_e1_i8_o8_dsconv"], input_size=32, stem_filters=8)
    ['stem:32x32x3>8', 'block:16x16:r1_k3_s11_e1_i8_o8_dsconv', 'head:16x16x8']
    >>> parse_part("head:16x16x8")["kind"], part_kind("block:16x16:r1_k3_s11_e1_i8_o8_dsconv")
    ('head', 'dsconv')
"""

from __future__ import annotations

import functools
import os
import platform
from typing import Sequence

from mnas_keras.codec import BlockSpec, decode
from mnas_keras.search.errors import SearchError

SCHEMA = "mnas_keras.latency_table/1"

#: Settings that define what a table's numbers mean; a mismatch on load warns.
ENVIRONMENT_KEYS = ("litert_version", "num_threads", "delegate", "machine")
MODEL_KEYS = ("input_size", "objective", "stem_filters", "head_filters", "classes", "activation",
              "include_preprocessing")
DEFAULT_SETTINGS = {
    "input_size": 224,
    "objective": "fp32",
    "stem_filters": 32,
    "head_filters": 1280,
    "classes": 10,
    "activation": "relu",
    "include_preprocessing": True,
    "num_threads": 1,
    "delegate": "xnnpack",
    "runs": 50,
    "warmup": 10,
    "anchor": None,
    "anchor_ms": None,
}


class LatencyTableError(SearchError):
    """A latency table file is missing, corrupt or of another schema, or a part is missing."""


class MissingPartsError(LatencyTableError):
    """The table has no measurement for some parts of a network (``.keys`` lists them)."""

    def __init__(self, keys: Sequence[str]):
        self.keys = list(keys)
        shown = ", ".join(self.keys[:3]) + (f" and {len(self.keys) - 3} more" if len(self.keys) > 3 else "")
        super().__init__(f"the latency table has no measurement for {len(self.keys)} part(s): {shown}; "
                         "measure them with LatencyTable.measure_missing(blocks) or build the table for this space")


class LatencyTableWarning(UserWarning):
    """A latency table is used under settings other than those it was measured under."""


#: What a table can predict: float32 or full-integer int8 LiteRT latency.
OBJECTIVES = ("fp32", "int8")

#: Part kinds with their own fitted scale: the ConvOps, the Universal Inverted Bottleneck's
#: variants (MobileNetV4: ``extradw`` start + middle depthwise, ``convnext`` start depthwise
#: only, ``ffn`` neither, ``uib`` any block with an end depthwise; an MBConv with only the
#: middle depthwise is ``mbconv``, the IB variant), Mobile MQA attention, and ``other``
#: (stem and head).
KINDS = ("conv", "dsconv", "mbconv", "extradw", "convnext", "ffn", "uib", "mqa", "other")

#: The kind whose scale a kind takes when a fit has none for it (a table fitted before the
#: kind existed, or on calibration networks that do not contain it).
KIND_FALLBACK = {"extradw": "mbconv", "convnext": "mbconv", "ffn": "mbconv", "uib": "mbconv", "mqa": "mbconv"}


@functools.lru_cache(maxsize=65536)
def part_kind(key: str) -> str:
    """The fitted-scale kind of a part key (one of :data:`KINDS`): the block's ConvOp, its
    UIB variant, or ``"other"`` (stem, head).

    Example:
        >>> part_kind("block:56x56:r1_k3_s11_e3_i24_o24_conv"), part_kind("head:7x7x320")
        ('conv', 'other')
        >>> [part_kind(f"block:8x8:r1_{b}_s11_e4_i16_o16") for b in ("k3", "k3_a5", "k0_a3", "k0", "k3_p3")]
        ['mbconv', 'extradw', 'convnext', 'ffn', 'uib']
    """
    if not key.startswith("block:"):
        return "other"
    spec = BlockSpec.from_string(key.rsplit(":", 1)[1])
    if spec.op != "mbconv":
        return spec.op
    if spec.end_kernel:
        return "uib"
    if spec.start_kernel:
        return "extradw" if spec.kernel else "convnext"
    return "mbconv" if spec.kernel else "ffn"


# ------------------------------------------------------------------------------ environment
def cpu_model() -> str:
    """The CPU model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description() -> str:
    """``"<system> <arch>, <cpu model>, <n> cores"``: where a table's numbers hold.

    Example:
        >>> "cores" in machine_description()
        True
    """
    return f"{platform.system()} {platform.machine()}, {cpu_model()}, {os.cpu_count()} cores"


def environment(num_threads: int = 1, delegate: str = "xnnpack") -> dict:
    """The runtime settings a table is measured under (LiteRT version, threads, machine)."""
    from mnas_keras.tflite.latency import litert_version

    return {"litert_version": litert_version(), "num_threads": int(num_threads), "delegate": delegate,
            "machine": machine_description()}


# ------------------------------------------------------------------------------------ parts
def _out(size: int, stride: int) -> int:
    return -(-size // stride)  # 'same' padding


def network_parts(blocks: Sequence[str | BlockSpec], input_size: int, stem_filters: int = 32) -> list[str]:
    """The part keys of a network: stem, each single block at its input resolution, head.

    Example:
        >>> network_parts(["r2_k5_s22_e3_i16_o24_se0.25"], 64, stem_filters=16)
        ['stem:64x64x3>16', 'block:32x32:r1_k5_s22_e3_i16_o24_se0.25', 'block:16x16:r1_k5_s11_e3_i24_o24_se0.25', 'head:16x16x24']
    """
    specs = decode(blocks)
    height = width = _out(int(input_size), 2)
    keys = [f"stem:{input_size}x{input_size}x3>{stem_filters}"]
    channels = stem_filters
    for spec in specs:
        for single in spec.expand():
            keys.append(f"block:{height}x{width}:{single.to_string()}")
            height, width = _out(height, single.strides[0]), _out(width, single.strides[1])
            channels = single.output_filters
    keys.append(f"head:{height}x{width}x{channels}")
    return keys


def parse_part(key: str) -> dict:
    """The fields of a part key (``kind`` and shapes; ``spec`` for blocks).

    Example:
        >>> parse_part("block:16x16:r1_k3_s22_e6_i8_o16")["input_shape"]
        (16, 16, 8)
        >>> parse_part("head:7x7x320")
        {'kind': 'head', 'input_shape': (7, 7, 320)}
    """
    try:
        kind, rest = key.split(":", 1)
        if kind == "stem":
            shape, filters = rest.split(">")
            h, w, c = (int(v) for v in shape.split("x"))
            return {"kind": "stem", "input_shape": (h, w, c), "filters": int(filters)}
        if kind == "head":
            h, w, c = (int(v) for v in rest.split("x"))
            return {"kind": "head", "input_shape": (h, w, c)}
        if kind == "block":
            shape, block = rest.split(":", 1)
            h, w = (int(v) for v in shape.split("x"))
            spec = BlockSpec.from_string(block)
            return {"kind": "block", "input_shape": (h, w, spec.input_filters), "spec": spec}
    except (ValueError, TypeError) as err:
        raise LatencyTableError(f"malformed latency table part key {key!r}: {err}") from None
    raise LatencyTableError(f"malformed latency table part key {key!r}: expected stem:, block: or head:")


def space_parts(space, input_size: int) -> list[str]:
    """Every part key the networks of a search space can contain (the table a space needs).

    The space is factorized per stage, so this is the per-stage options times the input
    filters the previous stage can produce, not the number of networks.

    Example:
        >>> from mnas_keras.search.space import mnasnet_space
        >>> len(space_parts(mnasnet_space(), 224))
        3220
    """
    import itertools

    from mnas_keras.search.space import FIELDS

    keys = {f"stem:{input_size}x{input_size}x3>{space.stem_filters}": None}
    size = _out(int(input_size), 2)
    f_ins = {space.stem_filters}
    for stage in space.stages:
        options = stage.options()
        outs = set()
        stride = stage.spec.strides
        for f_in in sorted(f_ins):
            for combo in itertools.product(*(options[f] for f in FIELDS)):
                spec = stage.build(f_in, dict(zip(FIELDS, combo)))
                outs.add(spec.output_filters)
                h = size
                for single in spec.expand():
                    keys.setdefault(f"block:{h}x{h}:{single.to_string()}")
                    h = _out(h, single.strides[0])
        size = _out(size, stride[0])
        f_ins = outs
    for f in sorted(f_ins):
        keys.setdefault(f"head:{size}x{size}x{f}")
    return list(keys)
