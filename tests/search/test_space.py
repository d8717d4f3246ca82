"""Search space: the paper's default space, user-defined spaces, decode/encode, sizes."""

import itertools
import json
import random

import pytest

from mnas_keras.codec import BlockSpec, decode, get_architecture
from mnas_keras.search.errors import SearchSpaceError
from mnas_keras.search.space import (
    MOBILENET_V2_STAGES, SearchSpace, StageSpace, arch_key, canonical_skip, get_space,
    mnasnet_space, parse_op,
)


@pytest.fixture(scope="module")
def space():
    return mnasnet_space()


def test_default_space_matches_paper(space):
    assert len(space.stages) == 7
    assert space.nominal_size == 432 ** 7
    # Per stage: op 4 x kernel 2 x se 2 x skip 3, then the deduplicated filters and layers.
    filters = [2, 2, 3, 3, 3, 3, 3]  # 16*0.75 and 24*0.75 round up to the reference's count
    layers = [2, 3, 3, 3, 3, 3, 2]   # one-layer stages cannot lose their layer
    expected = 1
    for f, l in zip(filters, layers):
        expected *= 4 * 2 * 2 * 3 * f * l
    assert space.size == expected
    assert 0 < space.num_architectures() < space.size
    names = [d.name for d in space.decisions]
    assert names[:6] == ["stage1/op", "stage1/kernel", "stage1/se", "stage1/skip", "stage1/filters", "stage1/layers"]
    assert space.decisions[0].choices == ("conv", "dsconv", "mbconv_e3", "mbconv_e6")
    assert space.decisions[11].choices == (1, 2, 3)  # stage2 layers: 2 +- 1
    assert space.decisions[22].choices == (48, 64, 80)  # stage4 filters: 64 x {0.75, 1, 1.25}
    assert "nominal size 2.808e+18" in space.describe()


def test_reference_decodes_to_mobilenet_v2(space):
    assert space.decode(space.reference_decisions()) == list(MOBILENET_V2_STAGES)
    assert space.reference_blocks() == list(MOBILENET_V2_STAGES)


def test_random_samples_build_consistent_chains(space):
    rng = random.Random(0)
    ops_seen = set()
    for _ in range(300):
        sample = space.sample(rng)
        blocks = space.decode(sample)
        specs = decode(blocks)
        assert blocks == [s.to_string() for s in specs]  # canonical
        assert specs[0].input_filters == space.stem_filters
        for prev, cur in zip(specs, specs[1:]):
            assert cur.input_filters == prev.output_filters
        for spec, ref in zip(specs, decode(MOBILENET_V2_STAGES)):
            assert spec.strides == ref.strides
            assert abs(spec.repeats - ref.repeats) <= 1 and spec.repeats >= 1
            assert spec.kernel in (3, 5)
            assert spec.se_ratio in (None, 0.25)
            if spec.op == "dsconv":
                assert spec.expansion == 1
            if spec.op == "conv":
                assert spec.expansion == 1  # the default space's regular conv is not fused
            if spec.op == "mbconv":
                assert spec.expansion in (3, 6)
            ops_seen.add((spec.op, int(spec.expansion)))
        encoded = space.encode(blocks)
        assert space.decode(encoded) == blocks
        # it differs from the sample only in decisions that do not change this network
        # (e.g. the skip choice of a stride-2 stage)
        for i in (i for i, (a, b) in enumerate(zip(sample, encoded)) if a != b):
            assert space.decode([*sample[:i], encoded[i], *sample[i + 1:]]) == blocks
    assert ops_seen == {("conv", 1), ("dsconv", 1), ("mbconv", 3), ("mbconv", 6)}


def test_decision_values_map_to_tokens(space):
    sample = space.reference_decisions()
    names = [d.name for d in space.decisions]
    sample[names.index("stage3/op")] = 0          # conv
    sample[names.index("stage3/kernel")] = 1      # 5
    sample[names.index("stage3/se")] = 1          # 0.25
    sample[names.index("stage3/skip")] = 1        # pool
    sample[names.index("stage3/filters")] = 2     # 40
    sample[names.index("stage3/layers")] = 2      # 4
    blocks = space.decode(sample)
    assert blocks[2] == "r4_k5_s22_e1_i24_o40_se0.25_conv_poolskip"
    assert blocks[3] == "r4_k3_s22_e6_i40_o64"  # next stage's input follows the chain
    sample[names.index("stage3/op")] = 2
    assert space.decode(sample)[2] == "r4_k5_s22_e3_i24_o40_se0.25_poolskip"


def test_noskip_is_canonicalized_where_no_shortcut_applies(space):
    assert canonical_skip(BlockSpec.from_string("r1_k3_s22_e6_i16_o24_noskip")).skip == "identity"
    assert canonical_skip(BlockSpec.from_string("r2_k3_s22_e6_i16_o24_noskip")).skip == "none"
    assert canonical_skip(BlockSpec.from_string("r1_k3_s11_e6_i24_o24_noskip")).skip == "none"
    names = [d.name for d in space.decisions]
    sample = space.reference_decisions()
    sample[names.index("stage2/layers")] = 0  # one layer, stride 2
    sample[names.index("stage2/skip")] = 2    # none
    a = space.decode(sample)
    sample[names.index("stage2/skip")] = 0    # identity
    assert space.decode(sample) == a


def test_num_architectures_by_enumeration():
    space = SearchSpace.from_dict({
        "stem_filters": 16,
        "defaults": {"op": ["dsconv", "mbconv_e3"], "skip": ["identity", "none"], "filters": [0.75, 1.0, 1.5],
                     "layers": [-1, 0]},
        "stages": ["r1_k3_s11_e1_i16_o16", "r2_k3_s22_e6_i16_o24", "r1_k3_s11_e6_i24_o24"],
    })
    all_samples = itertools.product(*(range(n) for n in space.num_choices))
    distinct = {arch_key(space.decode(list(s))) for s in all_samples}
    assert space.num_architectures() == len(distinct)
    assert len(distinct) < space.size


def test_user_defined_space_with_fixed_stages(tmp_path):
    definition = {
        "name": "tiny",
        "stem_filters": 8,
        "defaults": {"kernel": [3, 5], "se": [0, 0.25]},
        "stages": [
            {"reference": "r1_k3_s11_e1_i8_o8_dsconv", "fixed": True},
            {"reference": "r2_k3_s22_e6_i8_o16", "op": ["mbconv_e3", "conv_e4"], "activation": [None, "hswish"]},
            "r1_k5_s22_e6_i16_o24_se0.25",
        ],
    }
    space = SearchSpace.from_dict(definition)
    assert [d.name for d in space.decisions] == [
        "stage2/op", "stage2/kernel", "stage2/se", "stage2/activation", "stage3/kernel", "stage3/se"]
    assert space.size == 2 ** 6
    blocks = space.decode([1, 1, 1, 1, 0, 0])
    assert blocks == ["r1_k3_s11_e1_i8_o8_dsconv", "r2_k5_s22_e4_i8_o16_se0.25_conv_hswish", "r1_k3_s22_e6_i16_o24"]
    path = tmp_path / "space.json"
    path.write_text(json.dumps(space.to_dict()))
    again = SearchSpace.from_json(str(path))
    assert again == space and get_space(str(path)) == space
    assert again.decode([1, 1, 1, 1, 0, 0]) == blocks


def test_from_reference_other_network():
    a1 = get_architecture("mnasnet_a1")
    space = SearchSpace.from_reference(a1.blocks, kernel=(3, 5, 7), se=(0, 0.25))
    canonical = [canonical_skip(s).to_string() for s in decode(a1.blocks)]
    assert canonical[0] == "r1_k3_s11_e1_i32_o16"  # its noskip changes nothing (16 != 32)
    assert space.decode(space.reference_decisions()) == canonical == space.reference_blocks()
    assert space.size == 3 ** 7 * 2 ** 7


@pytest.mark.parametrize("definition, message", [
    ({"stages": []}, "at least one stage"),
    ({"stages": ["r1_k3_s11_e1_i32_o16"], "typo": 1}, "unknown key(s) ['typo']"),
    ({"stages": ["r1_k3_s11_e1_i32_o16_bogus"]}, "bogus"),
    ({"stages": [{"reference": "r1_k3_s11_e1_i32_o16", "op": ["sepconv"]}]}, "unknown ConvOp 'sepconv'"),
    ({"stages": [{"reference": "r1_k3_s11_e1_i32_o16", "op": ["dsconv_e6"]}]}, "no expansion"),
    ({"stages": [{"reference": "r1_k3_s11_e1_i32_o16", "kernel": [3, "5"]}]}, "kernel choices"),
    ({"stages": [{"reference": "r1_k3_s11_e1_i32_o16", "skip": ["residual"]}]}, "skip choices"),
    ({"stages": [{"reference": "r1_k3_s11_e1_i32_o16", "layers": [-1]}]}, "no layer"),
    ({"stages": [{"reference": "r1_k3_s11_e1_i32_o16", "kernels": [3]}]}, "unknown key(s) ['kernels']"),
    ({"stages": [{"reference": "r1_k3_s11_e1_i32_o16", "se": 0.25}]}, "must be a list"),
    ({"stages": ["r1_k3_s11_e1_i32_o16"], "defaults": {"kernal": [3]}}, "'defaults'"),
    ({"stages": [{"reference": "r1_k3_s11_e1_i32_o16", "fixed": True, "kernel": [3, 5]}]}, "is fixed but lists"),
])
def test_bad_definitions_raise_value_errors(definition, message):
    with pytest.raises(SearchSpaceError) as info:
        SearchSpace.from_dict(definition)
    assert isinstance(info.value, ValueError)
    assert message in str(info.value)


def test_bad_samples_raise(space):
    with pytest.raises(SearchSpaceError, match="42 decisions; received 3"):
        space.decode([0, 0, 0])
    sample = [0] * 42
    sample[1] = 2
    with pytest.raises(SearchSpaceError, match=r"stage1/kernel: choice index must be in 0..1; received 2"):
        space.decode(sample)
    with pytest.raises(SearchSpaceError, match="kernel '7' is not among the choices"):
        space.encode(["r1_k7_s11_e1_i32_o16_dsconv"] + list(MOBILENET_V2_STAGES[1:]))
    with pytest.raises(SearchSpaceError, match="unknown search space"):
        get_space("nasnet")
    with pytest.raises(SearchSpaceError, match="not found"):
        SearchSpace.from_json("/nonexistent/space.json")


def test_parse_op():
    assert parse_op("conv_e4")[1] == 4
    assert parse_op("mbconv_e2.5")[1] * 2 == 5
    with pytest.raises(SearchSpaceError, match="needs an expansion"):
        parse_op("mbconv")
    assert StageSpace("r1_k3_s11_e1_i32_o16", op=("mbconv_e72/16",)).options()["op"] == ("mbconv_e72/16",)
