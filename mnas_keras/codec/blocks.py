"""The block-string grammar: ``BlockSpec``, ``decode`` and ``encode`` (no TensorFlow).

A block string describes one stage, a block repeated ``r`` times, as ``_``-joined tokens.
The core keys are those of tensorflow/tpu's MnasNet and EfficientNet decoders; the flags
after them extend the grammar to MobileNetV3 and the whole MnasNet search space.

=========== ============================================ ==========================
token        meaning                                       default when absent
=========== ============================================ ==========================
``r3``       repeats of the block in the stage (> 0)       required
``k5``       depthwise (or conv) kernel size (> 0)         required
``s22``      strides, height then width (``s2`` = ``s22``)  required
``e6``       expansion: ``e6``, ``e2.5`` or ``e72/16``      required
``i24``      input filters of the stage (> 0)              required
``o40``      output filters (> 0)                          required
``se0.25``   squeeze-excite ratio in (0, 1]; ``se0`` = off  no SE
``conv``     ConvOp: regular (or fused, if e > 1) conv      MBConv
``dsconv``   ConvOp: depthwise-separable conv (needs e1)    MBConv
``noskip``   SkipOp: no shortcut                            identity
``poolskip`` SkipOp: pooling (+ 1x1 projection) shortcut    identity
``relu``     block activation: relu, relu6, hswish, swish   the model's activation
``hsig``     SE gate is hard-sigmoid (needs se)             sigmoid
``sexp``     SE width from expanded filters, rounded to 8   from input filters
``a3``       UIB start depthwise kernel (before expansion)  ``a0``: none
``p3``       UIB end depthwise kernel (after projection)    ``p0``: none
``k0``       UIB: no middle depthwise (see below)           (``k`` is required)
``mqa``      ConvOp: Mobile MQA attention block (below)     MBConv
``h4``       MQA: query heads (> 0)                         required by ``mqa``
``d64``      MQA: key = value dimension (> 0)               required by ``mqa``
``v2``       MQA: K/V downsampling stride (> 0)             ``v1``: none
``ls``       layer scale (learned per-channel, init 1e-5)   none
``gelu``     block activation GELU (exact, erf)             the model's activation
=========== ============================================ ==========================

The Universal Inverted Bottleneck (MobileNetV4, arXiv 2404.10518) is an MBConv block with
optional start and end depthwise convs (no activation after either): ExtraDW
``r1_k5_s22_e4_i48_o80_a3``, IB ``r1_k3_s11_e2_i96_o96``, ConvNeXt-like
``r1_k0_s11_e4_i96_o96_a3``, FFN ``r1_k0_s11_e2_i160_o160``. ``k0`` (no middle depthwise)
is allowed only in an MBConv block that still has a depthwise conv (``a`` or ``p``) or an
expansion (``e`` != 1), and a strided block needs a depthwise conv to take the stride.
Canonical encoding omits ``a0``/``p0``, so strings without them read as before.

Mobile MQA (MobileNetV4 Hybrid models) is its own block kind, the ``mqa`` ConvOp:
``r1_k3_s11_e1_i160_o160_mqa_h4_d64_v2_ls`` is BN (no activation) -> query 1x1 conv to
``h * d``; key and value each: (``v > 1``: ``k x k`` depthwise with stride ``v`` + BN) ->
1x1 conv to ``d`` (one K/V head shared by all query heads) -> softmax(q k^T / sqrt(d)) v ->
1x1 conv to ``o``; layer scale and a residual when ``i == o``. An ``mqa`` block has ``e1``,
``s11`` (no query stride), ``k > 0`` (the K/V downsampling kernel, unused when ``v1``), no
SE, no ``a``/``p``, no activation flag and no ``poolskip``; ``h``/``d``/``v`` belong to it
alone. ``ls`` (timm's ``layer_scale_init_value``, 1e-5 in MobileNetV4) multiplies the block
output by a learned per-channel vector before the residual add; it applies to MBConv and
``mqa`` blocks. Canonical encoding writes ``mqa`` as the op flag, ``h``/``d``/``v`` after
``a``/``p`` (``v1`` omitted) and ``ls`` last; strings without the new tokens encode exactly
as before.
Not in the grammar: the layer-scale init value (fixed at MobileNetV4's 1e-5) and the query
stride of timm's ``MultiQueryAttention2d`` (no MobileNetV4 model uses it).

Example:
    >>> spec = BlockSpec.from_string("r1_k3_s11_e1_i32_o16_se0.25")
    >>> spec.repeats, spec.strides, spec.se_ratio
    (1, (1, 1), 0.25)
    >>> spec.to_string()
    'r1_k3_s11_e1_i32_o16_se0.25'
    >>> encode(decode(["r2_k3_s2_e72/16_i16_o24_hswish"]))
    ['r2_k3_s22_e4.5_i16_o24_hswish']
    >>> uib = BlockSpec.from_string("r1_k0_s11_e4_i96_o96_p0_a3")  # ConvNeXt-like UIB
    >>> uib.start_kernel, uib.kernel, uib.end_kernel, uib.to_string()
    (3, 0, 0, 'r1_k0_s11_e4_i96_o96_a3')
    >>> mqa = BlockSpec.from_string("r1_k3_s1_e1_i160_o160_ls_v2_d64_h4_mqa")
    >>> mqa.op, mqa.heads, mqa.key_dim, mqa.kv_stride, mqa.layer_scale, mqa.to_string()
    ('mqa', 4, 64, 2, True, 'r1_k3_s11_e1_i160_o160_mqa_h4_d64_v2_ls')
"""

from __future__ import annotations

import dataclasses
import decimal
import re
from fractions import Fraction
from typing import Iterable, Sequence

from mnas_keras.codec.errors import BlockStringError

CONV_OPS = ("mbconv", "conv", "dsconv", "mqa")
SKIP_OPS = ("identity", "pool", "none")
ACTIVATIONS = ("relu", "relu6", "hswish", "swish", "gelu")
SE_GATES = ("sigmoid", "hsig")
SE_BASES = ("input", "expanded")

_VALUED_KEYS = ("r", "k", "s", "e", "i", "o", "se", "a", "p", "h", "d", "v")
_REQUIRED_KEYS = ("r", "k", "s", "e", "i", "o")
_FLAG_GROUPS = {
    # flag -> (field, value)
    "mbconv": ("op", "mbconv"),
    "conv": ("op", "conv"),
    "dsconv": ("op", "dsconv"),
    "mqa": ("op", "mqa"),
    "noskip": ("skip", "none"),
    "poolskip": ("skip", "pool"),
    "relu": ("activation", "relu"),
    "relu6": ("activation", "relu6"),
    "hswish": ("activation", "hswish"),
    "swish": ("activation", "swish"),
    "gelu": ("activation", "gelu"),
    "hsig": ("se_gate", "hsig"),
    "sexp": ("se_base", "expanded"),
    "ls": ("layer_scale", True),
}
_FLAG_FOR = {
    "op": {"conv": "conv", "dsconv": "dsconv", "mqa": "mqa"},
    "skip": {"none": "noskip", "pool": "poolskip"},
    "activation": {a: a for a in ACTIVATIONS},
    "se_gate": {"hsig": "hsig"},
    "se_base": {"expanded": "sexp"},
}
_TOKEN = re.compile(r"^([A-Za-z]+)(.*)$")
_INT = re.compile(r"^[0-9]+$")
_DECIMAL = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_RATIO = re.compile(r"^([0-9]+)/([0-9]+)$")


def _fraction_to_str(value: Fraction) -> str:
    """Exact, shortest text for a positive fraction: ``6``, ``2.5`` or ``11/3``."""
    if value.denominator == 1:
        return str(value.numerator)
    den = value.denominator
    while den % 2 == 0:
        den //= 2
    while den % 5 == 0:
        den //= 5
    if den != 1:
        return f"{value.numerator}/{value.denominator}"
    with decimal.localcontext() as ctx:
        ctx.prec = 60
        text = format(decimal.Decimal(value.numerator) / decimal.Decimal(value.denominator), "f")
    return text.rstrip("0").rstrip(".")


def _float_to_str(value: float) -> str:
    """Shortest plain-decimal text that parses back to exactly ``value``."""
    text = format(decimal.Decimal(repr(float(value))), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _as_expansion(value) -> Fraction:
    if isinstance(value, bool):
        raise BlockStringError(f"expansion must be a positive number; received {value!r}")
    if isinstance(value, Fraction):
        return value
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(repr(value))
    if isinstance(value, str):
        return _parse_expansion(value, token=f"e{value}")
    raise BlockStringError(
        f"expansion must be an int, float, Fraction or string; received {type(value).__name__}"
    )


def _parse_expansion(text: str, token: str) -> Fraction:
    ratio = _RATIO.match(text)
    if ratio:
        num, den = int(ratio.group(1)), int(ratio.group(2))
        if den == 0:
            raise BlockStringError(f"token '{token}': expansion ratio has a zero denominator")
        return Fraction(num, den)
    if _DECIMAL.match(text):
        return Fraction(text)
    raise BlockStringError(
        f"token '{token}': expected an expansion like e6, e2.5 or e72/16, got {text!r}"
    )


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """One stage of a network: a block repeated ``repeats`` times.

    Fields are validated on construction; a bad value raises ``BlockStringError``.
    ``start_kernel`` / ``end_kernel`` (tokens ``a`` / ``p``, 0 = none) and ``kernel == 0``
    describe a MobileNetV4 Universal Inverted Bottleneck (MBConv blocks only).
    ``expansion`` is stored exactly (a ``Fraction``); ints, floats and strings are accepted.

    Example:
        >>> BlockSpec(repeats=2, kernel=3, strides=(2, 2), expansion=6,
        ...           input_filters=16, output_filters=24).to_string()
        'r2_k3_s22_e6_i16_o24'
    """

    repeats: int
    kernel: int
    strides: tuple
    expansion: Fraction
    input_filters: int
    output_filters: int
    se_ratio: float | None = None
    op: str = "mbconv"
    skip: str = "identity"
    activation: str | None = None
    se_gate: str = "sigmoid"
    se_base: str = "input"
    start_kernel: int = 0
    end_kernel: int = 0
    heads: int = 0
    key_dim: int = 0
    kv_stride: int = 1
    layer_scale: bool = False

    def __post_init__(self):
        for name in ("repeats", "input_filters", "output_filters"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise BlockStringError(f"{name} must be a positive integer; received {value!r}")
        for name in ("heads", "key_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise BlockStringError(f"{name} must be a non-negative integer; received {value!r}")
        if isinstance(self.kv_stride, bool) or not isinstance(self.kv_stride, int) or self.kv_stride < 1:
            raise BlockStringError(f"kv_stride must be a positive integer; received {self.kv_stride!r}")
        if not isinstance(self.layer_scale, bool):
            raise BlockStringError(f"layer_scale must be True or False; received {self.layer_scale!r}")
        for name in ("kernel", "start_kernel", "end_kernel"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise BlockStringError(f"{name} must be a non-negative integer; received {value!r}")
        strides = self.strides
        if isinstance(strides, int) and not isinstance(strides, bool):
            strides = (strides, strides)
        if (
            not isinstance(strides, (tuple, list))
            or len(strides) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= 9 for s in strides)
        ):
            raise BlockStringError(f"strides must be two integers in 1..9; received {self.strides!r}")
        object.__setattr__(self, "strides", tuple(strides))
        expansion = _as_expansion(self.expansion)
        if expansion <= 0:
            raise BlockStringError(f"expansion must be > 0; received {self.expansion!r}")
        object.__setattr__(self, "expansion", expansion)
        se = self.se_ratio
        if se is not None:
            if isinstance(se, bool) or not isinstance(se, (int, float, Fraction)):
                raise BlockStringError(f"se_ratio must be a number in (0, 1]; received {se!r}")
            se = float(se)
            if se == 0.0:
                se = None
            elif not 0.0 < se <= 1.0:
                raise BlockStringError(f"se_ratio must be in (0, 1] (or 0 for none); received {se!r}")
        object.__setattr__(self, "se_ratio", se)
        self._check_choice("op", CONV_OPS)
        self._check_choice("skip", SKIP_OPS)
        self._check_choice("se_gate", SE_GATES)
        self._check_choice("se_base", SE_BASES)
        if self.activation is not None:
            self._check_choice("activation", ACTIVATIONS)
        if self.se_ratio is None and (self.se_gate != "sigmoid" or self.se_base != "input"):
            raise BlockStringError(
                "se_gate/se_base ('hsig'/'sexp') need a squeeze-excite ratio; add e.g. 'se0.25'"
            )
        if self.op == "dsconv" and self.expansion != 1:
            raise BlockStringError(
                f"a 'dsconv' block has no expansion; expected e1, received e{_fraction_to_str(self.expansion)}"
            )
        self._check_mqa()
        self._check_uib()

    def _check_mqa(self) -> None:
        """The Mobile MQA rules: ``h``/``d``/``v`` only and always on ``mqa`` (tokens named)."""
        if self.op != "mqa":
            stray = [f"{key}{value}" for key, value, unset in (
                ("h", self.heads, 0), ("d", self.key_dim, 0), ("v", self.kv_stride, 1)) if value != unset]
            if stray:
                raise BlockStringError(
                    f"token '{stray[0]}': heads/key dim/K-V stride belong to Mobile MQA blocks; add the "
                    "'mqa' flag (e.g. 'r1_k3_s11_e1_i160_o160_mqa_h4_d64_v2')"
                )
            if self.layer_scale and self.op != "mbconv":
                raise BlockStringError(
                    f"token 'ls': layer scale applies to MBConv (UIB) and 'mqa' blocks, not "
                    f"'{_FLAG_FOR['op'][self.op]}'"
                )
            return
        for key, value in (("h", self.heads), ("d", self.key_dim)):
            if not value:
                raise BlockStringError(f"an 'mqa' block needs '{key}' > 0 (e.g. 'h4', 'd64'); it is missing")
        rules = [
            (self.expansion != 1, f"e{_fraction_to_str(self.expansion)}", "e1 (attention has no expansion)"),
            (self.strides != (1, 1), f"s{self.strides[0]}{self.strides[1]}",
             "s11 (no query stride; use 'v' for the K/V stride)"),
            (self.kernel == 0, "k0", "k > 0 (the K/V downsampling depthwise kernel)"),
            (self.start_kernel, f"a{self.start_kernel}", "no start depthwise"),
            (self.end_kernel, f"p{self.end_kernel}", "no end depthwise"),
            (self.se_ratio is not None, f"se{_float_to_str(self.se_ratio or 0)}", "no squeeze-excite"),
            (self.activation is not None, str(self.activation), "no activation flag (attention has none)"),
            (self.skip == "pool", "poolskip", "an identity shortcut or 'noskip'"),
        ]
        for bad, token, expected in rules:
            if bad:
                raise BlockStringError(f"token '{token}': an 'mqa' block takes {expected}")

    def _check_uib(self) -> None:
        """The Universal Inverted Bottleneck rules for ``a``/``p``/``k0`` (tokens named)."""
        extra = [f"{key}{value}" for key, value in (("a", self.start_kernel), ("p", self.end_kernel)) if value]
        if self.op == "mqa":
            return
        if self.op != "mbconv":
            if self.kernel == 0:
                raise BlockStringError(
                    f"token 'k0': only an MBConv (UIB) block may omit its kernel; a '{_FLAG_FOR['op'][self.op]}' "
                    "block needs k > 0"
                )
            if extra:
                raise BlockStringError(
                    f"token '{extra[0]}': start/end depthwise kernels belong to MBConv (UIB) blocks, "
                    f"not '{_FLAG_FOR['op'][self.op]}'"
                )
            return
        if self.kernel == 0 and not extra and self.expansion == 1:
            raise BlockStringError(
                "token 'k0': a block without any depthwise conv needs an expansion (FFN, e.g. "
                "'r1_k0_s11_e2_i160_o160') or a start/end depthwise ('a3'/'p3'); expected k > 0"
            )
        if self.kernel == 0 and not extra and max(self.strides) > 1:
            raise BlockStringError(
                f"token 'k0': a strided block (s{self.strides[0]}{self.strides[1]}) needs a depthwise conv "
                "to take the stride; add 'a3'/'p3' or use k > 0"
            )

    def _check_choice(self, name: str, choices: Sequence[str]) -> None:
        value = getattr(self, name)
        if value not in choices:
            raise BlockStringError(f"{name} must be one of {list(choices)}; received {value!r}")

    # ------------------------------------------------------------------ text
    @classmethod
    def from_string(cls, block_string: str) -> "BlockSpec":
        """Decodes one block string; raises ``BlockStringError`` naming the bad token."""
        if not isinstance(block_string, str):
            raise BlockStringError(
                f"a block string must be a str; received {type(block_string).__name__}: {block_string!r}"
            )
        if not block_string.strip():
            raise BlockStringError("empty block string; expected tokens like 'r1_k3_s11_e1_i32_o16'")
        if block_string != block_string.strip():
            raise BlockStringError(f"block string {block_string!r} has surrounding whitespace")
        values: dict[str, str] = {}
        flags: dict[str, str] = {}
        for token in block_string.split("_"):
            if not token:
                raise BlockStringError(f"empty token (doubled or trailing '_') in {block_string!r}")
            match = _TOKEN.match(token)
            if token in _FLAG_GROUPS:
                key, value = token, ""
            elif not match:
                raise BlockStringError(
                    f"token '{token}' in {block_string!r} must start with a key of letters, e.g. 'k3'"
                )
            else:
                key, value = match.groups()
            if key != key.lower():
                raise BlockStringError(
                    f"token '{token}' in {block_string!r}: keys are lower-case (did you mean '{key.lower()}{value}'?)"
                )
            if key in _VALUED_KEYS:
                if key in values:
                    raise BlockStringError(f"duplicated key '{key}' (token '{token}') in {block_string!r}")
                if value == "":
                    raise BlockStringError(f"token '{token}' in {block_string!r} has no value")
                values[key] = value
            elif key in _FLAG_GROUPS:
                if value:
                    raise BlockStringError(
                        f"token '{token}' in {block_string!r}: flag '{key}' takes no value"
                    )
                field, _ = _FLAG_GROUPS[key]
                if field in flags:
                    raise BlockStringError(
                        f"token '{token}' in {block_string!r} conflicts with '{flags[field]}' (both set {field})"
                    )
                flags[field] = key
            else:
                known = ", ".join(list(_VALUED_KEYS) + list(_FLAG_GROUPS))
                raise BlockStringError(f"unknown key in token '{token}' of {block_string!r}; known keys: {known}")
        missing = [k for k in _REQUIRED_KEYS if k not in values]
        if missing:
            raise BlockStringError(f"block string {block_string!r} is missing required key(s): {', '.join(missing)}")

        def positive_int(key: str) -> int:
            text = values[key]
            if not _INT.match(text):
                raise BlockStringError(f"token '{key}{text}': expected a positive integer after '{key}'")
            number = int(text)
            if number <= 0:
                raise BlockStringError(f"token '{key}{text}': '{key}' must be > 0")
            return number

        def kernel_size(key: str) -> int:
            if key not in values:
                return 0
            text = values[key]
            if not _INT.match(text):
                raise BlockStringError(
                    f"token '{key}{text}': expected a kernel size (0 for none) after '{key}', like '{key}3'"
                )
            return int(text)

        s_text = values["s"]
        if not _INT.match(s_text) or len(s_text) not in (1, 2) or "0" in s_text:
            raise BlockStringError(
                f"token 's{s_text}': expected strides as two digits 1-9 (height, width) like 's22', or one like 's2'"
            )
        strides = (int(s_text[0]), int(s_text[-1]))
        expansion = _parse_expansion(values["e"], token=f"e{values['e']}")
        if expansion <= 0:
            raise BlockStringError(f"token 'e{values['e']}': expansion must be > 0")
        se_ratio = None
        if "se" in values:
            text = values["se"]
            if not _DECIMAL.match(text):
                raise BlockStringError(f"token 'se{text}': expected a ratio in (0, 1] like 'se0.25'")
            se_ratio = float(text)
            if se_ratio > 1.0:
                raise BlockStringError(f"token 'se{text}': SE ratio must be in (0, 1] (or se0 for none)")
        fields = {_FLAG_GROUPS[flag][0]: _FLAG_GROUPS[flag][1] for flag in flags.values()}
        try:
            return cls(
                repeats=positive_int("r"),
                kernel=kernel_size("k"),
                strides=strides,
                expansion=expansion,
                input_filters=positive_int("i"),
                output_filters=positive_int("o"),
                se_ratio=se_ratio,
                start_kernel=kernel_size("a"),
                end_kernel=kernel_size("p"),
                heads=positive_int("h") if "h" in values else 0,
                key_dim=positive_int("d") if "d" in values else 0,
                kv_stride=positive_int("v") if "v" in values else 1,
                **fields,
            )
        except BlockStringError as err:
            raise BlockStringError(f"{err} (in {block_string!r})") from None

    def to_string(self) -> str:
        """The canonical block string: ``from_string(spec.to_string()) == spec``."""
        tokens = [
            f"r{self.repeats}",
            f"k{self.kernel}",
            f"s{self.strides[0]}{self.strides[1]}",
            f"e{_fraction_to_str(self.expansion)}",
            f"i{self.input_filters}",
            f"o{self.output_filters}",
        ]
        if self.se_ratio is not None:
            tokens.append(f"se{_float_to_str(self.se_ratio)}")
        for field in ("op", "skip", "activation", "se_gate", "se_base"):
            flag = _FLAG_FOR[field].get(getattr(self, field))
            if flag:
                tokens.append(flag)
        if self.start_kernel:
            tokens.append(f"a{self.start_kernel}")
        if self.end_kernel:
            tokens.append(f"p{self.end_kernel}")
        if self.op == "mqa":
            tokens += [f"h{self.heads}", f"d{self.key_dim}"]
            if self.kv_stride != 1:
                tokens.append(f"v{self.kv_stride}")
        if self.layer_scale:
            tokens.append("ls")
        return "_".join(tokens)

    def __str__(self) -> str:
        return self.to_string()

    # ------------------------------------------------------------ semantics
    @property
    def has_se(self) -> bool:
        return self.se_ratio is not None

    @property
    def id_skip(self) -> bool:
        """tensorflow/tpu's ``id_skip``: False only for ``noskip``."""
        return self.skip != "none"

    def replace(self, **changes) -> "BlockSpec":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def expand(self) -> list["BlockSpec"]:
        """The stage as single blocks: the first takes the stride and ``i -> o``, the
        rest use stride 1 and ``i = o``.

        Example:
            >>> [b.to_string() for b in BlockSpec.from_string("r2_k3_s22_e6_i16_o24").expand()]
            ['r1_k3_s22_e6_i16_o24', 'r1_k3_s11_e6_i24_o24']
        """
        first = self.replace(repeats=1)
        rest = self.replace(repeats=1, strides=(1, 1), input_filters=self.output_filters)
        return [first] + [rest] * (self.repeats - 1)


def _as_spec(item) -> BlockSpec:
    if isinstance(item, BlockSpec):
        return item
    return BlockSpec.from_string(item)


def decode(block_strings: Iterable[str | BlockSpec]) -> list[BlockSpec]:
    """Decodes a whole architecture (a list of block strings) into ``BlockSpec`` s.

    Example:
        >>> [s.output_filters for s in decode(["r1_k3_s11_e1_i32_o16", "r2_k3_s22_e6_i16_o24"])]
        [16, 24]
    """
    if isinstance(block_strings, (str, bytes)):
        raise BlockStringError(
            "decode() takes a list of block strings, received a single string; "
            "wrap it in a list or use BlockSpec.from_string()"
        )
    try:
        items = list(block_strings)
    except TypeError:
        raise BlockStringError(
            f"decode() takes a list of block strings; received {type(block_strings).__name__}"
        ) from None
    if not items:
        raise BlockStringError("an architecture needs at least one block string; received an empty list")
    specs = []
    for index, item in enumerate(items):
        try:
            specs.append(_as_spec(item))
        except BlockStringError as err:
            raise BlockStringError(f"block {index}: {err}") from None
    return specs


def encode(specs: Iterable[BlockSpec | str]) -> list[str]:
    """Encodes ``BlockSpec`` s (or re-encodes strings) as canonical block strings.

    Example:
        >>> encode([BlockSpec.from_string("r1_k3_s2_e1_i32_o16_se0.250")])
        ['r1_k3_s22_e1_i32_o16_se0.25']
    """
    return [spec.to_string() for spec in decode(specs)]
