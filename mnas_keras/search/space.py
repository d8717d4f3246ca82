"""Search spaces: MnasNet's factorized hierarchical space and user-defined ones (no TensorFlow).

A space is a list of stages, each relative to a reference block string (by default the seven
stages of MobileNetV2). Every stage offers choices for its ConvOp, kernel, squeeze-excite
ratio, skip op, filters (multipliers of the reference's, rounded to 8) and layers (deltas of
the reference's repeats); the layers inside one stage are identical. A *sample* is a list of
choice indices, one per decision with more than one choice; ``SearchSpace.decode`` turns it
into canonical block strings that :func:`mnas_keras.codec.decode` accepts and whose filters
chain (a stage's input filters are the previous stage's output filters).

ConvOp labels: ``"conv"`` (regular kxk conv), ``"conv_e4"`` (fused kxk conv expanding 4x,
then 1x1 projection), ``"dsconv"`` (depthwise-separable conv), ``"mbconv_e3"`` /
``"mbconv_e6"`` (inverted bottleneck with that expansion).

UIB ConvOp labels (MobileNetV4's Universal Inverted Bottleneck, arXiv 2404.10518; the
expansion suffix ``_e<x>`` is optional and defaults to the stage reference's expansion; the
stage's ``kernel`` choice sizes the depthwise convs): ``"ib"`` (middle depthwise only, the
same network as ``mbconv``), ``"extradw"`` / ``"extradw3"`` (start depthwise of the stage
kernel / of kernel 3, plus the middle depthwise), ``"convnext"`` (start depthwise only),
``"ffn"`` (no depthwise: two 1x1 convs; not in a strided stage) and the general
``"uib_a<a>_p<p>"`` (start kernel ``a``, end kernel ``p``, middle of the stage kernel;
``_nomid`` drops the middle one). :func:`uib_space` is MobileNetV4's fine-stage space around
MobileNetV4-Conv-Small (``get_space("uib")``).

Example:
    >>> space = mnasnet_space()
    >>> len(space.decisions), space.nominal_size == 432 ** 7, f"{space.size:.2e}"
    (42, True, '5.55e+17')
    >>> blocks = space.decode(space.reference_decisions())
    >>> blocks[:2]
    ['r1_k3_s11_e1_i32_o16_dsconv', 'r2_k3_s22_e6_i16_o24']
    >>> space.decode([0] * len(space.decisions))[1]
    'r1_k3_s22_e1_i16_o24_conv'
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import random
import re
from collections import defaultdict
from fractions import Fraction
from typing import Any, Iterable, Mapping, Sequence

from mnas_keras.codec import BlockSpec, BlockStringError, decode, round_filters
from mnas_keras.codec.blocks import ACTIVATIONS, SKIP_OPS
from mnas_keras.search.errors import SearchSpaceError

#: MobileNetV2's stages (t, c, n, s) written as block strings; stem 32 filters. The first
#: stage (expansion 1, a depthwise-separable block) is written as ``dsconv``.
MOBILENET_V2_STAGES = (
    "r1_k3_s11_e1_i32_o16_dsconv",
    "r2_k3_s22_e6_i16_o24",
    "r3_k3_s22_e6_i24_o32",
    "r4_k3_s22_e6_i32_o64",
    "r3_k3_s11_e6_i64_o96",
    "r3_k3_s22_e6_i96_o160",
    "r1_k3_s11_e6_i160_o320",
)

#: The MnasNet paper's per-stage choices (section 4.1).
MNASNET_CHOICES = {
    "op": ("conv", "dsconv", "mbconv_e3", "mbconv_e6"),
    "kernel": (3, 5),
    "se": (0.0, 0.25),
    "skip": ("identity", "pool", "none"),
    "filters": (0.75, 1.0, 1.25),
    "layers": (-1, 0, 1),
}

FIELDS = ("op", "kernel", "se", "skip", "filters", "layers", "activation")
_OP_LABEL = re.compile(r"^(conv|dsconv|mbconv)(?:_e([0-9]+(?:\.[0-9]+)?|[0-9]+/[0-9]+))?$")
_UIB_LABEL = re.compile(
    r"^(?:(ib)|extradw([0-9]*)|(convnext)|(ffn)|uib_a([0-9]+)_p([0-9]+)(_nomid)?)"
    r"(?:_e([0-9]+(?:\.[0-9]+)?|[0-9]+/[0-9]+))?$"
)


# ----------------------------------------------------------------------------- op labels
def parse_op(label: str) -> tuple[str, Fraction]:
    """Parses a ConvOp label into the codec's ``(op, expansion)``.

    Example:
        >>> parse_op("mbconv_e6"), parse_op("conv"), parse_op("dsconv")
        (('mbconv', Fraction(6, 1)), ('conv', Fraction(1, 1)), ('dsconv', Fraction(1, 1)))
    """
    if not isinstance(label, str):
        raise SearchSpaceError(f"a ConvOp label must be a string like 'mbconv_e6'; received {label!r}")
    match = _OP_LABEL.match(label)
    if not match:
        uib = parse_uib(label)
        return "mbconv", uib["expansion"]
    op, exp_text = match.groups()
    if exp_text is None:
        if op == "mbconv":
            raise SearchSpaceError(f"ConvOp {label!r} needs an expansion, e.g. 'mbconv_e6'")
        expansion = Fraction(1)
    else:
        try:
            expansion = Fraction(exp_text)
        except (ValueError, ZeroDivisionError):
            raise SearchSpaceError(f"ConvOp {label!r}: bad expansion {exp_text!r}") from None
        if expansion <= 0:
            raise SearchSpaceError(f"ConvOp {label!r}: expansion must be > 0")
    if op == "dsconv" and expansion != 1:
        raise SearchSpaceError(f"ConvOp {label!r}: a depthwise-separable conv has no expansion; use 'dsconv'")
    return op, expansion


def parse_uib(label: str) -> dict:
    """Parses a UIB ConvOp label (see the module docstring).

    Returns:
        ``{"expansion": Fraction or None (= the reference's), "start": kernel, ``"stage"``
        (the stage kernel) or 0, "middle": bool, "end": kernel or 0}``.

    Raises:
        SearchSpaceError: the label is no ConvOp label.

    Example:
        >>> parse_uib("extradw3_e4")
        {'expansion': Fraction(4, 1), 'start': 3, 'middle': True, 'end': 0}
        >>> parse_uib("convnext")["start"], parse_uib("ffn")["middle"]
        ('stage', False)
    """
    match = _UIB_LABEL.match(label) if isinstance(label, str) else None
    if not match:
        raise SearchSpaceError(
            f"unknown ConvOp {label!r}; expected 'conv', 'conv_e<x>', 'dsconv', 'mbconv_e<x>' or a UIB op "
            "'ib', 'extradw[<k>]', 'convnext', 'ffn', 'uib_a<k>_p<k>[_nomid]' (each with an optional '_e<x>')"
        )
    ib, extra_k, convnext, ffn, a, p, nomid, exp_text = match.groups()
    expansion = None
    if exp_text is not None:
        try:
            expansion = Fraction(exp_text)
        except (ValueError, ZeroDivisionError):
            raise SearchSpaceError(f"ConvOp {label!r}: bad expansion {exp_text!r}") from None
        if expansion <= 0:
            raise SearchSpaceError(f"ConvOp {label!r}: expansion must be > 0")
    if ib:
        start, middle, end = 0, True, 0
    elif convnext:
        start, middle, end = "stage", False, 0
    elif ffn:
        start, middle, end = 0, False, 0
    elif a is not None:
        start, middle, end = int(a), not nomid, int(p)
    else:
        start, middle, end = (int(extra_k) if extra_k else "stage"), True, 0
    if start == 0 and end == 0 and not middle and expansion == 1:
        raise SearchSpaceError(f"ConvOp {label!r}: a UIB with no depthwise conv needs an expansion != 1")
    return {"expansion": expansion, "start": start, "middle": middle, "end": end}


def _op_fields(label: str, kernel: int, ref: BlockSpec) -> dict:
    """The BlockSpec fields a ConvOp label sets for a stage kernel and reference."""
    match = _OP_LABEL.match(label) if isinstance(label, str) else None
    if match:
        op, expansion = parse_op(label)
        return {"op": op, "expansion": expansion, "start_kernel": 0, "kernel": kernel, "end_kernel": 0}
    uib = parse_uib(label)
    start = kernel if uib["start"] == "stage" else uib["start"]
    return {"op": "mbconv", "expansion": ref.expansion if uib["expansion"] is None else uib["expansion"],
            "start_kernel": start, "kernel": kernel if uib["middle"] else 0, "end_kernel": uib["end"]}


def op_label(spec: BlockSpec) -> str:
    """The ConvOp label of a block spec (inverse of :func:`parse_op`).

    Example:
        >>> op_label(BlockSpec.from_string("r1_k3_s11_e4_i8_o8_conv"))
        'conv_e4'
    """
    exp_text = spec.to_string().split("_")[3][1:]
    a, p = getattr(spec, "start_kernel", 0), getattr(spec, "end_kernel", 0)
    if spec.op == "mbconv" and (a or p or not spec.kernel):
        if p:
            return f"uib_a{a}_p{p}{'' if spec.kernel else '_nomid'}_e{exp_text}"
        if a:
            return f"extradw{a}_e{exp_text}" if spec.kernel else f"convnext_e{exp_text}"
        return f"ffn_e{exp_text}"
    if spec.op == "dsconv":
        return "dsconv"
    if spec.op == "conv" and spec.expansion == 1:
        return "conv"
    return f"{spec.op}_e{exp_text}"


def arch_key(blocks: Sequence[str]) -> str:
    """The cache key of an architecture: its canonical block strings joined by ``|``.

    Example:
        >>> arch_key(["r1_k3_s2_e1_i32_o16_se0.250"])
        'r1_k3_s22_e1_i32_o16_se0.25'
    """
    return "|".join(_canonical(b) for b in blocks)


def _canonical(text) -> str:
    """Canonical form of one architecture string: a block string, a NASNet cell string
    (``OP@INPUT``, :mod:`mnas_keras.codec.cells`) or a NAS-RL macro string (``k..``,
    :mod:`mnas_keras.codec.macro`)."""
    if not isinstance(text, str):
        return text.to_string()
    if "@" in text:
        from mnas_keras.codec.cells import CellSpec

        return CellSpec.from_string(text).to_string()
    if text.startswith("k"):
        from mnas_keras.codec.macro import MacroSpec

        return MacroSpec.from_string(text).to_string()
    return BlockSpec.from_string(text).to_string()


def arch_id(blocks_or_key: Sequence[str] | str) -> str:
    """A short stable id (12 hex digits of SHA-1 of the key), for file names.

    Example:
        >>> len(arch_id(["r1_k3_s11_e1_i32_o16"]))
        12
    """
    key = blocks_or_key if isinstance(blocks_or_key, str) else arch_key(blocks_or_key)
    return hashlib.sha1(key.encode()).hexdigest()[:12]


# ------------------------------------------------------------------------------- stages
@dataclasses.dataclass(frozen=True)
class Decision:
    """One decision of a space: a stage field with more than one choice."""

    name: str
    stage: int
    field: str
    choices: tuple

    @property
    def labels(self) -> list[str]:
        """Choice labels as short strings (for logs and summaries)."""
        return [_label_text(self.field, c) for c in self.choices]


def _label_text(field: str, value) -> str:
    if field == "op":
        return value
    if field == "se":
        return "0" if not value else repr(float(value))
    if field == "activation":
        return value or "default"
    return str(value)


def _tuple(name: str, value) -> tuple | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise SearchSpaceError(f"choices for '{name}' must be a list; received {value!r}")
    value = tuple(value)
    if not value:
        raise SearchSpaceError(f"choices for '{name}' are empty; give at least one")
    return value


@dataclasses.dataclass(frozen=True)
class StageSpace:
    """The choices of one stage, relative to a reference block string.

    A field left ``None`` keeps the reference's value. ``fixed=True`` keeps the whole
    reference (only its input filters follow the chain).

    Attributes:
        reference: the stage's reference block string (stride, repeats, filters, ...).
        op: ConvOp labels, e.g. ``("dsconv", "mbconv_e6")``.
        kernel: kernel sizes.
        se: squeeze-excite ratios (``0`` = no SE).
        skip: ``"identity"``, ``"pool"`` or ``"none"``.
        filters: multipliers of the reference's output filters (rounded to 8).
        layers: deltas of the reference's repeats (results below 1 are dropped).
        activation: block activations (``None`` = the model's).
        fixed: use the reference as is.

    Example:
        >>> stage = StageSpace("r2_k3_s22_e6_i16_o24", kernel=(3, 5, 7), filters=(0.75, 1.0, 1.25))
        >>> stage.options()["filters"], stage.options()["kernel"]
        ((24, 32), (3, 5, 7))
    """

    reference: str
    op: tuple | None = None
    kernel: tuple | None = None
    se: tuple | None = None
    skip: tuple | None = None
    filters: tuple | None = None
    layers: tuple | None = None
    activation: tuple | None = None
    fixed: bool = False

    def __post_init__(self):
        try:
            ref = BlockSpec.from_string(self.reference) if isinstance(self.reference, str) else self.reference
        except BlockStringError as err:
            raise SearchSpaceError(f"stage reference: {err}") from None
        if not isinstance(ref, BlockSpec):
            raise SearchSpaceError(f"stage reference must be a block string; received {self.reference!r}")
        object.__setattr__(self, "reference", ref.to_string())
        for field in FIELDS:
            object.__setattr__(self, field, _tuple(field, getattr(self, field)))
        for label in self.op or ():
            fields = _op_fields(label, 3, ref)
            if fields["op"] == "mbconv" and not fields["start_kernel"] and not fields["kernel"] and not fields["end_kernel"]:
                if ref.strides != (1, 1):
                    raise SearchSpaceError(
                        f"ConvOp {label!r} has no depthwise conv to take the stride of stage {ref.to_string()!r}; "
                        "offer it only in stride-1 stages"
                    )
                if fields["expansion"] == 1:
                    raise SearchSpaceError(
                        f"ConvOp {label!r} with the expansion 1 of stage {ref.to_string()!r} has no depthwise "
                        "and no expansion; give it one, e.g. 'ffn_e2'"
                    )
        for k in self.kernel or ():
            if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
                raise SearchSpaceError(f"kernel choices must be positive integers; received {k!r}")
        for se in self.se or ():
            if isinstance(se, bool) or not isinstance(se, (int, float)) or not 0.0 <= se <= 1.0:
                raise SearchSpaceError(f"se choices must be numbers in [0, 1]; received {se!r}")
        for skip in self.skip or ():
            if skip not in SKIP_OPS:
                raise SearchSpaceError(f"skip choices must be in {list(SKIP_OPS)}; received {skip!r}")
        for m in self.filters or ():
            if isinstance(m, bool) or not isinstance(m, (int, float)) or m <= 0:
                raise SearchSpaceError(f"filters choices are positive multipliers; received {m!r}")
        for d in self.layers or ():
            if isinstance(d, bool) or not isinstance(d, int):
                raise SearchSpaceError(f"layers choices are integer deltas of the repeats; received {d!r}")
        for a in self.activation or ():
            if a is not None and a not in ACTIVATIONS:
                raise SearchSpaceError(
                    f"activation choices must be None or one of {list(ACTIVATIONS)}; received {a!r}"
                )
        if self.layers is not None and not any(self.spec.repeats + d >= 1 for d in self.layers):
            raise SearchSpaceError(
                f"layers choices {self.layers} leave stage {self.reference!r} with no layer"
            )

    @property
    def spec(self) -> BlockSpec:
        return BlockSpec.from_string(self.reference)

    def options(self) -> dict[str, tuple]:
        """The concrete values per field (deduplicated): op labels, kernels, SE ratios
        (``None`` = off), skips, output filters, repeats, activations."""
        ref = self.spec
        if self.fixed:
            return {
                "op": (op_label(ref),), "kernel": (ref.kernel,), "se": (ref.se_ratio,),
                "skip": (ref.skip,), "filters": (ref.output_filters,), "layers": (ref.repeats,),
                "activation": (ref.activation,),
            }

        def unique(values):
            return tuple(dict.fromkeys(values))

        return {
            "op": unique(self.op) if self.op else (op_label(ref),),
            "kernel": unique(self.kernel) if self.kernel else (ref.kernel,),
            "se": unique((float(s) or None) for s in self.se) if self.se else (ref.se_ratio,),
            "skip": unique(self.skip) if self.skip else (ref.skip,),
            "filters": unique(round_filters(ref.output_filters, m) for m in self.filters)
            if self.filters else (ref.output_filters,),
            "layers": unique(ref.repeats + d for d in self.layers if ref.repeats + d >= 1)
            if self.layers else (ref.repeats,),
            "activation": unique(self.activation) if self.activation else (ref.activation,),
        }

    def build(self, input_filters: int, values: Mapping[str, Any]) -> BlockSpec:
        """The stage's canonical ``BlockSpec`` for chosen values and chained input filters."""
        ref = self.spec
        if self.fixed:
            return ref.replace(input_filters=input_filters)
        op_fields = _op_fields(values["op"], values["kernel"], ref)
        se = values["se"]
        spec = ref.replace(
            repeats=values["layers"], **op_fields,
            input_filters=input_filters, output_filters=values["filters"],
            se_ratio=se, skip=values["skip"], activation=values["activation"],
            se_gate=ref.se_gate if se else "sigmoid", se_base=ref.se_base if se else "input",
        )
        return canonical_skip(spec)

    def to_dict(self) -> dict:
        out = {"reference": self.reference}
        if self.fixed:
            out["fixed"] = True
            return out
        for field in FIELDS:
            value = getattr(self, field)
            if value is not None:
                out[field] = list(value)
        return out


def _op_kernel(options: Mapping[str, tuple], ref: BlockSpec, spec: BlockSpec) -> tuple | None:
    """The first (ConvOp label, kernel) among a stage's options that gives ``spec``'s op,
    expansion and depthwise kernels (UIB labels and kernels overlap), else ``None``."""
    want = {"op": spec.op, "expansion": spec.expansion, "start_kernel": spec.start_kernel,
            "kernel": spec.kernel, "end_kernel": spec.end_kernel}
    for label in options["op"]:
        for kernel in options["kernel"]:
            if _op_fields(label, kernel, ref) == want:
                return label, kernel
    return None


def _field_value(spec: BlockSpec, field: str):
    return {
        "op": op_label, "kernel": lambda s: s.kernel, "se": lambda s: s.se_ratio,
        "skip": lambda s: s.skip, "filters": lambda s: s.output_filters,
        "layers": lambda s: s.repeats, "activation": lambda s: s.activation,
    }[field](spec)


def canonical_skip(spec: BlockSpec) -> BlockSpec:
    """Writes ``noskip`` as the identity where no identity shortcut could apply anyway
    (one layer with a stride or a filter change), so equal networks share one string.

    Example:
        >>> canonical_skip(BlockSpec.from_string("r1_k3_s22_e6_i16_o24_noskip")).to_string()
        'r1_k3_s22_e6_i16_o24'
    """
    if spec.skip == "none" and spec.repeats == 1 and (
        spec.strides != (1, 1) or spec.input_filters != spec.output_filters
    ):
        return spec.replace(skip="identity")
    return spec


# -------------------------------------------------------------------------------- space
class SearchSpace:
    """A factorized hierarchical search space: one :class:`StageSpace` per stage.

    Args:
        stages: the stages, in order.
        stem_filters: filters of the stem conv, the first stage's input.
        name: a label stored with runs.

    Example:
        >>> space = SearchSpace.from_dict({
        ...     "stem_filters": 16,
        ...     "defaults": {"kernel": [3, 5], "op": ["dsconv", "mbconv_e3"]},
        ...     "stages": [{"reference": "r1_k3_s11_e1_i16_o16", "fixed": True},
        ...                {"reference": "r2_k3_s22_e6_i16_o24", "layers": [0, 1]}]})
        >>> [d.name for d in space.decisions]
        ['stage2/op', 'stage2/kernel', 'stage2/layers']
        >>> space.size, space.decode([1, 1, 1])
        (8, ['r1_k3_s11_e1_i16_o16', 'r3_k5_s22_e3_i16_o24'])
    """

    #: The network recipe that builds a decoded sample (see :mod:`mnas_keras.search.spaces`).
    network = "mnasnet"
    #: The latency lookup table's part keys cover this space.
    latency_table = True

    def __init__(self, stages: Sequence[StageSpace], stem_filters: int = 32, name: str = "custom"):
        stages = tuple(stages)
        if not stages:
            raise SearchSpaceError("a search space needs at least one stage")
        for index, stage in enumerate(stages):
            if not isinstance(stage, StageSpace):
                raise SearchSpaceError(f"stage {index + 1} must be a StageSpace; received {type(stage).__name__}")
        if isinstance(stem_filters, bool) or not isinstance(stem_filters, int) or stem_filters <= 0:
            raise SearchSpaceError(f"stem_filters must be a positive integer; received {stem_filters!r}")
        self.stages = stages
        self.stem_filters = stem_filters
        self.name = str(name)
        self._options = [stage.options() for stage in stages]
        decisions = []
        for index, options in enumerate(self._options):
            for field in FIELDS:
                if len(options[field]) > 1:
                    decisions.append(Decision(f"stage{index + 1}/{field}", index, field, options[field]))
        self.decisions: tuple[Decision, ...] = tuple(decisions)
        # Every sample must build: check a corner of each stage's choices now.
        try:
            self.decode(self.reference_decisions() or [0] * len(decisions))
            self.decode([len(d.choices) - 1 for d in decisions])
        except BlockStringError as err:
            raise SearchSpaceError(f"space produces an invalid block: {err}") from None

    # ---------------------------------------------------------------- properties
    @property
    def num_choices(self) -> list[int]:
        """Choices per decision, in order (what controllers need)."""
        return [len(d.choices) for d in self.decisions]

    @property
    def size(self) -> int:
        """The number of decision combinations once duplicate choices are merged (filter
        multipliers that round to the same count, layer deltas below one layer)."""
        return math.prod(self.num_choices)

    @property
    def nominal_size(self) -> int:
        """The paper's count: the product of the declared choice lists (432 per stage
        for MnasNet's space, 432^7 = 2.8e18 over seven stages)."""
        total = 1
        for stage in self.stages:
            if stage.fixed:
                continue
            for field in FIELDS:
                value = getattr(stage, field)
                total *= len(value) if value else 1
        return total

    def num_architectures(self) -> int:
        """The number of distinct networks (canonical block-string lists) in the space.

        Smaller than :attr:`size`: rounded filters coincide and ``noskip`` equals the
        identity where no shortcut applies.

        Example:
            >>> mnasnet_space().num_architectures() < mnasnet_space().size
            True
        """
        counts = {self.stem_filters: 1}
        for index, stage in enumerate(self.stages):
            options = self._options[index]
            new_counts: dict[int, int] = defaultdict(int)
            for f_in, n_prefix in counts.items():
                by_out: dict[int, set] = defaultdict(set)
                for combo in itertools.product(*(options[f] for f in FIELDS)):
                    spec = stage.build(f_in, dict(zip(FIELDS, combo)))
                    by_out[spec.output_filters].add(spec.to_string())
                for f_out, strings in by_out.items():
                    new_counts[f_out] += n_prefix * len(strings)
            counts = new_counts
        return sum(counts.values())

    # ------------------------------------------------------------------- samples
    def decode(self, decisions: Sequence[int]) -> list[str]:
        """Turns choice indices (one per decision) into canonical block strings."""
        values = self.values(decisions)
        blocks, f_in = [], self.stem_filters
        for stage, stage_values in zip(self.stages, values):
            spec = stage.build(f_in, stage_values)
            blocks.append(spec.to_string())
            f_in = spec.output_filters
        return blocks

    def values(self, decisions: Sequence[int]) -> list[dict[str, Any]]:
        """The chosen value of every field of every stage."""
        decisions = list(decisions)
        if len(decisions) != len(self.decisions):
            raise SearchSpaceError(
                f"a sample of this space has {len(self.decisions)} decisions; received {len(decisions)}"
            )
        values = [{f: opts[f][0] for f in FIELDS} for opts in self._options]
        for decision, index in zip(self.decisions, decisions):
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(decision.choices):
                raise SearchSpaceError(
                    f"decision {decision.name}: choice index must be in 0..{len(decision.choices) - 1}; "
                    f"received {index!r}"
                )
            values[decision.stage][decision.field] = decision.choices[index]
        return values

    def encode(self, blocks: Sequence[str]) -> list[int]:
        """A sample that decodes to ``blocks`` (inverse of :meth:`decode`).

        Raises ``SearchSpaceError`` naming the stage and field that the space cannot express.

        Example:
            >>> space = mnasnet_space()
            >>> blocks = space.decode(space.sample(random.Random(0)))
            >>> space.decode(space.encode(blocks)) == blocks
            True
        """
        try:
            specs = decode(blocks)
        except BlockStringError as err:
            raise SearchSpaceError(str(err)) from None
        if len(specs) != len(self.stages):
            raise SearchSpaceError(f"this space has {len(self.stages)} stages; received {len(specs)} blocks")
        out = []
        for decision in self.decisions:
            spec = specs[decision.stage]
            value = _field_value(spec, decision.field)
            if decision.field in ("op", "kernel"):
                stage = self.stages[decision.stage]
                match = _op_kernel(self._options[decision.stage], stage.spec, spec)
                options = self._options[decision.stage]
                if match is None and op_label(spec) in options["op"] and spec.kernel in options["kernel"]:
                    raise SearchSpaceError(
                        f"stage {decision.stage + 1}: ConvOp {op_label(spec)!r} with kernel {spec.kernel} is not "
                        f"among the choices op {list(self._options[decision.stage]['op'])} x kernel "
                        f"{list(self._options[decision.stage]['kernel'])}"
                    )
                if match is not None:
                    value = match[0] if decision.field == "op" else match[1]
            if value not in decision.choices:
                raise SearchSpaceError(
                    f"stage {decision.stage + 1}: {decision.field} {_label_text(decision.field, value)!r} "
                    f"is not among the choices {decision.labels}"
                )
            out.append(decision.choices.index(value))
        canonical = [canonical_skip(s).to_string() for s in specs]
        if self.decode(out) != canonical:
            raise SearchSpaceError(f"blocks {canonical} are not in this space (fixed values or filters differ)")
        return out

    def sample(self, rng: random.Random | None = None) -> list[int]:
        """A uniformly random sample (``random.Random`` for reproducibility)."""
        rng = rng or random.Random()
        return [rng.randrange(n) for n in self.num_choices]

    def reference_decisions(self) -> list[int] | None:
        """The sample equal to the reference stages, or ``None`` if a reference value is not
        among the choices."""
        out = []
        for decision in self.decisions:
            stage = self.stages[decision.stage]
            value = _field_value(stage.spec, decision.field)
            if decision.field in ("op", "kernel"):
                match = _op_kernel(self._options[decision.stage], stage.spec, stage.spec)
                if match is None:
                    return None
                value = match[0] if decision.field == "op" else match[1]
            if value not in decision.choices:
                return None
            out.append(decision.choices.index(value))
        return out

    def reference_blocks(self) -> list[str]:
        """The reference stages with chained input filters."""
        blocks, f_in = [], self.stem_filters
        for stage in self.stages:
            spec = canonical_skip(stage.spec.replace(input_filters=f_in))
            blocks.append(spec.to_string())
            f_in = spec.output_filters
        return blocks

    # ----------------------------------------------------------------- (de)serialize
    def to_dict(self) -> dict:
        """A JSON-able description; ``SearchSpace.from_dict(space.to_dict())`` rebuilds it."""
        return {
            "name": self.name,
            "stem_filters": self.stem_filters,
            "stages": [stage.to_dict() for stage in self.stages],
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> "SearchSpace":
        """Builds a space from a dict: ``stages`` (each a block string or a dict with
        ``reference`` plus optional choice lists / ``fixed``), optional ``defaults`` (choice
        lists applied to every non-fixed stage), ``stem_filters`` and ``name``."""
        if not isinstance(data, Mapping):
            raise SearchSpaceError(f"a space definition must be a dict; received {type(data).__name__}")
        unknown = set(data) - {"name", "stem_filters", "stages", "defaults"}
        if unknown:
            raise SearchSpaceError(
                f"unknown key(s) {sorted(unknown)} in space definition; expected name, stem_filters, stages, defaults"
            )
        if "stages" not in data:
            raise SearchSpaceError("space definition has no 'stages' list")
        defaults = dict(data.get("defaults") or {})
        bad = set(defaults) - set(FIELDS)
        if bad:
            raise SearchSpaceError(f"unknown field(s) {sorted(bad)} in 'defaults'; expected {list(FIELDS)}")
        stages = []
        for index, item in enumerate(data["stages"]):
            if isinstance(item, str):
                item = {"reference": item}
            if not isinstance(item, Mapping) or "reference" not in item:
                raise SearchSpaceError(
                    f"stage {index + 1}: expected a block string or a dict with 'reference'; received {item!r}"
                )
            bad = set(item) - set(FIELDS) - {"reference", "fixed"}
            if bad:
                raise SearchSpaceError(
                    f"stage {index + 1}: unknown key(s) {sorted(bad)}; expected reference, fixed, {', '.join(FIELDS)}"
                )
            if item.get("fixed") and set(item) & set(FIELDS):
                raise SearchSpaceError(
                    f"stage {index + 1} is fixed but lists choices for {sorted(set(item) & set(FIELDS))}; "
                    "remove them or 'fixed'"
                )
            fields = {} if item.get("fixed") else {**defaults, **{k: v for k, v in item.items() if k in FIELDS}}
            try:
                stages.append(StageSpace(item["reference"], fixed=bool(item.get("fixed")), **fields))
            except SearchSpaceError as err:
                raise SearchSpaceError(f"stage {index + 1}: {err}") from None
        stem = data.get("stem_filters", 32)
        return cls(stages, stem_filters=stem, name=data.get("name", "custom"))

    @classmethod
    def from_json(cls, path: str) -> "SearchSpace":
        """Reads :meth:`from_dict`'s format from a JSON file."""
        try:
            with open(path) as f:
                data = json.load(f)
        except FileNotFoundError:
            raise SearchSpaceError(f"search space file not found: {path}") from None
        except json.JSONDecodeError as err:
            raise SearchSpaceError(f"search space file {path} is not valid JSON: {err}") from None
        return cls.from_dict(data)

    @classmethod
    def from_reference(cls, blocks: Sequence[str], stem_filters: int = 32, name: str = "custom",
                       **choices) -> "SearchSpace":
        """The same choices around every stage of a reference network.

        Example:
            >>> from mnas_keras.codec import get_architecture
            >>> space = SearchSpace.from_reference(get_architecture("mnasnet_a1").blocks, kernel=(3, 5, 7))
            >>> space.size
            2187
        """
        bad = set(choices) - set(FIELDS)
        if bad:
            raise SearchSpaceError(f"unknown field(s) {sorted(bad)}; expected {list(FIELDS)}")
        try:
            specs = decode(blocks)
        except BlockStringError as err:
            raise SearchSpaceError(f"reference: {err}") from None
        return cls([StageSpace(s.to_string(), **choices) for s in specs], stem_filters=stem_filters, name=name)

    def describe(self) -> str:
        """A short human-readable table of the space and its size."""
        lines = [f"search space '{self.name}': {len(self.stages)} stages, stem {self.stem_filters}, "
                 f"{len(self.decisions)} decisions, nominal size {self.nominal_size:.3e}, "
                 f"size {self.size:.3e} "
                 f"({self.num_architectures():.3e} distinct networks)"]
        for index, (stage, options) in enumerate(zip(self.stages, self._options)):
            parts = [f"{f}={'/'.join(_label_text(f, v) for v in options[f])}" for f in FIELDS
                     if len(options[f]) > 1]
            lines.append(f"  stage{index + 1} {stage.reference}: " + (", ".join(parts) or "fixed"))
        return "\n".join(lines)

    def __eq__(self, other):
        return isinstance(other, SearchSpace) and self.to_dict() == other.to_dict()

    def __repr__(self):
        return f"SearchSpace(name={self.name!r}, stages={len(self.stages)}, decisions={len(self.decisions)})"


def mnasnet_space(reference: Sequence[str] = MOBILENET_V2_STAGES, stem_filters: int = 32,
                  **overrides) -> SearchSpace:
    """The MnasNet paper's factorized hierarchical space around MobileNetV2's 7 stages.

    Per stage: ConvOp {conv, dsconv, mbconv e3, mbconv e6} x kernel {3, 5} x SE {0, 0.25} x
    skip {identity, pool, none} x filters x{0.75, 1.0, 1.25} x layers {-1, 0, +1}: 432
    combinations per stage (288 where the reference has one layer). ``overrides`` replace
    choice lists, e.g. ``kernel=(3, 5, 7)``.
    """
    choices = {**MNASNET_CHOICES, **overrides}
    return SearchSpace.from_reference(reference, stem_filters=stem_filters, name="mnasnet", **choices)


#: MobileNetV4's fine-stage ConvOp choices (arXiv 2404.10518, NAS section): each of the two
#: optional depthwise convs present or not, 3x3 or 5x5: IB, ExtraDW, ConvNeXt-like, FFN.
UIB_CHOICES = {"op": ("ib", "extradw3", "extradw5", "convnext", "ffn"), "kernel": (3, 5)}


def uib_space(stem_filters: int = 32, **overrides) -> SearchSpace:
    """MobileNetV4's fine-stage UIB space around MobileNetV4-Conv-Small.

    The stem-side conv stages and the final 1x1 conv to 960 stay fixed; each of the eight
    UIB stages chooses its ConvOp among :data:`UIB_CHOICES` (``ffn`` only in stride-1 stages)
    and its depthwise kernel in {3, 5}, keeping Conv-Small's expansion, filters and repeats:
    9 distinct blocks per stride-1 stage (3x3 start/middle kernels in {none, 3, 5} each).
    ``overrides`` replace choice lists of the UIB stages (e.g. ``filters=(0.75, 1.0)``).

    Example:
        >>> space = uib_space()
        >>> len(space.stages), len(space.decisions), space.num_architectures() == 8 ** 2 * 9 ** 6
        (13, 16, True)
        >>> space.decode(space.reference_decisions())[4:7]
        ['r1_k5_s22_e3_i64_o96_a5', 'r4_k3_s11_e2_i96_o96', 'r1_k0_s11_e4_i96_o96_a3']
    """
    from mnas_keras.codec import get_architecture

    stages = []
    for block in get_architecture("mobilenet_v4_conv_small").blocks:
        spec = BlockSpec.from_string(block)
        if spec.op != "mbconv":
            stages.append(StageSpace(block, fixed=True))
            continue
        choices = {**UIB_CHOICES, **overrides}
        if spec.strides != (1, 1) and "op" not in overrides:
            choices["op"] = tuple(op for op in choices["op"] if op != "ffn")
        stages.append(StageSpace(block, **choices))
    return SearchSpace(stages, stem_filters=stem_filters, name="uib")


def get_space(name_or_path: str | Mapping | SearchSpace) -> SearchSpace:
    """A space by name (``"mnasnet"``, ``"uib"`` / ``"mobilenetv4"``), from a JSON file path, from a dict, or as given.

    Example:
        >>> get_space("mnasnet").name
        'mnasnet'
    """
    if isinstance(name_or_path, SearchSpace):
        return name_or_path
    if isinstance(name_or_path, Mapping):
        return SearchSpace.from_dict(name_or_path)
    if name_or_path == "mnasnet":
        return mnasnet_space()
    if name_or_path in ("uib", "mobilenetv4"):
        return uib_space()
    if isinstance(name_or_path, str) and name_or_path.endswith(".json"):
        return SearchSpace.from_json(name_or_path)
    raise SearchSpaceError(
        f"unknown search space {name_or_path!r}; expected 'mnasnet', 'uib' (alias 'mobilenetv4') or a .json file"
    )
