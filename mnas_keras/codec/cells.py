"""The NASNet cell grammar: ``CellSpec``, ``CellBlock`` and their strings (no TensorFlow).

A cell (NASNet, Zoph et al. 2018, arXiv 1707.07012, section 3) takes two hidden states and
makes ``B`` blocks. Each block picks two inputs, applies one operation to each and combines the
two results. State 0 is ``h_i`` (the previous cell's output, projected to the cell's width),
state 1 is ``h_{i-1}`` (the cell before that), and block ``b`` (1-based) writes state ``b + 1``.
The cell's output concatenates, along channels, the states that no block used (the paper's
rule; the last block's output is always among them), or the states listed after ``;out=``.

A cell string is the blocks joined by ``,``; a block is ``OP@INPUT`` twice, joined by ``+``
(add) or ``&`` (concatenate along channels)::

    sep5x5@0+sep3x3@1,avg3x3@0+id@1;out=1.2.3

The 13 operations of the paper (section 3), by token:

============== =======================================
token           operation
============== =======================================
``id``          identity
``conv1x3_3x1`` 1x3 then 3x1 convolution
``conv1x7_7x1`` 1x7 then 7x1 convolution
``dil3x3``      3x3 dilated convolution (rate 2)
``avg3x3``      3x3 average pooling
``max3x3``      3x3 max pooling
``max5x5``      5x5 max pooling
``max7x7``      7x7 max pooling
``conv1x1``     1x1 convolution
``conv3x3``     3x3 convolution
``sep3x3``      3x3 depthwise-separable convolution
``sep5x5``      5x5 depthwise-separable convolution
``sep7x7``      7x7 depthwise-separable convolution
============== =======================================

The canonical string omits ``;out=`` when the list equals the paper's rule (the unused states,
in increasing order). NASNet-A's cells (``NASNET_A_NORMAL``, ``NASNET_A_REDUCTION``) need the
suffix: as in keras.applications and TF-Slim, the normal cell also outputs ``h_{i-1}`` and the
reduction cell also outputs block 2, which later blocks use.

Example:
    >>> cell = CellSpec.from_string("sep5x5@0+sep3x3@1,avg3x3@2&id@1")
    >>> cell.blocks[1]
    CellBlock(inputs=(2, 1), ops=('avg3x3', 'id'), combine='concat')
    >>> cell.output_states
    (3,)
    >>> cell.to_string()
    'sep5x5@0+sep3x3@1,avg3x3@2&id@1'
    >>> CellSpec.from_string("sep3x3@0+id@4")
    Traceback (most recent call last):
    ...
    mnas_keras.codec.errors.CellStringError: block 1 'sep3x3@0+id@4': input 4 does not exist yet; expected 0..1 (0 = h_i, 1 = h_(i-1), 2.. = earlier blocks' outputs)
"""

from __future__ import annotations

import dataclasses
import re
from typing import Sequence

from mnas_keras.codec.errors import CellStringError

#: The 13 operations of NASNet's search space, in the paper's order.
CELL_OPS = (
    "id",
    "conv1x3_3x1",
    "conv1x7_7x1",
    "dil3x3",
    "avg3x3",
    "max3x3",
    "max5x5",
    "max7x7",
    "conv1x1",
    "conv3x3",
    "sep3x3",
    "sep5x5",
    "sep7x7",
)
#: Block combines and their symbols in a cell string.
COMBINES = ("add", "concat")
_SYMBOL = {"add": "+", "concat": "&"}
_COMBINE_OF = {v: k for k, v in _SYMBOL.items()}
_OPERAND = re.compile(r"^([a-z0-9_]+)@([0-9]+)$")
_OUT = re.compile(r"^out=([0-9]+(\.[0-9]+)*)$")


def _is_index(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class CellBlock:
    """One block: ``ops[0]`` applied to state ``inputs[0]``, ``ops[1]`` to ``inputs[1]``.

    Attributes:
        inputs: two state indices (0 = h_i, 1 = h_(i-1), b + 1 = block b's output).
        ops: two tokens of ``CELL_OPS``.
        combine: ``"add"`` (same width) or ``"concat"`` (along channels).
    """

    inputs: tuple
    ops: tuple
    combine: str = "add"

    def __post_init__(self):
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "ops", tuple(self.ops))
        if len(self.inputs) != 2 or not all(_is_index(i) and i >= 0 for i in self.inputs):
            raise CellStringError(f"block inputs must be two non-negative ints; received {self.inputs!r}")
        if len(self.ops) != 2:
            raise CellStringError(f"a block has two ops; received {self.ops!r}")
        for op in self.ops:
            if op not in CELL_OPS:
                raise CellStringError(f"unknown op {op!r}; expected one of {', '.join(CELL_OPS)}")
        if self.combine not in COMBINES:
            raise CellStringError(f"unknown combine {self.combine!r}; expected 'add' or 'concat'")

    def to_string(self) -> str:
        a, b = (f"{op}@{i}" for op, i in zip(self.ops, self.inputs))
        return f"{a}{_SYMBOL[self.combine]}{b}"


def _default_outputs(blocks) -> tuple:
    used = {i for block in blocks for i in block.inputs}
    return tuple(i for i in range(2 + len(blocks)) if i not in used)


@dataclasses.dataclass(frozen=True)
class CellSpec:
    """A NASNet cell: its blocks and the states its output concatenates.

    Attributes:
        blocks: the ``CellBlock``s, in order (at least one).
        outputs: state indices concatenated into the cell output, in that order; ``None``
            (stored whenever the list equals it) means the paper's rule, every unused state.

    Raises:
        CellStringError: an input index that does not exist yet, an unknown op or combine,
            an output index out of range, repeated, or no output at all.
    """

    blocks: tuple
    outputs: tuple | None = None

    def __post_init__(self):
        blocks = tuple(self.blocks)
        object.__setattr__(self, "blocks", blocks)
        if not blocks:
            raise CellStringError("a cell needs at least one block; received none")
        for b, block in enumerate(blocks):
            if not isinstance(block, CellBlock):
                raise CellStringError(f"block {b + 1} must be a CellBlock; received {type(block).__name__}")
            for i in block.inputs:
                if i >= 2 + b:
                    raise CellStringError(
                        f"block {b + 1} {block.to_string()!r}: input {i} does not exist yet; expected "
                        f"0..{b + 1} (0 = h_i, 1 = h_(i-1), 2.. = earlier blocks' outputs)"
                    )
        if self.outputs is not None:
            outputs = tuple(self.outputs)
            states = 2 + len(blocks)
            if not outputs:
                raise CellStringError("out= lists no state; expected at least one state index")
            for i in outputs:
                if not _is_index(i) or not 0 <= i < states:
                    raise CellStringError(f"output state {i!r} does not exist; expected 0..{states - 1}")
            if len(set(outputs)) != len(outputs):
                raise CellStringError(f"output states {outputs} repeat a state; expected each at most once")
            object.__setattr__(self, "outputs", None if outputs == _default_outputs(blocks) else outputs)

    @property
    def num_states(self) -> int:
        """States of the cell: its two inputs plus one per block."""
        return 2 + len(self.blocks)

    @property
    def output_states(self) -> tuple:
        """The state indices the output concatenates, in order."""
        return self.outputs if self.outputs is not None else _default_outputs(self.blocks)

    @classmethod
    def from_string(cls, text: str) -> "CellSpec":
        """Decodes a cell string (see the module docstring)."""
        if not isinstance(text, str):
            raise CellStringError(f"a cell string must be a str; received {type(text).__name__}")
        body, *tail = text.split(";")
        if len(tail) > 1:
            raise CellStringError(f"cell string {text!r} has more than one ';'; expected BLOCKS[;out=I.J...]")
        outputs = None
        if tail:
            match = _OUT.match(tail[0])
            if not match:
                raise CellStringError(
                    f"bad output token {tail[0]!r}; expected 'out=' and '.'-joined state indices, e.g. 'out=1.2.3'"
                )
            outputs = tuple(int(i) for i in match.group(1).split("."))
        blocks = []
        for b, token in enumerate(body.split(",")):
            blocks.append(_parse_block(token, b + 1))
        return cls(tuple(blocks), outputs)

    def to_string(self) -> str:
        """The canonical cell string; ``CellSpec.from_string(s.to_string()) == s``."""
        text = ",".join(block.to_string() for block in self.blocks)
        if self.outputs is not None:
            text += ";out=" + ".".join(str(i) for i in self.outputs)
        return text

    def __str__(self) -> str:
        return self.to_string()

    def decisions(self) -> tuple:
        """The cell as NASNet's controller emits it: per block (input A, input B, op A,
        op B, combine) as ints, ops indexing ``CELL_OPS``, combine 0 = add, 1 = concat
        (NASNet appendix A.2: 5 decisions per block). The output list is not a decision."""
        out = []
        for block in self.blocks:
            out += [*block.inputs, *(CELL_OPS.index(op) for op in block.ops), COMBINES.index(block.combine)]
        return tuple(out)

    @classmethod
    def from_decisions(cls, decisions: Sequence[int]) -> "CellSpec":
        """The inverse of ``decisions()`` (the paper's unused-state output)."""
        decisions = list(decisions)
        if not decisions or len(decisions) % 5:
            raise CellStringError(f"expected 5 decisions per block; received {len(decisions)}")
        blocks = []
        for b in range(len(decisions) // 5):
            in_a, in_b, op_a, op_b, combine = decisions[5 * b: 5 * b + 5]
            for value, limit, what in ((op_a, len(CELL_OPS), "op"), (op_b, len(CELL_OPS), "op"),
                                       (combine, len(COMBINES), "combine")):
                if not _is_index(value) or not 0 <= value < limit:
                    raise CellStringError(f"block {b + 1}: {what} decision {value!r}; expected 0..{limit - 1}")
            blocks.append(CellBlock((in_a, in_b), (CELL_OPS[op_a], CELL_OPS[op_b]), COMBINES[combine]))
        return cls(tuple(blocks))


def _parse_block(token: str, number: int) -> CellBlock:
    symbols = [c for c in token if c in _COMBINE_OF]
    if len(symbols) != 1:
        raise CellStringError(
            f"block {number} {token!r}: expected OP@INPUT+OP@INPUT (add) or OP@INPUT&OP@INPUT (concat)"
        )
    left, right = token.split(symbols[0])
    inputs, ops = [], []
    for operand in (left, right):
        match = _OPERAND.match(operand)
        if not match:
            raise CellStringError(f"block {number}: bad operand {operand!r}; expected OP@INPUT such as 'sep3x3@0'")
        if match.group(1) not in CELL_OPS:
            raise CellStringError(
                f"block {number}: unknown op {match.group(1)!r}; expected one of {', '.join(CELL_OPS)}"
            )
        ops.append(match.group(1))
        inputs.append(int(match.group(2)))
    block = CellBlock(tuple(inputs), tuple(ops), _COMBINE_OF[symbols[0]])
    return block


def decode_cell(text: str) -> CellSpec:
    """``CellSpec.from_string``; raises ``CellStringError`` naming the bad token."""
    return CellSpec.from_string(text)


def encode_cell(cell: CellSpec) -> str:
    """``cell.to_string()``, the canonical cell string."""
    return cell.to_string()


#: NASNet-A's normal cell (NASNet Fig. 4; the wiring of keras.applications' and TF-Slim's
#: NASNet-A; their output also includes h_(i-1), state 1).
NASNET_A_NORMAL = "sep5x5@0+sep3x3@1,sep5x5@1+sep3x3@1,avg3x3@0+id@1,avg3x3@1+avg3x3@1,sep3x3@0+id@0;out=1.2.3.4.5.6"
#: NASNet-A's reduction cell (same sources; the output also includes block 2, state 3).
NASNET_A_REDUCTION = "sep5x5@0+sep7x7@1,max3x3@0+sep7x7@1,avg3x3@0+sep5x5@1,avg3x3@2+id@3,sep3x3@2+max3x3@0;out=3.4.5.6"
