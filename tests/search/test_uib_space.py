"""UIB (MobileNetV4's Universal Inverted Bottleneck) as a ConvOp choice of the search space:
labels -> block strings (hand-written), round trips, building and TFLite conversion, latency
part keys, and a 2-sample synthetic search. Expected block strings follow the UIB table of
shared/reference/MOBILENET_V4.md (ExtraDW = start + middle depthwise, IB = middle only,
ConvNeXt-like = start only, FFN = none)."""

import json
import random

import numpy as np
import pytest

from mnas_keras.codec import decode, get_architecture
from mnas_keras.search.errors import SearchSpaceError
from mnas_keras.search.latency.parts import network_parts, part_kind, space_parts
from mnas_keras.search.space import SearchSpace, get_space, op_label, uib_space

UIB_OPS = ["ib", "extradw3", "convnext", "ffn", "uib_a3_p5"]
SPACE = {
    "name": "uib-tiny",
    "stem_filters": 16,
    "stages": [{"reference": "r1_k3_s11_e1_i16_o16_dsconv", "fixed": True},
               {"reference": "r1_k3_s11_e4_i16_o16", "op": UIB_OPS, "kernel": [3, 5]}],
}
# (op, kernel) -> the UIB stage's block string, written by hand.
EXPECTED = {
    ("ib", 3): "r1_k3_s11_e4_i16_o16", ("ib", 5): "r1_k5_s11_e4_i16_o16",
    ("extradw3", 3): "r1_k3_s11_e4_i16_o16_a3", ("extradw3", 5): "r1_k5_s11_e4_i16_o16_a3",
    ("convnext", 3): "r1_k0_s11_e4_i16_o16_a3", ("convnext", 5): "r1_k0_s11_e4_i16_o16_a5",
    ("ffn", 3): "r1_k0_s11_e4_i16_o16", ("ffn", 5): "r1_k0_s11_e4_i16_o16",
    ("uib_a3_p5", 3): "r1_k3_s11_e4_i16_o16_a3_p5", ("uib_a3_p5", 5): "r1_k5_s11_e4_i16_o16_a3_p5",
}


def test_uib_labels_from_a_json_file_decode_to_the_hand_written_blocks(tmp_path):
    path = tmp_path / "uib.json"
    path.write_text(json.dumps(SPACE))
    space = get_space(str(path))
    assert [d.name for d in space.decisions] == ["stage2/op", "stage2/kernel"]
    for (op, kernel), block in EXPECTED.items():
        sample = [UIB_OPS.index(op), [3, 5].index(kernel)]
        assert space.decode(sample) == ["r1_k3_s11_e1_i16_o16_dsconv", block]
        # encode gives back a sample of the same network (FFN ignores the kernel: the first one)
        assert space.encode(space.decode(sample)) == ([3, 0] if op == "ffn" else sample)
    assert space.num_architectures() == len(set(EXPECTED.values())) == 9  # both FFN kernels: one network
    assert [op_label(s) for s in decode(["r1_k5_s11_e4_i16_o16_a3", "r1_k0_s11_e4_i16_o16_a5",
                                         "r1_k0_s11_e2_i16_o16", "r1_k0_s11_e4_i16_o16_a3_p5"])] == \
        ["extradw3_e4", "convnext_e4", "ffn_e2", "uib_a3_p5_nomid_e4"]


def test_named_uib_space_round_trips_and_holds_mobilenet_v4_conv_small():
    space = get_space("mobilenetv4")
    assert space == uib_space() == get_space("uib")
    conv_small = get_architecture("mobilenet_v4_conv_small").blocks
    assert space.decode(space.reference_decisions()) == list(conv_small)
    assert space.encode(conv_small) == space.reference_decisions()
    rng = random.Random(0)
    for _ in range(20):
        blocks = space.decode(space.sample(rng))
        assert space.decode(space.encode(blocks)) == blocks
        assert [s.to_string() for s in decode(blocks)] == blocks


def test_uib_label_errors_name_the_label():
    with pytest.raises(SearchSpaceError, match=r"ConvOp 'ffn' has no depthwise conv to take the stride"):
        SearchSpace.from_dict({"stages": [{"reference": "r1_k3_s22_e4_i32_o16", "op": ["ib", "ffn"]}]})
    with pytest.raises(SearchSpaceError, match=r"unknown ConvOp 'extradw_x'.*'convnext', 'ffn'"):
        SearchSpace.from_dict({"stages": [{"reference": "r1_k3_s11_e4_i32_o16", "op": ["extradw_x"]}]})
    with pytest.raises(SearchSpaceError, match=r"'ffn' with the expansion 1 .* e.g. 'ffn_e2'"):
        SearchSpace.from_dict({"stages": [{"reference": "r1_k3_s11_e1_i32_o32", "op": ["ffn"]}]})
    with pytest.raises(SearchSpaceError, match=r"unknown search space 'mnv4'; expected 'mnasnet', 'uib'"):
        get_space("mnv4")


# Every UIB variant once (start / middle / end depthwise kernels, strides on each kind).
NETWORK = ["r1_k0_s22_e4_i8_o16_a3",       # ConvNeXt-like, strided start dw
           "r1_k3_s11_e4_i16_o16_a5",      # ExtraDW
           "r1_k5_s22_e2_i16_o24",          # IB, strided
           "r1_k0_s11_e2_i24_o24",          # FFN
           "r1_k3_s11_e3_i24_o24_a3_p5"]    # start + middle + end dw
DEPTHWISE = 1 + 2 + 1 + 0 + 3


def test_every_uib_op_builds_and_converts_to_builtin_ops():
    keras = pytest.importorskip("keras")
    from mnas_keras.search.latency.recipe import NetworkRecipe
    from mnas_keras.tflite import check_builtin_ops, convert, run_tflite

    model = NetworkRecipe(input_size=32, stem_filters=8, head_filters=16).build(NETWORK)
    tflite = convert(model, input_shape=(32, 32, 3))
    ops = check_builtin_ops(tflite)
    assert ops["DEPTHWISE_CONV_2D"] == DEPTHWISE
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(run_tflite(tflite, x)[0], np.asarray(model(x, training=False)), atol=1e-4)
    keras.backend.clear_session()


def test_part_keys_of_a_uib_network_cover_every_block():
    keys = network_parts(["r2_k0_s22_e4_i8_o16_a3", "r1_k5_s11_e2_i16_o16_a3_p5"], 32, stem_filters=8)
    assert keys == ["stem:32x32x3>8", "block:16x16:r1_k0_s22_e4_i8_o16_a3", "block:8x8:r1_k0_s11_e4_i16_o16_a3",
                    "block:8x8:r1_k5_s11_e2_i16_o16_a3_p5", "head:8x8x16"]
    assert [part_kind(k) for k in keys] == ["other", "convnext", "convnext", "uib", "other"]
    # The table a UIB space needs holds every part of every network in it.
    space = SearchSpace.from_dict(SPACE)
    needed = set(space_parts(space, 32))
    for sample in [[o, k] for o in range(len(UIB_OPS)) for k in range(2)]:
        assert set(network_parts(space.decode(sample), 32, stem_filters=16)) <= needed
    assert len([k for k in needed if k.startswith("block:")]) == 1 + 9  # fixed dsconv + 9 distinct UIB blocks


def test_two_sample_synthetic_search_over_the_uib_space(tmp_path):
    from mnas_keras.search.evaluation.synthetic import SyntheticEvaluator
    from mnas_keras.search.run.journal import Journal
    from mnas_keras.search.run.search import Search

    space = uib_space()
    Search(space, SyntheticEvaluator(space), str(tmp_path), seed=0, num_samples=2, top_k=1, log=None,
           export=False, tensorboard=False, controller_options={"hidden_size": 16, "batch_size": 2}).run()
    results = [r for r in Journal(str(tmp_path / "journal.jsonl")).records if r["event"] == "result"]
    assert [r["step"] for r in results] == [0, 1]
    for r in results:
        assert r["status"] == "ok" and r["blocks"] == space.decode(r["decisions"])
        assert space.decode(space.encode(r["blocks"])) == r["blocks"]


def test_synthetic_madds_count_the_uib_start_and_end_depthwise():
    from mnas_keras.search.evaluation.synthetic import estimate_madds

    # By hand, 8x8 input: stem 4*4*3*9*8 = 3456; ExtraDW at 4x4, 8 -> 16 -> 8: start 5x5 dw 4*4*8*25 = 3200,
    # expansion 4*4*8*16 = 2048, middle 3x3 dw + projection 4*4*16*(9+8) = 4352, end 3x3 dw 4*4*8*9 = 1152;
    # head 4*4*8*16 = 2048; classifier 16*10 = 160.
    madds = estimate_madds(["r1_k3_s11_e2_i8_o8_a5_p3"], input_size=8, stem_filters=8, head_filters=16, classes=10)
    assert madds == 3456 + 3200 + 2048 + 4352 + 1152 + 2048 + 160
