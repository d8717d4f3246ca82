"""The latency table on UIB parts (issue 20): each MobileNetV4 block variant has its own fitted
scale. Expected values are hand computations from known part costs and known scales; nothing
is timed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mnas_keras.search.latency.parts import KINDS, part_kind
from mnas_keras.search.latency.table import LatencyTable, LatencyTableError

SETTINGS = {"input_size": 32, "stem_filters": 8}
#: One block of each kind, all 8 -> 8 filters at stride 1 (so every block runs at 16x16),
#: except the strided IB block (16x16 -> 8x8) and the general UIB block after it.
BLOCKS = ["r1_k3_s11_e1_i8_o8_dsconv",          # dsconv
          "r1_k3_s11_e4_i8_o8_a5",              # ExtraDW: start 5x5 + middle 3x3
          "r1_k0_s11_e4_i8_o8_a3",              # ConvNeXt-like: start 3x3 only
          "r1_k0_s11_e2_i8_o8",                 # FFN: two 1x1
          "r1_k3_s22_e4_i8_o16",                # IB (= MBConv): middle only, stride 2
          "r1_k5_s11_e2_i16_o16_a3_p3"]         # start + middle + end depthwise
#: The network's part keys and costs (ms), written by hand.
PARTS = {"stem:32x32x3>8": 1.0,
         "block:16x16:r1_k3_s11_e1_i8_o8_dsconv": 2.0,
         "block:16x16:r1_k3_s11_e4_i8_o8_a5": 3.0,
         "block:16x16:r1_k0_s11_e4_i8_o8_a3": 4.0,
         "block:16x16:r1_k0_s11_e2_i8_o8": 5.0,
         "block:16x16:r1_k3_s22_e4_i8_o16": 6.0,
         "block:8x8:r1_k5_s11_e2_i16_o16_a3_p3": 7.0,
         "head:8x8x16": 8.0}
KIND_OF = ["other", "dsconv", "extradw", "convnext", "ffn", "mbconv", "uib", "other"]


def test_uib_parts_have_their_own_kinds():
    table = LatencyTable(SETTINGS, parts=PARTS)
    assert table.parts(BLOCKS) == list(PARTS)
    assert [part_kind(k) for k in PARTS] == KIND_OF
    assert part_kind("block:16x16:r1_k3_s11_e1_i160_o160_mqa_h4_d64_v2_ls") == "mqa"


def test_predict_applies_each_uib_kind_its_own_scale():
    """By hand: 0.25 + other 1.0 * (1 + 8) + dsconv 0.9 * 2 + extradw 1.1 * 3 + convnext 1.2 * 4
    + ffn 0.8 * 5 + mbconv 1.3 * 6 + uib 1.05 * 7 = 0.25 + 9 + 1.8 + 3.3 + 4.8 + 4.0 + 7.8 + 7.35
    = 38.3 ms."""
    scale = {"conv": 5.0, "dsconv": 0.9, "mbconv": 1.3, "extradw": 1.1, "convnext": 1.2, "ffn": 0.8,
             "uib": 1.05, "mqa": 9.0, "other": 1.0}
    table = LatencyTable(SETTINGS, parts=PARTS, fit={"intercept_ms": 0.25, "scale": scale})
    assert table.predict(BLOCKS) == pytest.approx(38.3, rel=1e-12)
    assert table.kind_sums(BLOCKS) == {"conv": 0.0, "dsconv": 2.0, "mbconv": 6.0, "extradw": 3.0, "convnext": 4.0,
                                       "ffn": 5.0, "uib": 7.0, "mqa": 0.0, "other": 9.0}


def test_a_fit_without_uib_kinds_gives_them_the_mbconv_scale(tmp_path):
    """A table fitted before the UIB kinds existed (its fit names conv/dsconv/mbconv/other
    only) still loads, and its UIB parts take the mbconv scale. By hand: 0.5 + 1.0 * 9 +
    0.9 * 2 + 1.2 * (3 + 4 + 5 + 6 + 7) = 41.3 ms."""
    old = LatencyTable(SETTINGS, parts=PARTS).to_dict()
    old["fit"] = {"intercept_ms": 0.5, "scale": {"conv": 7.0, "dsconv": 0.9, "mbconv": 1.2, "other": 1.0}, "models": 12}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    table = LatencyTable.load(str(path), check=False)
    assert table.predict(BLOCKS) == pytest.approx(41.3, rel=1e-12)
    old["fit"]["scale"]["sepconv"] = 1.0
    path.write_text(json.dumps(old))
    with pytest.raises(LatencyTableError, match="unknown part kind.*sepconv"):
        LatencyTable.load(str(path), check=False)


def test_refit_recovers_known_per_kind_scales():
    """Twelve networks whose latencies are exactly 0.4 ms + sum over kinds of a known scale x
    the kind's parts (random part costs, so the kinds are separable): the ridge-free fit
    recovers every scale, including each UIB variant's, and a kind no network contains
    (``uib``) takes the mbconv scale."""
    truth = {"other": 1.0, "dsconv": 0.9, "extradw": 1.15, "convnext": 1.25, "ffn": 0.85, "mbconv": 1.05}
    first = ["r1_k3_s11_e1_i8_o8_dsconv", "r1_k5_s11_e1_i8_o8_dsconv"]
    uib = ["r1_k3_s11_e4_i8_o{}_a5", "r1_k0_s11_e4_i8_o{}_a3", "r1_k0_s11_e2_i8_o{}", "r1_k5_s11_e4_i8_o{}"]
    # the last block's width (8 or 16) varies the head, so stem + head is not a constant
    combos = [(a, b, c, o) for a in range(2) for b in range(4) for c in range(4) for o in (8, 16)]
    rng = np.random.default_rng(0)
    table = LatencyTable(SETTINGS)
    networks = [[first[a], uib[b].format(8), uib[c].format(o)]
                for a, b, c, o in (combos[i] for i in rng.choice(len(combos), 12, replace=False))]
    for blocks in networks:
        table.update_parts({k: float(rng.uniform(0.5, 3.0)) for k in table.missing(blocks)})
    for blocks in networks:
        expected = 0.4 + sum(truth[part_kind(k)] * ms for k, ms in table.breakdown(blocks))
        table.add_measurement(blocks, expected, refit=False)
    fit = table.refit(ridge=0.0)
    assert fit["models"] == 12 and fit["intercept_ms"] == pytest.approx(0.4, abs=1e-6)
    for kind, value in truth.items():
        assert fit["scale"][kind] == pytest.approx(value, abs=1e-6), kind
    assert fit["scale"]["uib"] == pytest.approx(truth["mbconv"], abs=1e-6)
    assert set(fit["scale"]) == set(KINDS)
