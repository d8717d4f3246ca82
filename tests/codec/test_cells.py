"""The NASNet cell grammar: NASNet-A's published wiring, canonical round trip, strict errors."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mnas_keras.codec import CELL_OPS, CellBlock, CellSpec, CellStringError, decode_cell, encode_cell
from mnas_keras.codec.cells import NASNET_A_NORMAL, NASNET_A_REDUCTION

# NASNet-A as keras.applications / TF-Slim wire it (reference table; 0 = h, 1 = p, 2.. = blocks):
# (input A, op A, input B, op B) per block, all combined by add, and the concatenated states.
NORMAL_WIRING = [(0, "sep5x5", 1, "sep3x3"), (1, "sep5x5", 1, "sep3x3"), (0, "avg3x3", 1, "id"),
                 (1, "avg3x3", 1, "avg3x3"), (0, "sep3x3", 0, "id")]
NORMAL_OUTPUT = (1, 2, 3, 4, 5, 6)  # concat[p, b1..b5] = 6F
REDUCTION_WIRING = [(0, "sep5x5", 1, "sep7x7"), (0, "max3x3", 1, "sep7x7"), (0, "avg3x3", 1, "sep5x5"),
                    (2, "avg3x3", 3, "id"), (2, "sep3x3", 0, "max3x3")]
REDUCTION_OUTPUT = (3, 4, 5, 6)  # concat[b2..b5] = 4F


@pytest.mark.parametrize("text, wiring, output", [(NASNET_A_NORMAL, NORMAL_WIRING, NORMAL_OUTPUT),
                                                  (NASNET_A_REDUCTION, REDUCTION_WIRING, REDUCTION_OUTPUT)])
def test_nasnet_a_cells_are_the_published_wiring(text, wiring, output):
    cell = decode_cell(text)
    assert [(b.inputs[0], b.ops[0], b.inputs[1], b.ops[1]) for b in cell.blocks] == wiring
    assert {b.combine for b in cell.blocks} == {"add"}
    assert cell.output_states == output and cell.num_states == 7
    assert encode_cell(cell) == text


def test_the_13_ops_of_the_paper():
    # NASNet section 3 lists 13 operations: identity, 1x3-3x1 and 1x7-7x1 convs, 3x3 dilated
    # conv, 3x3 average pool, 3x3/5x5/7x7 max pools, 1x1 and 3x3 convs, 3x3/5x5/7x7 separable.
    assert len(CELL_OPS) == len(set(CELL_OPS)) == 13
    assert sum(op.startswith("sep") for op in CELL_OPS) == 3
    assert sum(op.startswith("max") for op in CELL_OPS) == 3


def test_default_output_is_the_unused_states():
    # Block 1 uses 0 and 1, block 2 uses 2 and 0: states 1.. unused are {3} only.
    cell = CellSpec.from_string("sep3x3@0+id@1,max3x3@2&conv1x1@0")
    assert cell.output_states == (3,) and cell.outputs is None
    # Writing the default list out is accepted and dropped from the canonical string.
    assert CellSpec.from_string("sep3x3@0+id@1,max3x3@2&conv1x1@0;out=3") == cell
    assert CellSpec.from_string("sep3x3@0+id@1;out=2").to_string() == "sep3x3@0+id@1"
    # An explicit order is kept (it orders the channels).
    assert CellSpec.from_string("id@0+id@1;out=2.0").output_states == (2, 0)


def test_input_range_by_brute_force():
    # Block b (1-based) may read states 0..b: (b + 1)^2 input pairs (NASNet appendix A).
    prefix = "id@0+id@1,id@0+id@1,"  # two blocks first, so block 3 may read 0..3
    accepted = 0
    for a in range(7):
        for b in range(7):
            try:
                CellSpec.from_string(f"{prefix}id@{a}+id@{b};out=2")
                accepted += 1
            except CellStringError:
                pass
    assert accepted == 16


@pytest.mark.parametrize(
    "text, message",
    [
        ("sep3x3@0", "block 1 'sep3x3@0': expected OP@INPUT+OP@INPUT"),
        ("sep3x3@0+id@1,id@0+id@1+id@0", "block 2 'id@0+id@1+id@0'"),
        ("sep3x3@0+id@2", "input 2 does not exist yet; expected 0..1"),
        ("sep3x3@0+id@1,avg3x3@0+sep5x5@3", "block 2 'avg3x3@0+sep5x5@3': input 3 does not exist yet"),
        ("sep9x9@0+id@1", "unknown op 'sep9x9'"),
        ("sep3x3@0+identity@1", "unknown op 'identity'"),
        ("sep3x3@x+id@1", "bad operand 'sep3x3@x'"),
        ("sep3x3@0+id@1;out=4", "output state 4 does not exist; expected 0..2"),
        ("sep3x3@0+id@1;out=2.2", "repeat a state"),
        ("sep3x3@0+id@1;out=", "bad output token 'out='"),
        ("sep3x3@0+id@1;out=2;out=1", "more than one ';'"),
        ("", "block 1 ''"),
        ("sep3x3@0+id@1,", "block 2 ''"),
        ("id@0+id@1,id@2+id@2,id@3+id@3", None),  # valid: state 4 unused
        ("id@0+id@1,id@2+id@2,id@3+id@3,id@4+id@4,id@5+id@5", None),
        (" sep3x3@0+id@1", "bad operand ' sep3x3@0'"),
    ],
)
def test_errors_name_the_bad_token(text, message):
    if message is None:
        assert CellSpec.from_string(text).to_string() == text
        return
    with pytest.raises(CellStringError) as info:
        CellSpec.from_string(text)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_spec_fields_are_validated():
    with pytest.raises(CellStringError, match="two non-negative ints"):
        CellBlock((0, -1), ("id", "id"))
    with pytest.raises(CellStringError, match="two non-negative ints"):
        CellBlock((True, 0), ("id", "id"))
    with pytest.raises(CellStringError, match="unknown combine 'mul'"):
        CellBlock((0, 1), ("id", "id"), "mul")
    with pytest.raises(CellStringError, match="at least one block"):
        CellSpec(())
    with pytest.raises(CellStringError, match="expected 5 decisions per block"):
        CellSpec.from_decisions([0, 1, 2])
    with pytest.raises(CellStringError, match="op decision 13"):
        CellSpec.from_decisions([0, 1, 13, 0, 0])


@st.composite
def cells(draw):
    count = draw(st.integers(1, 6))
    blocks = []
    for b in range(count):
        inputs = (draw(st.integers(0, b + 1)), draw(st.integers(0, b + 1)))
        ops = (draw(st.sampled_from(CELL_OPS)), draw(st.sampled_from(CELL_OPS)))
        blocks.append(CellBlock(inputs, ops, draw(st.sampled_from(["add", "concat"]))))
    states = 2 + count
    outputs = draw(st.none() | st.lists(st.integers(0, states - 1), min_size=1, max_size=states, unique=True))
    return CellSpec(tuple(blocks), None if outputs is None else tuple(outputs))


@settings(max_examples=100, deadline=None)
@given(cells())
def test_round_trip_is_exact(cell):
    text = cell.to_string()
    assert CellSpec.from_string(text) == cell
    assert CellSpec.from_string(text).to_string() == text
    assert len(cell.decisions()) == 5 * len(cell.blocks)
    again = CellSpec.from_decisions(cell.decisions())
    assert again.blocks == cell.blocks


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="sepidconvavgmax0123456789x_@+&,;.=out ", max_size=40))
def test_fuzz_only_cell_string_errors(text):
    try:
        cell = CellSpec.from_string(text)
    except CellStringError:
        return
    assert CellSpec.from_string(cell.to_string()) == cell


@settings(max_examples=100, deadline=None)
@given(cells(), st.integers(0, 200), st.sampled_from(list("@+&,;.=x9_ ")))
def test_fuzz_mutated_valid_strings(cell, position, char):
    text = cell.to_string()
    position = min(position, len(text))
    mutated = text[:position] + char + text[position:]
    try:
        again = CellSpec.from_string(mutated)
    except CellStringError as err:
        assert str(err)
        return
    assert CellSpec.from_string(again.to_string()) == again
