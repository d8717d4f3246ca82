"""The NAS-RL macro grammar: canonical round trip, strict errors naming the token."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mnas_keras.codec import MacroLayer, MacroSpec, MacroStringError, decode_macro, encode_macro
from mnas_keras.codec.macro import NASRL_FILTERS, NASRL_KERNELS, NASRL_STRIDES


def test_paper_value_sets():
    # NAS-RL section 4.1 (CIFAR-10): heights/widths {1,3,5,7}, filters {24,36,48,64},
    # strides {1,2,3} when predicted; 4 * 4 * 4 = 64 choices per layer at stride 1 and
    # 64 * 9 = 576 with predicted strides (reference [calc]).
    assert NASRL_KERNELS == (1, 3, 5, 7) and NASRL_FILTERS == (24, 36, 48, 64) and NASRL_STRIDES == (1, 2, 3)
    layers = {MacroLayer((h, w), (sh, sw), f).to_string()
              for h in NASRL_KERNELS for w in NASRL_KERNELS for f in NASRL_FILTERS
              for sh in NASRL_STRIDES for sw in NASRL_STRIDES}
    assert len(layers) == 576


def test_decode_meaning_and_canonical_form():
    spec = decode_macro("k1x1_f24,k3x3_f48")
    shuffled = MacroSpec.from_string("k1x1_f24,f36_in1_s2_k5x3")
    assert shuffled.layers[1] == MacroLayer((5, 3), (2, 2), 36, (1,))
    assert encode_macro(shuffled) == "k1x1_f24,k5x3_s22_f36_in1"
    assert MacroSpec.from_string("k3x3_s11_f24").to_string() == "k3x3_f24"
    # Layers nothing reads go to the classifier: here 2 (read by none) and 4.
    chain = MacroSpec.from_string("k3x3_f24,k3x3_f24_in1,k3x3_f24_in1,k3x3_f24_in3")
    assert chain.output_layers == (2, 4)


@pytest.mark.parametrize(
    "text, message",
    [
        ("k3x3_f24,k3x3_f24_in2", "layer 2 'k3x3_f24_in2': anchor 2 is not an earlier layer; expected 1..1"),
        ("k3x3_f24_in1", "anchor 1 is not an earlier layer; expected none (layer 1 reads the image)"),
        ("k3x3_f24,k3x3_f24,k3_f24_in1", "layer 3 'k3_f24_in1': bad token 'k3'"),
        ("k3x3_s4_f24", "bad token 's4'"),
        ("k3x3_f24_x9", "bad token 'x9'"),
        ("k3x3", "missing the filters token (fN)"),
        ("f24", "missing the kernel token (kHxW)"),
        ("k3x3_k5x5_f24", "token 'k5x5' repeats a kernel token"),
        ("k3x3_f24,k3x3_f24,k3x3_f24_in2.1", "layer 3 'k3x3_f24_in2.1': anchors (2, 1) must increase"),
        ("k0x3_f24", "kernel must be two positive ints"),
        ("k3x3_f0", "filters must be a positive int"),
        ("", "layer 1 '': bad token ''"),
        ("k3x3_f24,", "layer 2 '': bad token ''"),
    ],
)
def test_errors_name_the_bad_token(text, message):
    with pytest.raises(MacroStringError) as info:
        MacroSpec.from_string(text)
    assert message in str(info.value) and isinstance(info.value, ValueError)


@st.composite
def macros(draw):
    layers = []
    for i in range(1, draw(st.integers(1, 8)) + 1):
        anchors = draw(st.lists(st.integers(1, i - 1), unique=True)) if i > 1 else []
        layers.append(MacroLayer((draw(st.integers(1, 9)), draw(st.integers(1, 9))),
                                 (draw(st.integers(1, 3)), draw(st.integers(1, 3))),
                                 draw(st.sampled_from(NASRL_FILTERS + (1, 100))), tuple(sorted(anchors))))
    return MacroSpec(tuple(layers))


@settings(max_examples=100, deadline=None)
@given(macros())
def test_round_trip_is_exact(spec):
    text = spec.to_string()
    assert MacroSpec.from_string(text) == spec and MacroSpec.from_string(text).to_string() == text


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="ksfinx0123456789_.,", max_size=40))
def test_fuzz_only_macro_string_errors(text):
    try:
        spec = MacroSpec.from_string(text)
    except MacroStringError:
        return
    assert MacroSpec.from_string(spec.to_string()) == spec


@settings(max_examples=100, deadline=None)
@given(macros(), st.integers(0, 200), st.sampled_from(list("_.,x9kfsi ")))
def test_fuzz_mutated_valid_strings(spec, position, char):
    text = spec.to_string()
    position = min(position, len(text))
    try:
        again = MacroSpec.from_string(text[:position] + char + text[position:])
    except MacroStringError as err:
        assert str(err)
        return
    assert MacroSpec.from_string(again.to_string()) == again
