"""NetAdapt's proposals on block strings (pure Python, no TensorFlow).

A network is handled as its *flat* list of single blocks (``r1`` each, in order; see
:func:`flatten`), so that one block of a repeated stage can change alone; :func:`merge`
folds runs of identical repeats back into stages for the final block strings.

Two kinds of proposal (MobileNetV3 section 4.2, from NetAdapt):

* ``expansion``: the expansion layer of one block (the 1x1 expand conv of an MBConv block,
  or the fused kxk conv of a ``conv`` block with ``e != 1``) gets ``width`` filters; the
  block string's expansion becomes ``width / i`` (e.g. ``e6_i40`` -> ``e4.8_i40`` for 192).
* ``bottleneck``: a *width group*, the block outputs (and possibly the stem) that residual
  additions tie together, all get ``width`` filters; every block reading the group gets
  ``i = width`` and an expansion that keeps its expanded width (``e6_i40`` -> ``e7.5_i32``).

A change that would alter the graph's structure (drop an expand conv because ``e`` became 1,
add or remove a residual, add or drop a shortcut projection) is not allowed
(:class:`ProposalError`).

Example:
    >>> blocks = ["r1_k3_s11_e1_i16_o16", "r2_k3_s22_e6_i16_o24"]
    >>> [p.key for p in proposals(flatten(blocks), stem_filters=16)]
    ['bottleneck:stem,0', 'bottleneck:1,2', 'expansion:1', 'expansion:2']
    >>> specs, stem = apply(flatten(blocks), 16, proposals(flatten(blocks), 16)[2], 64)
    >>> merge(specs), stem
    (['r1_k3_s11_e1_i16_o16', 'r1_k3_s22_e4_i16_o24', 'r1_k3_s11_e6_i24_o24'], 16)
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from typing import Sequence

from mnas_keras.codec import BlockSpec, decode, make_divisible
from mnas_keras.search.errors import SearchConfigError

KINDS = ("expansion", "bottleneck")
STEM = -1


class ProposalError(SearchConfigError):
    """A width that a proposal cannot take without changing the network's structure."""


def flatten(blocks: Sequence[str | BlockSpec]) -> list[BlockSpec]:
    """The network as single blocks (``r1``), in order.

    Example:
        >>> [b.to_string() for b in flatten(["r2_k3_s22_e6_i16_o24"])]
        ['r1_k3_s22_e6_i16_o24', 'r1_k3_s11_e6_i24_o24']
    """
    return [block for spec in decode(blocks) for block in spec.expand()]


def merge(blocks: Sequence[str | BlockSpec]) -> list[str]:
    """Folds consecutive blocks that are repeats of the stage before them into ``r`` > 1.

    Inverse of :func:`flatten` for any network: ``flatten(merge(b)) == flatten(b)``.

    Example:
        >>> merge(["r1_k3_s22_e6_i16_o24", "r1_k3_s11_e6_i24_o24", "r1_k3_s11_e4_i24_o24"])
        ['r2_k3_s22_e6_i16_o24', 'r1_k3_s11_e4_i24_o24']
    """
    stages: list[BlockSpec] = []
    for block in flatten(blocks):
        if stages:
            last = stages[-1]
            repeat = last.replace(repeats=1, strides=(1, 1), input_filters=last.output_filters)
            if block == repeat:
                stages[-1] = last.replace(repeats=last.repeats + 1)
                continue
        stages.append(block)
    return [s.to_string() for s in stages]


def expanded_width(input_filters: int, expansion: Fraction) -> int:
    """The builder's expanded width (``mnas_keras.models.builder.expanded_width``, no TF).

    Example:
        >>> expanded_width(40, Fraction(24, 5)), expanded_width(80, Fraction(23, 10))
        (192, 184)
    """
    if expansion.denominator == 1:
        return int(input_filters * expansion.numerator)
    return make_divisible(input_filters * float(expansion), 8)


def has_expansion(block: BlockSpec) -> bool:
    """Whether the block has an expansion layer (MBConv expand conv or fused conv)."""
    return block.op in ("mbconv", "conv") and block.expansion != 1


def input_widths(blocks: Sequence[BlockSpec], stem_filters: int) -> list[int]:
    """The real width of each block's input tensor (the stem's, then the outputs before)."""
    return [stem_filters] + [b.output_filters for b in blocks[:-1]]


def structure(blocks: Sequence[BlockSpec], stem_filters: int) -> list[tuple]:
    """What each block's graph looks like apart from widths: (expand conv?, shortcut kind).

    Shortcut kinds follow the builder: ``"add"`` (identity residual: stride 1, declared
    ``i == o`` and equal real widths), ``"pool"`` / ``"pool_proj"`` (pooling shortcut,
    projected when widths differ), ``None``.
    """
    out = []
    for block, width in zip(blocks, input_widths(blocks, stem_filters)):
        shortcut = None
        if block.skip == "identity":
            if block.strides == (1, 1) and block.input_filters == block.output_filters == width:
                shortcut = "add"
        elif block.skip == "pool":
            shortcut = "pool" if width == block.output_filters else "pool_proj"
        out.append((has_expansion(block), shortcut))
    return out


def width_groups(blocks: Sequence[BlockSpec], stem_filters: int) -> list[tuple[int, ...]]:
    """Producers tied by residual additions: tuples of block indices (``-1`` = the stem),
    each block output (and the stem) in exactly one group, in network order.

    Example:
        >>> width_groups(flatten(["r1_k3_s11_e1_i16_o16", "r2_k3_s22_e6_i16_o24"]), 16)
        [(-1, 0), (1, 2)]
    """
    parent = {i: i for i in range(STEM, len(blocks))}

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for index, (_, shortcut) in enumerate(structure(blocks, stem_filters)):
        if shortcut in ("add", "pool"):
            parent[find(index)] = find(index - 1)
    groups: dict[int, list[int]] = {}
    for i in range(STEM, len(blocks)):
        groups.setdefault(find(i), []).append(i)
    return sorted((tuple(g) for g in groups.values()), key=lambda g: g[0])


@dataclasses.dataclass(frozen=True)
class Proposal:
    """One NetAdapt proposal: which layer (group) shrinks, and its current width.

    Attributes:
        kind: ``"expansion"`` or ``"bottleneck"``.
        blocks: flat block indices: the one block (expansion), or the group's producers
            (bottleneck; ``-1`` is the stem).
        width: the current number of filters.
    """

    kind: str
    blocks: tuple
    width: int

    @property
    def key(self) -> str:
        """A stable name, e.g. ``expansion:4`` or ``bottleneck:3,4,5`` (``stem`` for -1)."""
        names = ",".join("stem" if b == STEM else str(b) for b in self.blocks)
        return f"{self.kind}:{names}"

    def candidates(self, divisor: int = 8) -> list[int]:
        """Widths to try, largest first: multiples of ``divisor`` below the current width
        (NetAdapt's linear search in steps of 8)."""
        top = (self.width // divisor) * divisor
        if top == self.width:
            top -= divisor
        return list(range(top, 0, -divisor))


def proposals(blocks: Sequence[BlockSpec], stem_filters: int) -> list[Proposal]:
    """Every expansion layer and every width group, in network order (the last block's
    group first appears where its first producer is).

    A group is left out when a block reads it with a declared ``i`` that differs from the
    real width (e.g. MnasNet-small's first block behind an 8-filter stem): shrinking it would
    leave the declared widths inconsistent.
    """
    blocks = list(blocks)
    widths = input_widths(blocks, stem_filters)
    out: list[tuple[int, Proposal]] = []
    for group in width_groups(blocks, stem_filters):
        consumers = [p + 1 for p in group if p + 1 < len(blocks)]
        if any(blocks[c].input_filters != widths[c] for c in consumers):
            continue
        width = stem_filters if group[0] == STEM else blocks[group[0]].output_filters
        out.append((group[0], Proposal("bottleneck", tuple(group), width)))
    for index, block in enumerate(blocks):
        if has_expansion(block):
            out.append((index, Proposal("expansion", (index,), expanded_width(block.input_filters, block.expansion))))
    out.sort(key=lambda item: (item[0], item[1].kind != "bottleneck"))
    return [p for _, p in out]


def find_proposal(blocks: Sequence[BlockSpec], stem_filters: int, key: str) -> Proposal:
    """The proposal named ``key`` (see :attr:`Proposal.key`); ``ProposalError`` if none."""
    for proposal in proposals(blocks, stem_filters):
        if proposal.key == key:
            return proposal
    raise ProposalError(f"no proposal {key!r} in this network")


def _keep_expanded(block: BlockSpec, new_input: int) -> BlockSpec:
    """``block`` reading ``new_input`` filters, its expanded width unchanged."""
    if not has_expansion(block):
        return block.replace(input_filters=new_input)
    target = expanded_width(block.input_filters, block.expansion)
    expansion = Fraction(target, new_input)
    if expansion == 1 or expanded_width(new_input, expansion) != target:
        raise ProposalError(f"block {block.to_string()!r} cannot keep {target} expanded filters with i{new_input}")
    return block.replace(input_filters=new_input, expansion=expansion)


def apply(blocks: Sequence[BlockSpec], stem_filters: int, proposal: Proposal, width: int):
    """The network with ``proposal`` set to ``width`` filters: ``(flat blocks, stem filters)``.

    Raises:
        ProposalError: ``width`` is not below the current width, or the change would alter
            the network's structure.
    """
    blocks = list(blocks)
    if not isinstance(width, int) or not 0 < width < proposal.width:
        raise ProposalError(f"{proposal.key}: width must be in 1..{proposal.width - 1}; received {width!r}")
    new = list(blocks)
    stem = stem_filters
    if proposal.kind == "expansion":
        (index,) = proposal.blocks
        block = blocks[index]
        expansion = Fraction(width, block.input_filters)
        if expansion == 1 or expanded_width(block.input_filters, expansion) != width:
            raise ProposalError(f"{proposal.key}: {width} expanded filters are not expressible from i{block.input_filters}")
        new[index] = block.replace(expansion=expansion)
    elif proposal.kind == "bottleneck":
        for producer in proposal.blocks:
            if producer == STEM:
                stem = width
            else:
                new[producer] = new[producer].replace(output_filters=width)
        for producer in proposal.blocks:
            consumer = producer + 1
            if consumer < len(new):
                new[consumer] = _keep_expanded(new[consumer], width)
    else:
        raise ProposalError(f"proposal kind must be one of {KINDS}; received {proposal.kind!r}")
    if structure(new, stem) != structure(blocks, stem_filters):
        raise ProposalError(f"{proposal.key} at width {width} would change the network's residual structure")
    return new, stem
