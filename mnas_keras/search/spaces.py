"""The search's space interface and two more spaces: NASNet cells and NAS-RL's macro space.

What the search loop, the controllers and the evaluators need from a space is the
:class:`Space` protocol: ``name``, ``decisions`` (each with ``name``, ``choices`` and
``labels``), ``num_choices``, ``decode(decisions) -> architecture strings``, ``encode`` (its
inverse), ``sample(rng)``, ``reference_decisions()``, ``reference_blocks()``, ``describe()``,
``to_dict()`` (``from_dict`` rebuilds it), ``stem_filters`` and ``network``: which network
recipe builds a decoded sample (``"mnasnet"``: :class:`~mnas_keras.search.latency.recipe.
NetworkRecipe` from block strings; ``"cells"``: ``build_cell_network`` from a normal and a
reduction cell string; ``"macro"``: ``build_macro_network`` from one macro string).
``latency_table`` says whether the latency lookup table covers the space (only MnasNet's
block parts have table keys; the new spaces are measured only). MnasNet's
:class:`~mnas_keras.search.space.SearchSpace` satisfies the protocol.

* :class:`NASNetCellSpace` (NASNet, Zoph et al. 2018, arXiv 1707.07012, section 3 and
  appendix A.2): both cells searched, 5 blocks each, 5 decisions per block (input A, input B,
  op A, op B, combine), 50 decisions in the controller's order (normal cell, then reduction
  cell). Block ``b`` (0-based) chooses its inputs among ``2 + b`` states and its ops among the
  13 of the paper. A sample decodes to ``[normal_cell, reduction_cell]`` cell strings
  (:mod:`mnas_keras.codec.cells`) whose output is the paper's rule (every unused state).
* :class:`NASRLMacroSpace` (NAS-RL, Zoph & Le 2017, arXiv 1611.01578, sections 3.1, 3.3 and
  4.1): per layer filter height and width from {1, 3, 5, 7}, a stride, filters from
  {24, 36, 48, 64}, and for layer ``i`` one yes/no decision per earlier layer ``j`` (does
  ``j`` feed ``i``; the paper's anchor-point sigmoids, one binary action each). A sample
  decodes to one macro string (:mod:`mnas_keras.codec.macro`).

Example:
    >>> space = get_space("nasnet")
    >>> len(space.num_choices), space.num_choices[:10]
    (50, [2, 2, 13, 13, 2, 3, 3, 13, 13, 2])
    >>> normal, reduction = space.decode([0] * 50)
    >>> normal
    'id@0+id@0,id@0+id@0,id@0+id@0,id@0+id@0,id@0+id@0'
    >>> macro = get_space("nasrl")
    >>> macro.num_choices[:9]
    [4, 4, 2, 4, 4, 4, 2, 4, 2]
    >>> macro.decode([1, 1, 0, 0] + [2, 0, 1, 3, 1] + [0] * (len(macro.num_choices) - 9))[0][:34]
    'k3x3_f24,k5x1_s22_f64_in1,k1x1_f24'
"""

from __future__ import annotations

import math
import random
from typing import Mapping, Protocol, Sequence, runtime_checkable

from mnas_keras.codec.cells import CELL_OPS, COMBINES, NASNET_A_NORMAL, NASNET_A_REDUCTION, CellSpec
from mnas_keras.codec.errors import CellStringError, MacroStringError
from mnas_keras.codec.macro import NASRL_FILTERS, NASRL_KERNELS, MacroLayer, MacroSpec
from mnas_keras.search.errors import SearchSpaceError
from mnas_keras.search.space import Decision, SearchSpace, mnasnet_space, uib_space

#: Names ``get_space`` knows (besides a ``.json`` file of MnasNet's stage format).
SPACE_NAMES = ("mnasnet", "uib", "mobilenetv4", "nasnet", "nasrl")


@runtime_checkable
class Space(Protocol):
    """What the search needs from a space (see the module docstring)."""

    name: str
    stem_filters: int
    network: str
    latency_table: bool

    @property
    def num_choices(self) -> list[int]:
        """Choices per decision, in order."""

    def decode(self, decisions: Sequence[int]) -> list[str]:
        """Architecture strings of a sample."""

    def encode(self, blocks: Sequence[str]) -> list[int]:
        """The sample of architecture strings (inverse of ``decode``)."""

    def sample(self, rng: random.Random | None = None) -> list[int]:
        """A uniformly random sample."""

    def reference_blocks(self) -> list[str]:
        """The reference network's architecture strings."""

    def describe(self) -> str:
        """A short human-readable description."""

    def to_dict(self) -> dict:
        """A JSON-able description."""


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SearchSpaceError(f"{name} must be an integer >= {low}; received {value!r}")


def _check_sample(space, decisions) -> list[int]:
    decisions = list(decisions)
    if len(decisions) != len(space.decisions):
        raise SearchSpaceError(
            f"a sample of the {space.name} space has {len(space.decisions)} decisions; received {len(decisions)}"
        )
    for decision, index in zip(space.decisions, decisions):
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(decision.choices):
            raise SearchSpaceError(
                f"decision {decision.name}: choice index must be in 0..{len(decision.choices) - 1}; received {index!r}"
            )
    return decisions


class _Base:
    """Shared sampling and equality of the spaces below."""

    decisions: tuple
    latency_table = False

    @property
    def num_choices(self) -> list[int]:
        """Choices per decision, in order (what controllers need)."""
        return [len(d.choices) for d in self.decisions]

    @property
    def size(self) -> int:
        """The number of decision combinations."""
        return math.prod(self.num_choices)

    def sample(self, rng: random.Random | None = None) -> list[int]:
        """A uniformly random sample (``random.Random`` for reproducibility)."""
        rng = rng or random.Random()
        return [rng.randrange(n) for n in self.num_choices]

    def reference_blocks(self) -> list[str]:
        """The reference network's architecture strings."""
        return self.decode(self.reference_decisions())

    def __eq__(self, other):
        return type(other) is type(self) and self.to_dict() == other.to_dict()

    def __repr__(self):
        return f"{type(self).__name__}({self.to_dict()})"


# ---------------------------------------------------------------------------- NASNet
_CELL_FIELDS = ("input_a", "input_b", "op_a", "op_b", "combine")


class NASNetCellSpace(_Base):
    """NASNet's cell space: a normal and a reduction cell of ``num_blocks`` blocks each.

    Args:
        num_blocks: ``B``, blocks per cell (5 in the paper).
        combines: the combine choices, ``("add", "concat")`` (the paper) or ``("add",)``
            (NASNet-A used add only; the combine is then not a decision).
        num_cells: ``N``, normal cells per stage of the network built around the cells.
        filters: ``F``, the first stage's width.
        stem_filters: the stem convolution's filters.
        stem_cells: reduction cells between the stem and the first stage (0 for small images).
        name: a label stored with runs.

    The reference sample is NASNet-A's wiring (NASNet Fig. 4) with the paper's output rule;
    NASNet-A itself also concatenates states that a later block used, which is not a
    decision of this space.

    Example:
        >>> space = NASNetCellSpace(num_blocks=2, combines=("add",))
        >>> space.num_choices, f"{space.size:.3e}"
        ([2, 2, 13, 13, 3, 3, 13, 13, 2, 2, 13, 13, 3, 3, 13, 13], '1.057e+12')
        >>> space.decode(space.encode(["sep3x3@0+id@1,max3x3@2+sep5x5@0", "id@1+avg3x3@0,id@2+id@2"]))
        ['sep3x3@0+id@1,max3x3@2+sep5x5@0', 'id@1+avg3x3@0,id@2+id@2']
    """

    network = "cells"

    def __init__(self, num_blocks: int = 5, combines: Sequence[str] = COMBINES, num_cells: int = 1,
                 filters: int = 8, stem_filters: int = 16, stem_cells: int = 0, name: str = "nasnet"):
        _check_int("num_blocks", num_blocks, 1)
        _check_int("num_cells", num_cells, 1)
        _check_int("filters", filters, 2)
        _check_int("stem_filters", stem_filters, 1)
        _check_int("stem_cells", stem_cells, 0)
        combines = tuple(combines)
        if not combines or any(c not in COMBINES for c in combines) or len(set(combines)) != len(combines):
            raise SearchSpaceError(f"combines must be distinct values of {list(COMBINES)}; received {list(combines)}")
        self.num_blocks, self.combines = num_blocks, combines
        self.num_cells, self.filters, self.stem_filters, self.stem_cells = num_cells, filters, stem_filters, stem_cells
        self.name = str(name)
        decisions = []
        for c, cell in enumerate(("normal", "reduction")):
            for b in range(num_blocks):
                stage = c * num_blocks + b
                states = tuple(range(2 + b))
                for field, choices in zip(_CELL_FIELDS, (states, states, CELL_OPS, CELL_OPS, combines)):
                    if len(choices) > 1:
                        decisions.append(Decision(f"{cell}/block{b + 1}/{field}", stage, field, choices))
        self.decisions = tuple(decisions)

    def _cells(self, values) -> list[str]:
        cells = []
        for c in range(2):
            numbers = []
            for b in range(self.num_blocks):
                v = values[c * self.num_blocks + b]
                numbers += [v["input_a"], v["input_b"], CELL_OPS.index(v["op_a"]), CELL_OPS.index(v["op_b"]),
                            COMBINES.index(v["combine"])]
            cells.append(CellSpec.from_decisions(numbers).to_string())
        return cells

    def decode(self, decisions: Sequence[int]) -> list[str]:
        """``[normal, reduction]`` canonical cell strings of a sample."""
        decisions = _check_sample(self, decisions)
        values = [{"combine": self.combines[0]} for _ in range(2 * self.num_blocks)]
        for decision, index in zip(self.decisions, decisions):
            values[decision.stage][decision.field] = decision.choices[index]
        return self._cells(values)

    def encode(self, blocks: Sequence[str]) -> list[int]:
        """The sample of ``[normal, reduction]`` cell strings; ``SearchSpaceError`` names the
        cell and what the space cannot express."""
        if isinstance(blocks, str) or len(blocks) != 2:
            raise SearchSpaceError(f"a {self.name} architecture is [normal_cell, reduction_cell]; received {blocks!r}")
        out = []
        for cell_name, text in zip(("normal", "reduction"), blocks):
            try:
                cell = text if isinstance(text, CellSpec) else CellSpec.from_string(text)
            except CellStringError as err:
                raise SearchSpaceError(f"{cell_name} cell: {err}") from None
            if len(cell.blocks) != self.num_blocks:
                raise SearchSpaceError(f"{cell_name} cell has {len(cell.blocks)} blocks; this space has "
                                       f"{self.num_blocks}")
            if cell.outputs is not None:
                raise SearchSpaceError(f"{cell_name} cell {cell.to_string()!r} lists its outputs (';out='); this "
                                       "space's cells output every unused state (the paper's rule)")
            for b, block in enumerate(cell.blocks):
                values = dict(zip(_CELL_FIELDS, (*block.inputs, *block.ops, block.combine)))
                if block.combine not in self.combines:
                    raise SearchSpaceError(f"{cell_name} cell block {b + 1}: combine {block.combine!r} is not among "
                                           f"the choices {list(self.combines)}")
                for field in _CELL_FIELDS:
                    choices = (tuple(range(2 + b)) if field.startswith("input") else
                               CELL_OPS if field.startswith("op") else self.combines)
                    if len(choices) > 1:
                        out.append(choices.index(values[field]))
        return out

    def reference_decisions(self) -> list[int]:
        """NASNet-A's blocks (the first ``num_blocks`` of each cell) as a sample; combines are
        add."""
        cells = []
        for text in (NASNET_A_NORMAL, NASNET_A_REDUCTION):
            spec = CellSpec.from_string(text)
            cells.append(CellSpec(spec.blocks[: self.num_blocks]).to_string())
        return self.encode(cells)

    def describe(self) -> str:
        """A short human-readable description."""
        return (f"search space '{self.name}' (NASNet cells): normal + reduction cell, {self.num_blocks} blocks "
                f"each, {len(self.decisions)} decisions, size {self.size:.3e}; ops {', '.join(CELL_OPS)}; "
                f"combines {'/'.join(self.combines)}; network: stem {self.stem_filters}, {self.stem_cells} stem "
                f"cells, 3 stages of {self.num_cells} normal cell(s), F={self.filters}, doubling per reduction; "
                "latency: measured only")

    def to_dict(self) -> dict:
        """JSON-able; ``NASNetCellSpace.from_dict(space.to_dict()) == space``."""
        return {"kind": "nasnet", "name": self.name, "num_blocks": self.num_blocks, "combines": list(self.combines),
                "num_cells": self.num_cells, "filters": self.filters, "stem_filters": self.stem_filters,
                "stem_cells": self.stem_cells}

    @classmethod
    def from_dict(cls, data: Mapping) -> "NASNetCellSpace":
        """Rebuilds a space from :meth:`to_dict`'s output."""
        return cls(**_kwargs(cls, data, "nasnet"))

    def network_settings(self) -> dict:
        """The ``build_cell_network`` settings of the network around the cells."""
        return {"num_cells": self.num_cells, "filters": self.filters, "stem_filters": self.stem_filters,
                "stem_cells": self.stem_cells}

    def estimate_madds(self, blocks: Sequence[str], input_size: int = 32) -> int:
        """A rough multiply-add count (convolutions only, no TensorFlow) for the synthetic
        evaluator: each cell's 1x1 preamble plus each op at its cell's width and
        resolution (separable k x k: two depthwise + pointwise pairs; k x k conv: k*k*F*F;
        1x7-7x1: 14*F*F; pools and identity free)."""
        normal, reduction = (CellSpec.from_string(b) for b in blocks)
        cost = {"conv1x1": 1, "conv3x3": 9, "dil3x3": 9, "conv1x3_3x1": 6, "conv1x7_7x1": 14}
        size = (input_size - 3) // 2 + 1
        total = size * size * 27 * self.stem_filters
        cells = [(reduction, True)] * self.stem_cells
        for stage in range(3):
            cells += [(reduction, True)] * bool(stage) + [(normal, False)] * self.num_cells
        width = self.filters // 2 ** self.stem_cells
        channels = self.stem_filters
        for s, (cell, is_reduction) in enumerate(cells):
            if is_reduction and s >= self.stem_cells:
                width *= 2
            elif is_reduction:
                width = self.filters // 2 ** (self.stem_cells - s)
            out = -(-size // 2) if is_reduction else size
            total += size * size * channels * width
            for block in cell.blocks:
                for op in block.ops:
                    if op.startswith("sep"):
                        k = int(op[3])
                        total += out * out * 2 * (k * k * width + width * width)
                    elif op in cost:
                        total += out * out * cost[op] * width * width
            channels = width * len(cell.output_states)
            size = out
        return int(total + channels * 10)


# ---------------------------------------------------------------------------- NAS-RL
_MACRO_FIELDS = ("kernel_h", "kernel_w", "stride", "filters")


class NASRLMacroSpace(_Base):
    """NAS-RL's macro space for small images: ``num_layers`` conv layers.

    Args:
        num_layers: layers of every sampled network (the paper started at 6).
        kernels: filter heights and widths (the paper's {1, 3, 5, 7}).
        filters: filter counts (the paper's {24, 36, 48, 64}).
        strides: square strides to choose from (the paper: fixed 1 in one experiment, predicted
            in another); ``(1,)`` makes the stride no decision.
        name: a label stored with runs.

    Layer ``i``'s decisions: kernel height, kernel width, stride, filters, then ``i - 1``
    skip decisions (0 = no, 1 = yes: layer ``j`` feeds layer ``i``), ``j = 1 .. i - 1``.
    A layer with no input reads the image (section 3.3). The reference sample is a plain chain
    of 3x3 convolutions with 36 filters, stride 1.

    Example:
        >>> space = NASRLMacroSpace(num_layers=3, strides=(1,))
        >>> space.num_choices
        [4, 4, 4, 4, 4, 4, 2, 4, 4, 4, 2, 2]
        >>> space.reference_blocks()
        ['k3x3_f36,k3x3_f36_in1,k3x3_f36_in2']
        >>> space.encode(["k1x7_f64,k3x3_f24,k5x5_f36_in1.2"])
        [0, 3, 3, 1, 1, 0, 0, 2, 2, 1, 1, 1]
    """

    network = "macro"

    def __init__(self, num_layers: int = 6, kernels: Sequence[int] = NASRL_KERNELS,
                 filters: Sequence[int] = NASRL_FILTERS, strides: Sequence[int] = (1, 2), name: str = "nasrl"):
        _check_int("num_layers", num_layers, 1)
        self.kernels, self.filters, self.strides = tuple(kernels), tuple(filters), tuple(strides)
        for label, values, high in (("kernels", self.kernels, None), ("filters", self.filters, None),
                                    ("strides", self.strides, 3)):
            if not values or len(set(values)) != len(values) or any(
                    isinstance(v, bool) or not isinstance(v, int) or v < 1 or (high and v > high) for v in values):
                raise SearchSpaceError(f"{label} must be distinct positive integers{' <= 3' if high else ''}; "
                                       f"received {list(values)}")
        self.num_layers, self.name, self.stem_filters = num_layers, str(name), 0
        decisions = []
        for i in range(1, num_layers + 1):
            for field, choices in zip(_MACRO_FIELDS, (self.kernels, self.kernels, self.strides, self.filters)):
                if len(choices) > 1:
                    decisions.append(Decision(f"layer{i}/{field}", i - 1, field, choices))
            for j in range(1, i):
                decisions.append(Decision(f"layer{i}/from{j}", i - 1, f"from{j}", (0, 1)))
        self.decisions = tuple(decisions)

    def decode(self, decisions: Sequence[int]) -> list[str]:
        """``[macro_string]`` of a sample."""
        decisions = _check_sample(self, decisions)
        values = [{"kernel_h": self.kernels[0], "kernel_w": self.kernels[0], "stride": self.strides[0],
                   "filters": self.filters[0]} for _ in range(self.num_layers)]
        for decision, index in zip(self.decisions, decisions):
            values[decision.stage][decision.field] = decision.choices[index]
        layers = []
        for i, v in enumerate(values, start=1):
            anchors = tuple(j for j in range(1, i) if v.get(f"from{j}"))
            layers.append(MacroLayer((v["kernel_h"], v["kernel_w"]), (v["stride"],) * 2, v["filters"], anchors))
        return [MacroSpec(tuple(layers)).to_string()]

    def encode(self, blocks: Sequence[str]) -> list[int]:
        """The sample of ``[macro_string]``; ``SearchSpaceError`` names the layer and value the
        space cannot express."""
        if isinstance(blocks, str) or len(blocks) != 1:
            raise SearchSpaceError(f"a {self.name} architecture is [macro_string]; received {blocks!r}")
        try:
            spec = blocks[0] if isinstance(blocks[0], MacroSpec) else MacroSpec.from_string(blocks[0])
        except MacroStringError as err:
            raise SearchSpaceError(str(err)) from None
        if len(spec.layers) != self.num_layers:
            raise SearchSpaceError(f"macro network has {len(spec.layers)} layers; this space has {self.num_layers}")
        out = []
        for decision in self.decisions:
            layer = spec.layers[decision.stage]
            if decision.field.startswith("from"):
                out.append(int(int(decision.field[4:]) in layer.anchors))
                continue
            if decision.field == "stride" and layer.strides[0] != layer.strides[1]:
                raise SearchSpaceError(f"layer {decision.stage + 1}: strides {layer.strides} are not square")
            value = {"kernel_h": layer.kernel[0], "kernel_w": layer.kernel[1], "stride": layer.strides[0],
                     "filters": layer.filters}[decision.field]
            if value not in decision.choices:
                raise SearchSpaceError(f"layer {decision.stage + 1}: {decision.field} {value} is not among the "
                                       f"choices {list(decision.choices)}")
            out.append(decision.choices.index(value))
        if self.decode(out) != [spec.to_string()]:
            raise SearchSpaceError(f"macro network {spec.to_string()!r} is not in this space (fixed values differ)")
        return out

    def reference_decisions(self) -> list[int] | None:
        """A plain chain: 3x3, stride 1, 36 filters, each layer fed by the one before (None if
        those values are not among the choices)."""
        k = 3 if 3 in self.kernels else self.kernels[0]
        f = 36 if 36 in self.filters else self.filters[0]
        layers = ",".join(f"k{k}x{k}_f{f}" + (f"_in{i - 1}" if i > 1 else "") for i in range(1, self.num_layers + 1))
        try:
            return self.encode([layers])
        except SearchSpaceError:
            return None

    def reference_blocks(self) -> list[str]:
        """The reference chain (see :meth:`reference_decisions`)."""
        decisions = self.reference_decisions()
        return self.decode(decisions if decisions is not None else [0] * len(self.decisions))

    def describe(self) -> str:
        """A short human-readable description."""
        return (f"search space '{self.name}' (NAS-RL macro): {self.num_layers} conv layers, kernels "
                f"{'/'.join(map(str, self.kernels))} (height and width), strides {'/'.join(map(str, self.strides))}, "
                f"filters {'/'.join(map(str, self.filters))}, skip connections from every earlier layer; "
                f"{len(self.decisions)} decisions, size {self.size:.3e}; latency: measured only")

    def to_dict(self) -> dict:
        """JSON-able; ``NASRLMacroSpace.from_dict(space.to_dict()) == space``."""
        return {"kind": "nasrl", "name": self.name, "num_layers": self.num_layers, "kernels": list(self.kernels),
                "filters": list(self.filters), "strides": list(self.strides)}

    @classmethod
    def from_dict(cls, data: Mapping) -> "NASRLMacroSpace":
        """Rebuilds a space from :meth:`to_dict`'s output."""
        return cls(**_kwargs(cls, data, "nasrl"))

    def network_settings(self) -> dict:
        """No settings besides the macro string."""
        return {}

    def estimate_madds(self, blocks: Sequence[str], input_size: int = 32) -> int:
        """Multiply-adds of the convolutions and the classifier (no TensorFlow), with
        inputs zero-padded to the largest size as the builder does."""
        spec = MacroSpec.from_string(blocks[0])
        sizes, channels, total = [], [], 0
        for layer in spec.layers:
            if layer.anchors:
                size = max(sizes[a - 1] for a in layer.anchors)
                c_in = sum(channels[a - 1] for a in layer.anchors)
            else:
                size, c_in = input_size, 3
            out = -(-size // layer.strides[0])
            total += out * out * layer.kernel[0] * layer.kernel[1] * c_in * layer.filters
            sizes.append(out)
            channels.append(layer.filters)
        return int(total + sum(channels[i - 1] for i in spec.output_layers) * 10)


def _kwargs(cls, data, kind) -> dict:
    if not isinstance(data, Mapping):
        raise SearchSpaceError(f"a space definition must be a dict; received {type(data).__name__}")
    data = {k: v for k, v in data.items() if k != "kind"}
    import inspect

    allowed = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = set(data) - allowed
    if unknown:
        raise SearchSpaceError(f"unknown key(s) {sorted(unknown)} in the {kind} space; expected {sorted(allowed)}")
    return data


def space_from_dict(data: Mapping):
    """Any space from its ``to_dict()`` (``kind`` ``"nasnet"``/``"nasrl"``, else MnasNet's
    stage format)."""
    kind = data.get("kind") if isinstance(data, Mapping) else None
    if kind == "nasnet":
        return NASNetCellSpace.from_dict(data)
    if kind == "nasrl":
        return NASRLMacroSpace.from_dict(data)
    return SearchSpace.from_dict(data)


def get_space(name_or_path):
    """A space by name (``"mnasnet"``, ``"uib"`` / ``"mobilenetv4"``, ``"nasnet"``, ``"nasrl"``), from a ``.json`` file of
    MnasNet's stage format, from a dict (:func:`space_from_dict`) or as given.

    Raises:
        SearchSpaceError: an unknown name, naming it and the known ones.

    Example:
        >>> get_space("nasrl").name, get_space("nasnet").network
        ('nasrl', 'cells')
        >>> get_space("darts")
        Traceback (most recent call last):
        ...
        mnas_keras.search.errors.SearchSpaceError: unknown search space 'darts'; expected 'mnasnet', 'uib', 'mobilenetv4', 'nasnet', 'nasrl' or a .json file
    """
    if isinstance(name_or_path, (SearchSpace, NASNetCellSpace, NASRLMacroSpace)):
        return name_or_path
    if isinstance(name_or_path, Mapping):
        return space_from_dict(name_or_path)
    if name_or_path == "mnasnet":
        return mnasnet_space()
    if name_or_path in ("uib", "mobilenetv4"):
        return uib_space()
    if name_or_path == "nasnet":
        return NASNetCellSpace()
    if name_or_path == "nasrl":
        return NASRLMacroSpace()
    if isinstance(name_or_path, str) and name_or_path.endswith(".json"):
        return SearchSpace.from_json(name_or_path)
    raise SearchSpaceError(
        f"unknown search space {name_or_path!r}; expected {', '.join(repr(n) for n in SPACE_NAMES[:-1])}, "
        f"{SPACE_NAMES[-1]!r} or a .json file"
    )
