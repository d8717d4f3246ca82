"""MobileNetV4: UIB blocks (grammar + builder) and the Conv models against timm's definitions.

Right values come from outside the code under test:
* UIB block parameters: the formula of MOBILENET_V4.md, 1[a]*a^2*Cin + Cin*E + 1[k]*k^2*E
  + E*Cout (E = e*Cin), plus BN (gamma, beta trainable; mean, variance not), by hand.
* Model parameters and multiply-adds: an independent count written here from timm's own
  token strings (``_gen_mobilenet_v4`` in timm/models/mobilenetv3.py, copied verbatim),
  with timm's block semantics (_efficientnet_blocks.py: ConvBnAct 'cn', EdgeResidual 'er',
  UniversalInvertedResidual 'uir'; convs without bias, BN after each; head_norm: 1x1 conv
  to 1280 without bias + BN after the pool; Linear classifier). The integers it gives are
  also written out, and agree with timm's published 3.77M / 9.72M / 32.59M and with timm's
  model card for Conv-Large at 384 (6.4 GMACs).
"""

import math
import re

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mnas_keras
from mnas_keras.applications import (
    MobileNetV4ConvLarge,
    MobileNetV4ConvSmall,
    WeightsUnavailableError,
)
from mnas_keras.codec import BlockSpec, BlockStringError
from mnas_keras.models.builder import build_block
from mnas_keras.models.profiler import profile

# --------------------------------------------------------------------------- timm, verbatim
TIMM = {
    "mobilenet_v4_conv_small": (32, 224, [
        "cn_r1_k3_s2_e1_c32", "cn_r1_k1_s1_e1_c32",
        "cn_r1_k3_s2_e1_c96", "cn_r1_k1_s1_e1_c64",
        "uir_r1_a5_k5_s2_e3_c96", "uir_r4_a0_k3_s1_e2_c96", "uir_r1_a3_k0_s1_e4_c96",
        "uir_r1_a3_k3_s2_e6_c128", "uir_r1_a5_k5_s1_e4_c128", "uir_r1_a0_k5_s1_e4_c128",
        "uir_r1_a0_k5_s1_e3_c128", "uir_r2_a0_k3_s1_e4_c128",
        "cn_r1_k1_s1_c960",
    ]),
    "mobilenet_v4_conv_medium": (32, 256, [
        "er_r1_k3_s2_e4_c48",
        "uir_r1_a3_k5_s2_e4_c80", "uir_r1_a3_k3_s1_e2_c80",
        "uir_r1_a3_k5_s2_e6_c160", "uir_r2_a3_k3_s1_e4_c160", "uir_r1_a3_k5_s1_e4_c160",
        "uir_r1_a3_k3_s1_e4_c160", "uir_r1_a3_k0_s1_e4_c160", "uir_r1_a0_k0_s1_e2_c160",
        "uir_r1_a3_k0_s1_e4_c160",
        "uir_r1_a5_k5_s2_e6_c256", "uir_r1_a5_k5_s1_e4_c256", "uir_r2_a3_k5_s1_e4_c256",
        "uir_r1_a0_k0_s1_e4_c256", "uir_r1_a3_k0_s1_e4_c256", "uir_r1_a3_k5_s1_e2_c256",
        "uir_r1_a5_k5_s1_e4_c256", "uir_r2_a0_k0_s1_e4_c256", "uir_r1_a5_k0_s1_e2_c256",
        "cn_r1_k1_s1_c960",
    ]),
    "mobilenet_v4_conv_large": (24, 384, [
        "er_r1_k3_s2_e4_c48",
        "uir_r1_a3_k5_s2_e4_c96", "uir_r1_a3_k3_s1_e4_c96",
        "uir_r1_a3_k5_s2_e4_c192", "uir_r3_a3_k3_s1_e4_c192", "uir_r1_a3_k5_s1_e4_c192",
        "uir_r5_a5_k3_s1_e4_c192", "uir_r1_a3_k0_s1_e4_c192",
        "uir_r4_a5_k5_s2_e4_c512", "uir_r1_a5_k0_s1_e4_c512", "uir_r1_a5_k3_s1_e4_c512",
        "uir_r2_a5_k0_s1_e4_c512", "uir_r1_a5_k3_s1_e4_c512", "uir_r1_a5_k5_s1_e4_c512",
        "uir_r3_a5_k0_s1_e4_c512",
        "cn_r1_k1_s1_c960",
    ]),
}
# What the count below gives (trainable params as torch's parameters(), BN channels,
# multiply-adds at the published size); timm: 3.77M / 9.72M / 32.59M params.
EXPECTED = {
    "mobilenet_v4_conv_small": (3_774_024, 12_544, 186_005_568),
    "mobilenet_v4_conv_medium": (9_715_512, 33_952, 1_080_244_224),
    "mobilenet_v4_conv_large": (32_590_864, 74_776, 6_376_220_672),
}
TIMM_REPORTED_M = {"mobilenet_v4_conv_small": 3.77, "mobilenet_v4_conv_medium": 9.72,
                   "mobilenet_v4_conv_large": 32.59}


def timm_count(stem, size, tokens, classes=1000, features=1280):
    """(trainable params, BN channels, multiply-adds) of timm's MobileNetV4, by hand."""
    params = bn = macs = 0

    def conv(cin, cout, k, h, groups=1):
        nonlocal params, bn, macs
        params += k * k * cin // groups * cout
        bn += cout
        macs += h * h * k * k * cin // groups * cout

    h = math.ceil(size / 2)
    conv(3, stem, 3, h)
    cin = stem
    for token in tokens:
        kind, *rest = token.split("_")
        o = dict(re.match(r"([a-z]+)(\d+)", t).groups() for t in rest)
        for i in range(int(o["r"])):
            stride = int(o["s"]) if i == 0 else 1
            cout, e = int(o["c"]), int(o.get("e", 1))
            out_h = math.ceil(h / stride)
            if kind == "cn":
                conv(cin, cout, int(o["k"]), out_h)
            elif kind == "er":
                conv(cin, cin * e, int(o["k"]), out_h)
                conv(cin * e, cout, 1, out_h)
            else:  # uir: stride on the middle dw if any, else the start dw
                a, k, mid = int(o["a"]), int(o["k"]), cin * e
                if a:
                    conv(cin, cin, a, out_h if not k else h, groups=cin)
                conv(cin, mid, 1, out_h if not k else h)
                if k:
                    conv(mid, mid, k, out_h, groups=mid)
                conv(mid, cout, 1, out_h)
            cin, h = cout, out_h
    params += cin * features + features * classes + classes
    bn += features
    macs += cin * features + features * classes
    return params + 2 * bn, bn, macs


@pytest.mark.parametrize("name", sorted(TIMM))
def test_independent_count_matches_recorded_integers_and_timm(name):
    params, bn, macs = timm_count(*TIMM[name])
    assert (params, bn, macs) == EXPECTED[name]
    assert round(params / 1e6, 2) == TIMM_REPORTED_M[name]


@pytest.fixture(scope="module")
def profiles():
    out = {}
    for name, (_, size, _) in TIMM.items():
        model = mnas_keras.create_model(name, input_shape=(size, size, 3))
        out[name] = profile(model)
        del model
    return out


@pytest.mark.parametrize("name", sorted(TIMM))
def test_models_equal_timm_parameters_and_madds(profiles, name):
    params, bn, macs = EXPECTED[name]
    p = profiles[name]
    assert p.trainable_params == params
    assert p.non_trainable_params == 2 * bn  # BN moving mean and variance
    assert p.madds == macs


def test_conv_large_madds_match_timm_model_card(profiles):
    # huggingface.co/timm/mobilenetv4_conv_large.e600_r384_in1k: "GMACs: 6.4" at 384.
    assert round(profiles["mobilenet_v4_conv_large"].madds / 1e9, 1) == 6.4


# --------------------------------------------------------------------------- UIB blocks
def _block(spec, shape=(16, 16, 16)):
    inputs = keras.Input(shape)
    return keras.Model(inputs, build_block(inputs, spec))


@pytest.mark.parametrize(
    "spec, weights, bn_channels",
    [
        # ExtraDW, Cin 16, E 64, Cout 16: 3*3*16 + 16*64 + 5*5*64 + 64*16; BN 16+64+64+16
        ("r1_k5_s11_e4_i16_o16_a3", 144 + 1024 + 1600 + 1024, 160),
        # IB: 16*64 + 5*5*64 + 64*16; BN 64+64+16
        ("r1_k5_s11_e4_i16_o16", 1024 + 1600 + 1024, 144),
        # ConvNeXt-like: 3*3*16 + 16*64 + 64*16; BN 16+64+16
        ("r1_k0_s11_e4_i16_o16_a3", 144 + 1024 + 1024, 96),
        # FFN: 16*64 + 64*24; BN 64+24
        ("r1_k0_s11_e4_i16_o24", 1024 + 1536, 88),
        # IB + end dw 5x5 on the 16 outputs: 16*64 + 3*3*64 + 64*16 + 5*5*16; BN 64+64+16+16
        ("r1_k3_s11_e4_i16_o16_p5", 1024 + 576 + 1024 + 400, 160),
    ],
)
def test_uib_parameters_by_hand(spec, weights, bn_channels):
    model = _block(spec)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == weights + 2 * bn_channels
    assert model.count_params() == weights + 4 * bn_channels


def test_extra_dw_layers_in_order_without_start_activation():
    model = _block("r1_k5_s11_e4_i16_o16_a3")
    names = [layer.name for layer in model.layers[1:]]
    assert names == [
        "block_start_dw", "block_start_dw_bn",
        "block_expand", "block_expand_bn", "block_expand_act",
        "block_depthwise", "block_depthwise_bn", "block_depthwise_act",
        "block_project", "block_project_bn", "block_add",
    ]


@pytest.mark.parametrize(
    "spec, strided_layer",
    [
        ("r1_k5_s22_e4_i16_o24_a3", "block_depthwise"),  # ExtraDW: the middle dw
        ("r1_k0_s22_e4_i16_o24_a3", "block_start_dw"),  # ConvNeXt-like: the start dw
        ("r1_k0_s22_e4_i16_o24_p3", "block_end_dw"),  # only an end dw
    ],
)
def test_stride_placement(spec, strided_layer):
    model = _block(spec)
    strided = [l.name for l in model.layers if tuple(getattr(l, "strides", (1, 1))) == (2, 2)]
    assert strided == [strided_layer]
    assert model.output_shape == (None, 8, 8, 24)
    assert not any(l.name == "block_add" for l in model.layers)


def test_end_dw_has_no_activation_and_residual_comes_last():
    names = [l.name for l in _block("r1_k0_s11_e2_i16_o16_p3").layers[1:]]
    assert names[-3:] == ["block_end_dw", "block_end_dw_bn", "block_add"]


def _reference_uib(model, x, a, k, p, stride, residual):
    """The UIB of MOBILENET_V4.md written with tf.nn ops on the model's weights."""
    import tensorflow as tf

    def bn(y, name):
        layer = model.get_layer(name)
        gamma, beta, mean, var = layer.get_weights()
        return (y - mean) / np.sqrt(var + layer.epsilon) * gamma + beta

    def dw(y, name, s):
        kernel = model.get_layer(name).get_weights()[0]
        return tf.nn.depthwise_conv2d(y, kernel, [1, s, s, 1], "SAME").numpy()

    def pw(y, name):
        return tf.nn.conv2d(y, model.get_layer(name).get_weights()[0], 1, "SAME").numpy()

    y = x
    if a:
        y = bn(dw(y, "block_start_dw", 1 if k else stride), "block_start_dw_bn")
    y = np.maximum(bn(pw(y, "block_expand"), "block_expand_bn"), 0)
    if k:
        y = np.maximum(bn(dw(y, "block_depthwise", stride), "block_depthwise_bn"), 0)
    y = bn(pw(y, "block_project"), "block_project_bn")
    if p:
        y = bn(dw(y, "block_end_dw", 1 if (a or k) else stride), "block_end_dw_bn")
    return y + x if residual else y


@pytest.mark.parametrize(
    "spec, kernels, stride, residual",
    [
        ("r1_k5_s22_e4_i16_o24_a3", (3, 5, 0), 2, False),
        ("r1_k0_s11_e4_i16_o16_a5", (5, 0, 0), 1, True),
        ("r1_k0_s22_e2_i16_o24_a3", (3, 0, 0), 2, False),
        ("r1_k3_s11_e2_i16_o16_p5", (0, 3, 5), 1, True),
        ("r1_k0_s11_e3_i16_o16", (0, 0, 0), 1, True),
    ],
)
def test_uib_forward_matches_reference(spec, kernels, stride, residual):
    model = _block(spec)
    rng = np.random.default_rng(5)
    for w in model.weights:
        value = rng.uniform(0.5, 1.5, w.shape) if "variance" in w.path else rng.normal(0, 0.5, w.shape)
        w.assign(value.astype("float32"))
    x = rng.normal(size=(2, 16, 16, 16)).astype("float32")
    expected = _reference_uib(model, x, *kernels, stride, residual)
    np.testing.assert_allclose(np.asarray(model(x, training=False)), expected, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------- grammar
@pytest.mark.parametrize(
    "text, canonical, kernels",
    [
        ("r1_k5_s2_e4_i48_o80_a3", "r1_k5_s22_e4_i48_o80_a3", (3, 5, 0)),
        ("r1_k0_s11_e4_i96_o96_a3_p0", "r1_k0_s11_e4_i96_o96_a3", (3, 0, 0)),
        ("r1_k0_s11_e2_i160_o160_a0", "r1_k0_s11_e2_i160_o160", (0, 0, 0)),
        ("r1_k3_s11_e2_i96_o96_p5_a3", "r1_k3_s11_e2_i96_o96_a3_p5", (3, 3, 5)),
    ],
)
def test_uib_tokens_round_trip(text, canonical, kernels):
    spec = BlockSpec.from_string(text)
    assert (spec.start_kernel, spec.kernel, spec.end_kernel) == kernels
    assert spec.to_string() == canonical
    assert BlockSpec.from_string(canonical) == spec


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 7), st.integers(0, 7), st.integers(0, 7), st.integers(1, 2),
    st.integers(1, 8), st.integers(1, 512), st.integers(1, 512),
)
def test_uib_round_trip_property(a, k, p, s, e, i, o):
    valid = k or a or p
    valid = valid if s > 1 else (k or a or p or e != 1)
    text = f"r1_k{k}_s{s}{s}_e{e}_i{i}_o{o}" + (f"_a{a}" if a else "") + (f"_p{p}" if p else "")
    if not valid:
        with pytest.raises(BlockStringError, match="'k0'"):
            BlockSpec.from_string(text)
        return
    spec = BlockSpec.from_string(text)
    assert spec.to_string() == text
    assert (spec.start_kernel, spec.kernel, spec.end_kernel) == (a, k, p)
    assert BlockSpec.from_string(f"r1_k{k}_s{s}{s}_e{e}_i{i}_o{o}_a{a}_p{p}") == spec


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ("r1_k0_s22_e4_i16_o16", "'k0'"),  # a stride needs a depthwise
        ("r1_k0_s11_e1_i16_o16", "'k0'"),  # nothing but a projection left
        ("r1_k0_s11_e1_i16_o16_dsconv", "'k0'"),
        ("r1_k3_s11_e4_i16_o16_conv_a3", "'a3'"),
        ("r1_k3_s11_e1_i16_o16_dsconv_p5", "'p5'"),
        ("r1_k3_s11_e4_i16_o16_a-3", "'a-3'"),
        ("r1_k3_s11_e4_i16_o16_p3.5", "'p3.5'"),
        ("r1_k3_s11_e4_i16_o16_a3_a5", "'a5'"),
    ],
)
def test_uib_bad_tokens_are_named(bad, fragment):
    with pytest.raises(BlockStringError) as info:
        BlockSpec.from_string(bad)
    assert fragment in str(info.value) and isinstance(info.value, ValueError)


# --------------------------------------------------------------------------- applications
def test_constructor_signature_and_weights_file(tmp_path):
    model = MobileNetV4ConvSmall(input_shape=(32, 32, 3), classes=7, classifier_activation=None)
    assert model.output_shape == (None, 7)
    for w in model.weights:
        w.assign(np.random.default_rng(0).normal(size=w.shape).astype("float32"))
    path = str(tmp_path / "mnv4s.weights.h5")
    model.save_weights(path)
    again = MobileNetV4ConvSmall(input_shape=(32, 32, 3), classes=7, classifier_activation=None,
                                 weights=path)
    for a, b in zip(model.weights, again.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    features = MobileNetV4ConvSmall(input_shape=(64, 64, 3), include_top=False, pooling="avg")
    assert features.output_shape == (None, 960)
    with pytest.raises(WeightsUnavailableError, match="MobileNetV4"):
        MobileNetV4ConvLarge(weights="imagenet")


# TFLite: tests/tflite/test_verify.py converts every registered model (these three included)
# with built-in ops only (convert() checks) and float parity < 1e-4.


def test_int8_runs_in_one_xnnpack_partition():
    from mnas_keras.tflite import convert
    from mnas_keras.tflite.latency import delegation

    model = MobileNetV4ConvSmall(input_shape=(64, 64, 3), classes=10, classifier_activation=None)
    data = np.random.default_rng(2).uniform(0, 255, (4, 64, 64, 3)).astype("float32")
    report = delegation(convert(model, "int8", data, batch_size=1))
    assert (report.partitions, report.undelegated) == (1, {})
