"""The architectures of this package as data: block strings plus global parameters.

This table is the one source of truth that the applications, the search's seeds, the
profiler table in the README and the tests all read. No TensorFlow here.

Example:
    >>> arch = get_architecture("mnasnet_a1")
    >>> arch.blocks[2], arch.stem_filters, arch.head
    ('r3_k5_s22_e3_i24_o40_se0.25', 32, 'mnasnet')
"""

from __future__ import annotations

import dataclasses

from mnas_keras.codec.blocks import BlockSpec, decode
from mnas_keras.codec.errors import BlockStringError
from mnas_keras.codec.options import HEADS, PREPROCESSING, option_fields  # noqa: F401 (HEADS: public here too)


@dataclasses.dataclass(frozen=True)
@option_fields
class Architecture:
    """A named network: its block strings and the few scalars around them.

    The scalars other than ``name``, ``blocks`` and ``default_size`` are network options
    declared once in :class:`~mnas_keras.codec.options.NetworkOptions` (same names, types
    and defaults); :meth:`options` turns an architecture into them.

    Attributes:
        name: registry name, e.g. ``"mnasnet_a1"``.
        blocks: the stage block strings, in order.
        stem_filters: filters of the 3x3 stride-2 stem conv.
        scale_stem: whether the width multiplier scales the stem (MnasNet yes, MobileNetV3 no).
        activation: the model's activation (stem, head, blocks that name none).
        head: ``"mnasnet"`` (1x1 conv to ``head_filters``, BN, act, pool, dropout, dense) or
            ``"mobilenetv3"`` (1x1 conv to ``head_expansion`` x last filters, BN, act, pool,
            1x1 conv to ``head_filters`` with bias and act, dropout, 1x1 conv classifier) or
            ``"mobilenetv4"`` (pool, 1x1 conv to ``head_filters`` without bias, BN, act,
            dropout, dense; the 960-filter 1x1 conv before the pool is the last block).
        head_filters: 1280 for MnasNet (never scaled); MobileNetV3's last point width
            (scaled only when alpha > 1).
        head_expansion: MobileNetV3's pre-pool width as a multiple of the last stage's.
        dropout_rate: dropout before the classifier.
        bn_momentum, bn_epsilon: batch-norm settings.
        default_size: the published input resolution.
        preprocessing: what ``include_preprocessing`` adds in front of the model.
    """

    #: The :class:`~mnas_keras.codec.options.NetworkOptions` an architecture records (their
    #: types and defaults come from there; ``option_fields`` adds them after ``blocks``).
    _OPTIONS = ("stem_filters", "scale_stem", "activation", "head", "head_filters", "head_expansion",
                "dropout_rate", "bn_momentum", "bn_epsilon", "preprocessing")

    name: str
    blocks: tuple
    default_size: int = 224

    def __post_init__(self):
        object.__setattr__(self, "blocks", tuple(str(b) for b in self.blocks))
        decode(self.blocks)  # validates
        if self.head not in HEADS:
            raise BlockStringError(f"head must be one of {HEADS}; received {self.head!r}")
        if self.preprocessing not in PREPROCESSING:
            raise BlockStringError(
                f"preprocessing must be one of {PREPROCESSING}; received {self.preprocessing!r}"
            )

    @property
    def specs(self) -> list[BlockSpec]:
        return decode(self.blocks)

    def replace(self, **changes) -> "Architecture":
        return dataclasses.replace(self, **changes)

    def options(self, **changes):
        """The :class:`~mnas_keras.codec.options.NetworkOptions` this architecture records
        (the others at their defaults), with ``changes``.

        Example:
            >>> get_architecture("mobilenet_v3_small").options(classes=10).head
            'mobilenetv3'
        """
        from mnas_keras.codec.options import NetworkOptions

        return NetworkOptions(**{name: getattr(self, name) for name in self._OPTIONS}).replace(**changes)


def minimalistic(blocks) -> tuple:
    """MobileNetV3's minimalistic variant: kernels 3, no SE, ReLU everywhere.

    Example:
        >>> minimalistic(["r3_k5_s22_e3_i24_o40_se0.25_hswish_hsig_sexp"])
        ('r3_k3_s22_e3_i24_o40_relu',)
    """
    out = []
    for spec in decode(blocks):
        spec = spec.replace(
            kernel=3, se_ratio=None, se_gate="sigmoid", se_base="input", activation="relu"
        )
        out.append(spec.to_string())
    return tuple(out)


def reduced_tail(blocks, divisor: int = 2) -> tuple:
    """Halves the network's tail for dense prediction (MobileNetV3 paper, sections 6.3-6.4).

    The last stride-2 stage keeps its input width but its output filters are divided by
    ``divisor``; every later stage has its input and output filters divided too. Expansion
    ratios are kept, so the expanded widths shrink by the same factor (MobileNetV3-Large:
    the last three blocks go from 160 to 80 filters and from 960 to 480 expanded, as
    torchvision's ``reduced_tail=True``). A MobileNetV3 head follows (6 x 80 = 480).

    Raises:
        BlockStringError: no stride-2 stage, or a width not divisible by ``divisor``.

    Example:
        >>> reduced_tail(["r2_k3_s22_e6_i16_o24", "r3_k5_s22_e6_i112_o160_se0.25", "r1_k3_s11_e6_i160_o320"])
        ('r2_k3_s22_e6_i16_o24', 'r3_k5_s22_e6_i112_o80_se0.25', 'r1_k3_s11_e6_i80_o160')
    """
    specs = decode(blocks)
    strided = [i for i, spec in enumerate(specs) if max(spec.strides) > 1]
    if not strided:
        raise BlockStringError("reduced_tail needs a stride-2 stage; the blocks have none")
    if int(divisor) < 1:
        raise BlockStringError(f"reduced_tail divisor must be >= 1; received {divisor!r}")
    last = strided[-1]

    def cut(filters: int, where: str) -> int:
        if filters % divisor:
            raise BlockStringError(
                f"reduced_tail: {where} filters {filters} are not divisible by {divisor}"
            )
        return filters // divisor

    out = [spec.to_string() for spec in specs[:last]]
    for i, spec in enumerate(specs[last:], start=last):
        changes = {"output_filters": cut(spec.output_filters, spec.to_string())}
        if i > last:
            changes["input_filters"] = cut(spec.input_filters, spec.to_string())
        out.append(spec.replace(**changes).to_string())
    return tuple(out)


_MNASNET = dict(stem_filters=32, activation="relu", head="mnasnet", head_filters=1280)
_V3SE = "se0.25_{act}_hsig_sexp"
_MOBILENET_V4 = dict(
    stem_filters=32, activation="relu", head="mobilenetv4", head_filters=1280,
    bn_momentum=0.9, bn_epsilon=1e-5,
)

ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in [
        Architecture(
            "mnasnet_b1",
            (
                "r1_k3_s11_e1_i32_o16_noskip",
                "r3_k3_s22_e3_i16_o24",
                "r3_k5_s22_e3_i24_o40",
                "r3_k5_s22_e6_i40_o80",
                "r2_k3_s11_e6_i80_o96",
                "r4_k5_s22_e6_i96_o192",
                "r1_k3_s11_e6_i192_o320_noskip",
            ),
            **_MNASNET,
        ),
        Architecture(
            "mnasnet_a1",
            (
                "r1_k3_s11_e1_i32_o16_noskip",
                "r2_k3_s22_e6_i16_o24",
                "r3_k5_s22_e3_i24_o40_se0.25",
                "r4_k3_s22_e6_i40_o80",
                "r2_k3_s11_e6_i80_o112_se0.25",
                "r3_k5_s22_e6_i112_o160_se0.25",
                "r1_k3_s11_e6_i160_o320",
            ),
            **_MNASNET,
        ),
        Architecture(
            "mnasnet_small",
            (
                "r1_k3_s11_e1_i16_o8",
                "r1_k3_s22_e3_i8_o16",
                "r2_k3_s22_e6_i16_o16",
                "r4_k5_s22_e6_i16_o32_se0.25",
                "r3_k3_s11_e6_i32_o32_se0.25",
                "r3_k5_s22_e6_i32_o88_se0.25",
                "r1_k3_s11_e6_i88_o144",
            ),
            **{**_MNASNET, "stem_filters": 8},
            dropout_rate=0.0,
        ),
        Architecture(
            "mnasnet_d1",
            (
                "r1_k3_s11_e9_i32_o24",
                "r3_k3_s22_e9_i24_o36",
                "r5_k3_s22_e9_i36_o48",
                "r4_k5_s22_e9_i48_o96",
                "r5_k7_s11_e3_i96_o96",
                "r3_k3_s22_e9_i96_o80",
                "r1_k7_s11_e6_i80_o320_noskip",
            ),
            **_MNASNET,
        ),
        Architecture(
            "mnasnet_d1_320",
            (
                "r3_k5_s11_e6_i32_o24",
                "r4_k7_s22_e9_i24_o36",
                "r5_k5_s22_e9_i36_o48",
                "r5_k7_s22_e6_i48_o96",
                "r5_k3_s11_e9_i96_o144",
                "r5_k5_s22_e6_i144_o160",
                "r1_k7_s11_e9_i160_o320",
            ),
            **_MNASNET,
            default_size=320,
        ),
        Architecture(
            "mobilenet_v3_large",
            (
                "r1_k3_s11_e1_i16_o16_relu",
                "r1_k3_s22_e4_i16_o24_relu",
                "r1_k3_s11_e3_i24_o24_relu",
                "r3_k5_s22_e3_i24_o40_" + _V3SE.format(act="relu"),
                "r1_k3_s22_e6_i40_o80_hswish",
                "r1_k3_s11_e2.5_i80_o80_hswish",
                "r2_k3_s11_e2.3_i80_o80_hswish",
                "r2_k3_s11_e6_i80_o112_" + _V3SE.format(act="hswish"),
                "r3_k5_s22_e6_i112_o160_" + _V3SE.format(act="hswish"),
            ),
            stem_filters=16,
            scale_stem=False,
            activation="hswish",
            head="mobilenetv3",
            head_filters=1280,
            bn_momentum=0.999,
            preprocessing="scale_-1_1",
        ),
        Architecture(
            "mobilenet_v3_small",
            (
                "r1_k3_s22_e1_i16_o16_" + _V3SE.format(act="relu"),
                "r1_k3_s22_e4.5_i16_o24_relu",
                "r1_k3_s11_e11/3_i24_o24_relu",
                "r1_k5_s22_e4_i24_o40_" + _V3SE.format(act="hswish"),
                "r2_k5_s11_e6_i40_o40_" + _V3SE.format(act="hswish"),
                "r2_k5_s11_e3_i40_o48_" + _V3SE.format(act="hswish"),
                "r3_k5_s22_e6_i48_o96_" + _V3SE.format(act="hswish"),
            ),
            stem_filters=16,
            scale_stem=False,
            activation="hswish",
            head="mobilenetv3",
            head_filters=1024,
            bn_momentum=0.999,
            preprocessing="scale_-1_1",
        ),
        # MobileNetV4 Conv models (arXiv 2404.10518), transcribed from timm's
        # ``_gen_mobilenet_v4`` (timm/models/mobilenetv3.py): timm 'cn' -> 'conv' e1 (no
        # shortcut), 'er' -> 'conv' e>1 (FusedIB), 'uir_aX_kY' -> MBConv with 'aX' and 'kY';
        # the last 960-filter 1x1 conv is timm's 'cn_r1_k1_s1_c960' stage. BN as PyTorch's.
        Architecture(
            "mobilenet_v4_conv_small",
            (
                "r1_k3_s22_e1_i32_o32_conv",
                "r1_k1_s11_e1_i32_o32_conv_noskip",
                "r1_k3_s22_e1_i32_o96_conv",
                "r1_k1_s11_e1_i96_o64_conv",
                "r1_k5_s22_e3_i64_o96_a5",
                "r4_k3_s11_e2_i96_o96",
                "r1_k0_s11_e4_i96_o96_a3",
                "r1_k3_s22_e6_i96_o128_a3",
                "r1_k5_s11_e4_i128_o128_a5",
                "r1_k5_s11_e4_i128_o128",
                "r1_k5_s11_e3_i128_o128",
                "r2_k3_s11_e4_i128_o128",
                "r1_k1_s11_e1_i128_o960_conv",
            ),
            **_MOBILENET_V4,
            default_size=224,
        ),
        Architecture(
            "mobilenet_v4_conv_medium",
            (
                "r1_k3_s22_e4_i32_o48_conv",
                "r1_k5_s22_e4_i48_o80_a3",
                "r1_k3_s11_e2_i80_o80_a3",
                "r1_k5_s22_e6_i80_o160_a3",
                "r2_k3_s11_e4_i160_o160_a3",
                "r1_k5_s11_e4_i160_o160_a3",
                "r1_k3_s11_e4_i160_o160_a3",
                "r1_k0_s11_e4_i160_o160_a3",
                "r1_k0_s11_e2_i160_o160",
                "r1_k0_s11_e4_i160_o160_a3",
                "r1_k5_s22_e6_i160_o256_a5",
                "r1_k5_s11_e4_i256_o256_a5",
                "r2_k5_s11_e4_i256_o256_a3",
                "r1_k0_s11_e4_i256_o256",
                "r1_k0_s11_e4_i256_o256_a3",
                "r1_k5_s11_e2_i256_o256_a3",
                "r1_k5_s11_e4_i256_o256_a5",
                "r2_k0_s11_e4_i256_o256",
                "r1_k0_s11_e2_i256_o256_a5",
                "r1_k1_s11_e1_i256_o960_conv",
            ),
            **_MOBILENET_V4,
            default_size=256,
        ),
        Architecture(
            "mobilenet_v4_conv_large",
            (
                "r1_k3_s22_e4_i24_o48_conv",
                "r1_k5_s22_e4_i48_o96_a3",
                "r1_k3_s11_e4_i96_o96_a3",
                "r1_k5_s22_e4_i96_o192_a3",
                "r3_k3_s11_e4_i192_o192_a3",
                "r1_k5_s11_e4_i192_o192_a3",
                "r5_k3_s11_e4_i192_o192_a5",
                "r1_k0_s11_e4_i192_o192_a3",
                "r4_k5_s22_e4_i192_o512_a5",
                "r1_k0_s11_e4_i512_o512_a5",
                "r1_k3_s11_e4_i512_o512_a5",
                "r2_k0_s11_e4_i512_o512_a5",
                "r1_k3_s11_e4_i512_o512_a5",
                "r1_k5_s11_e4_i512_o512_a5",
                "r3_k0_s11_e4_i512_o512_a5",
                "r1_k1_s11_e1_i512_o960_conv",
            ),
            **dict(_MOBILENET_V4, stem_filters=24),
            default_size=384,
        ),
        # MobileNetV4 Hybrid models: timm's ``_gen_mobilenet_v4`` 'hybrid' definitions
        # ('mqa_r1_kK_hH_s1_vV_dD_cC' -> 'mqa' with 'hH_dD_vV'); every UIB and MQA block has
        # layer scale ('ls'), the FusedIB and the 960 conv do not (timm's EfficientNetBuilder).
        Architecture(
            "mobilenet_v4_hybrid_medium",
            (
                "r1_k3_s22_e4_i32_o48_conv",
                "r1_k5_s22_e4_i48_o80_a3_ls",
                "r1_k3_s11_e2_i80_o80_a3_ls",
                "r1_k5_s22_e6_i80_o160_a3_ls",
                "r1_k0_s11_e2_i160_o160_ls",
                "r1_k3_s11_e4_i160_o160_a3_ls",
                "r1_k5_s11_e4_i160_o160_a3_ls",
                "r1_k3_s11_e1_i160_o160_mqa_h4_d64_v2_ls",
                "r1_k3_s11_e4_i160_o160_a3_ls",
                "r1_k3_s11_e1_i160_o160_mqa_h4_d64_v2_ls",
                "r1_k0_s11_e4_i160_o160_a3_ls",
                "r1_k3_s11_e1_i160_o160_mqa_h4_d64_v2_ls",
                "r1_k3_s11_e4_i160_o160_a3_ls",
                "r1_k3_s11_e1_i160_o160_mqa_h4_d64_v2_ls",
                "r1_k0_s11_e4_i160_o160_a3_ls",
                "r1_k5_s22_e6_i160_o256_a5_ls",
                "r1_k5_s11_e4_i256_o256_a5_ls",
                "r2_k5_s11_e4_i256_o256_a3_ls",
                "r1_k0_s11_e2_i256_o256_ls",
                "r1_k5_s11_e2_i256_o256_a3_ls",
                "r1_k0_s11_e2_i256_o256_ls",
                "r1_k0_s11_e4_i256_o256_ls",
                "r1_k3_s11_e1_i256_o256_mqa_h4_d64_ls",
                "r1_k0_s11_e4_i256_o256_a3_ls",
                "r1_k3_s11_e1_i256_o256_mqa_h4_d64_ls",
                "r1_k5_s11_e4_i256_o256_a5_ls",
                "r1_k3_s11_e1_i256_o256_mqa_h4_d64_ls",
                "r1_k0_s11_e4_i256_o256_a5_ls",
                "r1_k3_s11_e1_i256_o256_mqa_h4_d64_ls",
                "r1_k0_s11_e4_i256_o256_a5_ls",
                "r1_k1_s11_e1_i256_o960_conv",
            ),
            **dict(_MOBILENET_V4),
            default_size=256,
        ),
        Architecture(
            "mobilenet_v4_hybrid_large",
            (
                "r1_k3_s22_e4_i24_o48_conv",
                "r1_k5_s22_e4_i48_o96_a3_ls",
                "r1_k3_s11_e4_i96_o96_a3_ls",
                "r1_k5_s22_e4_i96_o192_a3_ls",
                "r3_k3_s11_e4_i192_o192_a3_ls",
                "r1_k5_s11_e4_i192_o192_a3_ls",
                "r2_k3_s11_e4_i192_o192_a5_ls",
                "r1_k3_s11_e1_i192_o192_mqa_h8_d48_v2_ls",
                "r1_k3_s11_e4_i192_o192_a5_ls",
                "r1_k3_s11_e1_i192_o192_mqa_h8_d48_v2_ls",
                "r1_k3_s11_e4_i192_o192_a5_ls",
                "r1_k3_s11_e1_i192_o192_mqa_h8_d48_v2_ls",
                "r1_k3_s11_e4_i192_o192_a5_ls",
                "r1_k3_s11_e1_i192_o192_mqa_h8_d48_v2_ls",
                "r1_k0_s11_e4_i192_o192_a3_ls",
                "r4_k5_s22_e4_i192_o512_a5_ls",
                "r1_k0_s11_e4_i512_o512_a5_ls",
                "r1_k3_s11_e4_i512_o512_a5_ls",
                "r2_k0_s11_e4_i512_o512_a5_ls",
                "r1_k3_s11_e4_i512_o512_a5_ls",
                "r1_k5_s11_e4_i512_o512_a5_ls",
                "r1_k3_s11_e1_i512_o512_mqa_h8_d64_ls",
                "r1_k0_s11_e4_i512_o512_a5_ls",
                "r1_k3_s11_e1_i512_o512_mqa_h8_d64_ls",
                "r1_k0_s11_e4_i512_o512_a5_ls",
                "r1_k3_s11_e1_i512_o512_mqa_h8_d64_ls",
                "r1_k0_s11_e4_i512_o512_a5_ls",
                "r1_k3_s11_e1_i512_o512_mqa_h8_d64_ls",
                "r1_k0_s11_e4_i512_o512_a5_ls",
                "r1_k1_s11_e1_i512_o960_conv",
            ),
            **dict(_MOBILENET_V4, stem_filters=24, activation="gelu"),
            default_size=384,
        ),
    ]
}


def get_architecture(name: str) -> Architecture:
    """Looks up an architecture by registry name; raises ``BlockStringError`` if unknown."""
    key = name.lower().replace("-", "_")
    if key not in ARCHITECTURES:
        raise BlockStringError(
            f"unknown architecture {name!r}; expected one of {sorted(ARCHITECTURES)}"
        )
    return ARCHITECTURES[key]
