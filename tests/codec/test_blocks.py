"""The block-string grammar: compatibility, canonical round trip, strict errors."""

import re
import subprocess
import sys
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mnas_keras.codec import ARCHITECTURES, BlockSpec, BlockStringError, decode, encode
from mnas_keras.codec.blocks import ACTIVATIONS


def tpu_decode(block_string):
    """tensorflow/tpu's MnasNet decoding rule (the oracle): key = leading non-digits,
    value = the rest from the first digit; 'noskip' tested as a substring."""
    options = {}
    for op in block_string.split("_"):
        splits = re.split(r"(\d.*)", op)
        if len(splits) >= 2:
            options[splits[0]] = splits[1]
    return dict(
        repeats=int(options["r"]),
        kernel=int(options["k"]),
        strides=(int(options["s"][0]), int(options["s"][1])),
        expansion=int(options["e"]),
        input_filters=int(options["i"]),
        output_filters=int(options["o"]),
        se_ratio=float(options["se"]) if "se" in options else None,
        id_skip="noskip" not in block_string,
    )


def assert_same_meaning(spec, tpu):
    assert spec.repeats == tpu["repeats"]
    assert spec.kernel == tpu["kernel"]
    assert spec.strides == tpu["strides"]
    assert spec.expansion == tpu["expansion"]
    assert spec.input_filters == tpu["input_filters"]
    assert spec.output_filters == tpu["output_filters"]
    has_se = tpu["se_ratio"] is not None and 0 < tpu["se_ratio"] <= 1
    assert spec.has_se == has_se
    if has_se:
        assert spec.se_ratio == tpu["se_ratio"]
    assert spec.id_skip == tpu["id_skip"]


@pytest.mark.parametrize(
    "block_string",
    [b for name, a in ARCHITECTURES.items() if name.startswith("mnasnet") for b in a.blocks]
    + ["r1_k3_s11_e1_i32_o16_se0.25", "r2_k3_s22_e6_i16_o24_se0.25", "r4_k5_s22_e6_i80_o112_se0.25"],
)
def test_published_strings_match_tpu_meaning(block_string):
    assert_same_meaning(BlockSpec.from_string(block_string), tpu_decode(block_string))


core_tokens = st.fixed_dictionaries(
    {
        "r": st.integers(1, 9).map(str),
        "k": st.sampled_from([1, 3, 5, 7]).map(str),
        "s": st.tuples(st.integers(1, 3), st.integers(1, 3)).map(lambda t: f"{t[0]}{t[1]}"),
        "e": st.integers(1, 9).map(str),
        "i": st.integers(1, 2048).map(str),
        "o": st.integers(1, 2048).map(str),
    },
    optional={
        "se": st.sampled_from(["0", "0.25", "0.5", "1", "1.0", "0.125", "0.0625"]),
        "noskip": st.just(""),
    },
)


@settings(max_examples=300, deadline=None)
@given(core_tokens, st.randoms())
def test_any_tpu_string_decodes_to_the_same_meaning(tokens, random):
    parts = [f"{k}{v}" for k, v in tokens.items()]
    random.shuffle(parts)
    block_string = "_".join(parts)
    assert_same_meaning(BlockSpec.from_string(block_string), tpu_decode(block_string))


expansions = st.one_of(
    st.integers(1, 12).map(Fraction),
    st.tuples(st.integers(1, 400), st.integers(1, 64)).map(lambda t: Fraction(t[0], t[1])),
    st.decimals(min_value="0.1", max_value="12", places=2).filter(lambda d: d > 0).map(lambda d: Fraction(str(d))),
)


@st.composite
def specs(draw):
    op = draw(st.sampled_from(["mbconv", "conv", "dsconv"]))
    se = draw(st.one_of(st.none(), st.floats(min_value=1e-6, max_value=1.0, exclude_min=False)))
    return BlockSpec(
        repeats=draw(st.integers(1, 20)),
        kernel=draw(st.integers(1, 11)),
        strides=draw(st.tuples(st.integers(1, 9), st.integers(1, 9))),
        expansion=Fraction(1) if op == "dsconv" else draw(expansions),
        input_filters=draw(st.integers(1, 4096)),
        output_filters=draw(st.integers(1, 4096)),
        se_ratio=se,
        op=op,
        skip=draw(st.sampled_from(["identity", "pool", "none"])),
        activation=draw(st.one_of(st.none(), st.sampled_from(ACTIVATIONS))),
        se_gate=draw(st.sampled_from(["sigmoid", "hsig"])) if se else "sigmoid",
        se_base=draw(st.sampled_from(["input", "expanded"])) if se else "input",
    )


@settings(max_examples=500, deadline=None)
@given(specs())
def test_round_trip_is_exact_and_encoding_idempotent(spec):
    text = spec.to_string()
    again = BlockSpec.from_string(text)
    assert again == spec
    assert again.to_string() == text
    assert encode(encode([spec])) == [text]


def test_extensions_read_naturally():
    spec = BlockSpec.from_string("r2_k5_s2_e72/16_i16_o24_se0.25_relu_hsig_sexp")
    assert spec.strides == (2, 2)
    assert spec.expansion == Fraction(9, 2)
    assert (spec.activation, spec.se_gate, spec.se_base) == ("relu", "hsig", "expanded")
    assert spec.to_string() == "r2_k5_s22_e4.5_i16_o24_se0.25_relu_hsig_sexp"
    assert BlockSpec.from_string("r1_k3_s11_e11/3_i24_o24").expansion == Fraction(88, 24)
    assert BlockSpec.from_string("r1_k3_s11_e2.3_i80_o80").expansion == Fraction(23, 10)
    assert BlockSpec.from_string("r1_k3_s11_e1_i8_o8_se0").se_ratio is None
    assert BlockSpec.from_string("r1_k3_s22_e1_i8_o16_dsconv_poolskip").skip == "pool"
    assert BlockSpec.from_string("r1_k3_s22_e1_i8_o16_mbconv").to_string() == "r1_k3_s22_e1_i8_o16"


def test_table_strings_are_canonical():
    for arch in ARCHITECTURES.values():
        assert encode(arch.blocks) == list(arch.blocks), arch.name


def test_expand_stage():
    first, *rest = BlockSpec.from_string("r3_k5_s22_e6_i40_o80_se0.25").expand()
    assert first.strides == (2, 2) and first.input_filters == 40 and first.repeats == 1
    assert len(rest) == 2 and all(b.strides == (1, 1) and b.input_filters == 80 for b in rest)


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("R1_k3_s11_e1_i32_o16", "'R1'"),
        ("r1_K3_s11_e1_i32_o16", "lower-case"),
        ("r1_k3_s11_e1_i32_o16_xx2", "'xx2'"),
        ("r1_k3_s11_e1_i32_o16_r2", "duplicated key 'r'"),
        ("r1_k3_s11_e1_i32", "missing required key(s): o"),
        ("k3_s11_e1_i32_o16", "missing required key(s): r"),
        ("r0_k3_s11_e1_i32_o16", "'r0'"),
        ("r1_k0_s11_e1_i32_o16", "'k0'"),
        ("r1_k3_s11_e1_i0_o16", "'i0'"),
        ("r1_k3_s11_e1_i32_o-16", "'o-16'"),
        ("r1_k3_s11_e0_i32_o16", "'e0'"),
        ("r1_k3_s11_e1/0_i32_o16", "'e1/0'"),
        ("r1_k3_s11_e1.5.2_i32_o16", "'e1.5.2'"),
        ("r1_k3_s123_e1_i32_o16", "'s123'"),
        ("r1_k3_s10_e1_i32_o16", "'s10'"),
        ("r1_k3_s11_e1_i32_o16_se1.5", "'se1.5'"),
        ("r1_k3_s11_e1_i32_o16_se-0.1", "'se-0.1'"),
        ("r1_k3_s11_e1_i32_o16_seabc", "'seabc'"),
        ("r1.5_k3_s11_e1_i32_o16", "'r1.5'"),
        ("r1_k3_s11_e1_i32_o16__", "empty token"),
        ("r1_k3_s11_e1_i32_o16_noskip_poolskip", "'poolskip'"),
        ("r1_k3_s11_e1_i32_o16_relu_hswish", "'hswish'"),
        ("r1_k3_s11_e1_i32_o16_hsig", "se0.25"),
        ("r1_k3_s11_e6_i32_o16_dsconv", "e1"),
        ("r1_k3_s11_e1_i32_o16_noskip3", "'noskip3'"),
        ("3_k3", "'3'"),
    ],
)
def test_bad_strings_raise_clear_errors(bad, fragment):
    with pytest.raises(BlockStringError) as info:
        BlockSpec.from_string(bad)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("bad", [None, 3, 2.5, b"r1_k3_s11_e1_i32_o16", ["r1"]])
def test_non_strings_raise(bad):
    with pytest.raises(BlockStringError, match="must be a str"):
        BlockSpec.from_string(bad)


def test_decode_names_the_block_and_rejects_bare_strings():
    with pytest.raises(BlockStringError, match="block 1: .*'k0'"):
        decode(["r1_k3_s11_e1_i32_o16", "r1_k0_s11_e1_i32_o16"])
    with pytest.raises(BlockStringError, match="single string"):
        decode("r1_k3_s11_e1_i32_o16")
    with pytest.raises(BlockStringError, match="empty list"):
        decode([])


def test_spec_fields_are_validated():
    with pytest.raises(BlockStringError, match="repeats"):
        BlockSpec(0, 3, (1, 1), 1, 8, 8)
    with pytest.raises(BlockStringError, match="se_ratio"):
        BlockSpec(1, 3, (1, 1), 1, 8, 8, se_ratio=2.0)
    with pytest.raises(BlockStringError, match="activation"):
        BlockSpec(1, 3, (1, 1), 1, 8, 8, activation="mish")
    with pytest.raises(BlockStringError, match="strides"):
        BlockSpec(1, 3, (0, 1), 1, 8, 8)


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet="rksеeiosnkpl0123456789._/-ABCxyz ", max_size=40))
def test_fuzz_only_block_string_errors(text):
    try:
        spec = BlockSpec.from_string(text)
    except BlockStringError:
        return
    assert BlockSpec.from_string(spec.to_string()) == spec


@settings(max_examples=500, deadline=None)
@given(core_tokens, st.integers(0, 6), st.sampled_from(list("_xS9.-/ A")))
def test_fuzz_mutated_valid_strings(tokens, position, char):
    text = "_".join(f"{k}{v}" for k, v in tokens.items())
    position = min(position * 3, len(text))
    mutated = text[:position] + char + text[position:]
    try:
        BlockSpec.from_string(mutated)
    except BlockStringError as err:
        assert str(err)


def test_codec_imports_no_tensorflow():
    code = (
        "import sys, mnas_keras, mnas_keras.codec; "
        "mnas_keras.decode(['r1_k3_s11_e1_i32_o16']); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
