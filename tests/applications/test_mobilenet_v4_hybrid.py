"""MobileNetV4 Hybrid models, Mobile MQA and layer scale against timm's definitions.

Right values come from outside the code under test:
* Parameter and multiply-add counts: an independent count written here from timm's own
  token strings (``_gen_mobilenet_v4`` 'hybrid' in timm/models/mobilenetv3.py, copied
  verbatim) with timm's block semantics (_efficientnet_blocks.py: EdgeResidual 'er',
  UniversalInvertedResidual 'uir', MobileAttention 'mqa' with use_multi_query=True and
  timm/layers/attention2d.py MultiQueryAttention2d; EfficientNetBuilder gives every 'uir'
  and 'mqa' block a LayerScale2d of out_chs; convs without bias, BN after each; head_norm:
  1x1 conv to 1280 without bias + BN after the pool; Linear classifier). Its integers are
  written out and round to timm's published 11.07M / 37.76M.
* The MQA block's forward pass: numpy, one head at a time, on the model's weights.
* GELU: ``x * (1 + erf(x / sqrt 2)) / 2`` with ``math.erf``.
"""

import math
import re

import keras
import numpy as np
import pytest

import mnas_keras
from mnas_keras.applications import MobileNetV4HybridLarge, MobileNetV4HybridMedium, WeightsUnavailableError
from mnas_keras.codec import BlockSpec, BlockStringError, encode
from mnas_keras.layers import LayerScale, MultiQueryAttention, activation_layer
from mnas_keras.models.builder import build_block
from mnas_keras.models.profiler import profile

# --------------------------------------------------------------------------- timm, verbatim
TIMM = {
    "mobilenet_v4_hybrid_medium": (32, 256, [
        ['er_r1_k3_s2_e4_c48'],
        ['uir_r1_a3_k5_s2_e4_c80', 'uir_r1_a3_k3_s1_e2_c80'],
        ['uir_r1_a3_k5_s2_e6_c160', 'uir_r1_a0_k0_s1_e2_c160', 'uir_r1_a3_k3_s1_e4_c160',
         'uir_r1_a3_k5_s1_e4_c160', 'mqa_r1_k3_h4_s1_v2_d64_c160', 'uir_r1_a3_k3_s1_e4_c160',
         'mqa_r1_k3_h4_s1_v2_d64_c160', 'uir_r1_a3_k0_s1_e4_c160', 'mqa_r1_k3_h4_s1_v2_d64_c160',
         'uir_r1_a3_k3_s1_e4_c160', 'mqa_r1_k3_h4_s1_v2_d64_c160', 'uir_r1_a3_k0_s1_e4_c160'],
        ['uir_r1_a5_k5_s2_e6_c256', 'uir_r1_a5_k5_s1_e4_c256', 'uir_r2_a3_k5_s1_e4_c256',
         'uir_r1_a0_k0_s1_e2_c256', 'uir_r1_a3_k5_s1_e2_c256', 'uir_r1_a0_k0_s1_e2_c256',
         'uir_r1_a0_k0_s1_e4_c256', 'mqa_r1_k3_h4_s1_d64_c256', 'uir_r1_a3_k0_s1_e4_c256',
         'mqa_r1_k3_h4_s1_d64_c256', 'uir_r1_a5_k5_s1_e4_c256', 'mqa_r1_k3_h4_s1_d64_c256',
         'uir_r1_a5_k0_s1_e4_c256', 'mqa_r1_k3_h4_s1_d64_c256', 'uir_r1_a5_k0_s1_e4_c256'],
        ['cn_r1_k1_s1_c960'],
    ]),
    "mobilenet_v4_hybrid_large": (24, 384, [
        ['er_r1_k3_s2_e4_c48'],
        ['uir_r1_a3_k5_s2_e4_c96', 'uir_r1_a3_k3_s1_e4_c96'],
        ['uir_r1_a3_k5_s2_e4_c192', 'uir_r3_a3_k3_s1_e4_c192', 'uir_r1_a3_k5_s1_e4_c192',
         'uir_r2_a5_k3_s1_e4_c192', 'mqa_r1_k3_h8_s1_v2_d48_c192', 'uir_r1_a5_k3_s1_e4_c192',
         'mqa_r1_k3_h8_s1_v2_d48_c192', 'uir_r1_a5_k3_s1_e4_c192', 'mqa_r1_k3_h8_s1_v2_d48_c192',
         'uir_r1_a5_k3_s1_e4_c192', 'mqa_r1_k3_h8_s1_v2_d48_c192', 'uir_r1_a3_k0_s1_e4_c192'],
        ['uir_r4_a5_k5_s2_e4_c512', 'uir_r1_a5_k0_s1_e4_c512', 'uir_r1_a5_k3_s1_e4_c512',
         'uir_r2_a5_k0_s1_e4_c512', 'uir_r1_a5_k3_s1_e4_c512', 'uir_r1_a5_k5_s1_e4_c512',
         'mqa_r1_k3_h8_s1_d64_c512', 'uir_r1_a5_k0_s1_e4_c512', 'mqa_r1_k3_h8_s1_d64_c512',
         'uir_r1_a5_k0_s1_e4_c512', 'mqa_r1_k3_h8_s1_d64_c512', 'uir_r1_a5_k0_s1_e4_c512',
         'mqa_r1_k3_h8_s1_d64_c512', 'uir_r1_a5_k0_s1_e4_c512'],
        ['cn_r1_k1_s1_c960'],
    ]),
}
# What the count below gives: (trainable params as torch's parameters(), BN channels,
# multiply-adds at the published size, multiply-adds at 64x64).
EXPECTED = {
    "mobilenet_v4_hybrid_medium": (11_074_648, 37_920, 1_271_183_360, 79_343_360),
    "mobilenet_v4_hybrid_large": (37_764_624, 82_200, 7_711_877_120, 207_482_880),
}
TIMM_REPORTED_M = {"mobilenet_v4_hybrid_medium": 11.07, "mobilenet_v4_hybrid_large": 37.76}
PAPER_GMACS = {"mobilenet_v4_hybrid_medium": 1.2, "mobilenet_v4_hybrid_large": 7.2}  # arXiv 2404.10518


def timm_count(stem, size, stages, classes=1000, features=1280):
    """(trainable params, BN channels, multiply-adds) of timm's MobileNetV4 Hybrid, by hand."""
    params = bn = macs = 0

    def conv(cin, cout, k, h, groups=1, norm=True):
        nonlocal params, bn, macs
        params += k * k * cin // groups * cout
        bn += cout if norm else 0
        macs += h * h * k * k * cin // groups * cout

    h = math.ceil(size / 2)
    conv(3, stem, 3, h)
    cin = stem
    for stage in stages:
        for token in stage:
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
                elif kind == "uir":
                    a, k, mid = int(o["a"]), int(o["k"]), cin * e
                    if a:
                        conv(cin, cin, a, out_h if not k else h, groups=cin)
                    conv(cin, mid, 1, out_h if not k else h)
                    if k:
                        conv(mid, mid, k, out_h, groups=mid)
                    conv(mid, cout, 1, out_h)
                    params += cout  # LayerScale2d
                else:  # mqa: norm, query, (K/V down dw + BN), key, value, attention, output
                    heads, d, v, k = int(o["h"]), int(o["d"]), int(o.get("v", 1)), int(o["k"])
                    bn += cin
                    conv(cin, heads * d, 1, h, norm=False)
                    kv_h = math.ceil(h / v)
                    for _ in ("key", "value"):
                        if v > 1:
                            conv(cin, cin, k, kv_h, groups=cin)
                        conv(cin, d, 1, kv_h, norm=False)
                    macs += 2 * (h * h * heads) * (kv_h * kv_h) * d
                    conv(heads * d, cout, 1, h, norm=False)
                    params += cout  # LayerScale2d
                cin, h = cout, out_h
    params += cin * features + features * classes + classes
    bn += features
    macs += cin * features + features * classes
    return params + 2 * bn, bn, macs


@pytest.mark.parametrize("name", sorted(TIMM))
def test_independent_count_matches_recorded_integers_and_timm(name):
    stem, size, stages = TIMM[name]
    params, bn, macs = timm_count(stem, size, stages)
    assert (params, bn, macs) == EXPECTED[name][:3]
    assert timm_count(stem, 64, stages)[2] == EXPECTED[name][3]
    assert round(params / 1e6, 2) == TIMM_REPORTED_M[name]


@pytest.fixture(scope="module")
def hybrid_models():
    return {name: mnas_keras.create_model(name, input_shape=(64, 64, 3)) for name in sorted(TIMM)}


@pytest.mark.parametrize("name", sorted(TIMM))
def test_models_equal_timm_parameters_and_madds(hybrid_models, name):
    params, bn, _, macs64 = EXPECTED[name]
    p = profile(hybrid_models[name])
    assert p.trainable_params == params
    assert p.non_trainable_params == 2 * bn  # BN moving mean and variance
    assert p.madds == macs64


def test_hybrid_large_is_gelu_everywhere_and_medium_relu(hybrid_models):
    def kinds(model):
        out = set()
        for layer in model.layers:
            if isinstance(layer, keras.layers.ReLU):
                out.add("relu")
            elif isinstance(layer, keras.layers.Activation) and layer.name != "predictions":
                out.add(layer.activation.__name__)
        return out

    assert kinds(hybrid_models["mobilenet_v4_hybrid_large"]) == {"gelu"}
    assert kinds(hybrid_models["mobilenet_v4_hybrid_medium"]) == {"relu"}


def test_layer_scale_on_every_uib_and_mqa_block_only(hybrid_models):
    model = hybrid_models["mobilenet_v4_hybrid_medium"]
    scaled = {l.name.rsplit("_layer_scale", 1)[0] for l in model.layers if isinstance(l, LayerScale)}
    tokens = [t for stage in TIMM["mobilenet_v4_hybrid_medium"][2] for t in stage]
    repeats = [int(re.search(r"_r(\d+)", t).group(1)) for t in tokens]
    expected = sum(r for t, r in zip(tokens, repeats) if t.startswith(("uir", "mqa")))
    assert len(scaled) == expected == 2 + 12 + 16  # stages 1-3, one r2 in stage 3
    for layer in model.layers:
        if isinstance(layer, LayerScale):
            np.testing.assert_array_equal(np.asarray(layer.gamma), np.full(layer.gamma.shape, 1e-5, "float32"))


# --------------------------------------------------------------------------- Mobile MQA block
def _mqa_block(spec, shape=(8, 8, 16)):
    inputs = keras.Input(shape)
    return keras.Model(inputs, build_block(inputs, spec))


def _numpy_mqa(model, x, heads, d, v, residual):
    """timm's MobileAttention(MultiQueryAttention2d) in numpy, one query head at a time."""
    import tensorflow as tf

    def w(name):
        return model.get_layer(name).get_weights()

    def bn(y, name):
        gamma, beta, mean, var = w(name)
        return (y - mean) / np.sqrt(var + model.get_layer(name).epsilon) * gamma + beta

    def pw(y, name):
        return np.einsum("bhwc,co->bhwo", y, w(name)[0][0, 0])

    n = bn(x, "block_attn_norm")
    q = pw(n, "block_query")
    kv = []
    for part in ("key", "value"):
        y = n
        if v > 1:
            kernel = w(f"block_{part}_down")[0].astype("float64")
            y = tf.nn.depthwise_conv2d(y, kernel, [1, v, v, 1], "SAME").numpy()
            y = bn(y, f"block_{part}_down_bn")
        kv.append(pw(y, f"block_{part}").reshape(x.shape[0], -1, d))
    key, value = kv
    b, hh, ww, _ = q.shape
    out = np.zeros((b, hh, ww, heads * d))
    for head in range(heads):
        qh = q[..., head * d:(head + 1) * d].reshape(b, -1, d)
        logits = np.einsum("bnd,bmd->bnm", qh, key) / math.sqrt(d)
        p = np.exp(logits - logits.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        out[..., head * d:(head + 1) * d] = np.einsum("bnm,bmd->bnd", p, value).reshape(b, hh, ww, d)
    y = pw(out, "block_output") * w("block_layer_scale")[0]
    return y + x if residual else y


@pytest.mark.parametrize(
    "spec, heads, d, v, residual",
    [
        ("r1_k3_s11_e1_i16_o16_mqa_h4_d8_v2_ls", 4, 8, 2, True),
        ("r1_k3_s11_e1_i16_o16_mqa_h2_d12_ls", 2, 12, 1, True),
        ("r1_k3_s11_e1_i16_o24_mqa_h3_d8_v2_ls", 3, 8, 2, False),
    ],
)
def test_mqa_block_matches_numpy_reference(spec, heads, d, v, residual):
    model = _mqa_block(spec)
    rng = np.random.default_rng(3)
    for weight in model.weights:
        value = rng.uniform(0.5, 1.5, weight.shape) if "variance" in weight.path else rng.normal(0, 0.5, weight.shape)
        weight.assign(value.astype("float32"))
    x = rng.normal(size=(2, 8, 8, 16)).astype("float32")
    expected = _numpy_mqa(model, x.astype("float64"), heads, d, v, residual)
    np.testing.assert_allclose(np.asarray(model(x, training=False)), expected, rtol=1e-4, atol=1e-4)


def test_mqa_block_parameters_by_hand():
    # C 16, h 4, d 8, v2 k3: norm BN 16; query 16*32; 2 x (dw 3*3*16 + BN 16); key, value
    # 16*8 each; output 32*16; layer scale 16.
    model = _mqa_block("r1_k3_s11_e1_i16_o16_mqa_h4_d8_v2_ls")
    weights = 16 * 32 + 2 * 144 + 2 * 16 * 8 + 32 * 16 + 16
    bn_channels = 16 + 2 * 16
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == weights + 2 * bn_channels
    assert model.count_params() == weights + 4 * bn_channels
    # multiply-adds: query 64*16*32, dw 2*16*16*9, k/v 2*16*16*8, attention 2*(64*4)*16*8,
    # output 64*32*16.
    assert profile(model).madds == 64 * 512 + 2 * 2304 + 2 * 2048 + 2 * 256 * 16 * 8 + 64 * 512


def test_attention_core_known_values_and_errors():
    # One query orthogonal to key 0 and aligned with key 1 (d = 1, scale 1): weights
    # softmax([0, 2]) -> value mix by hand.
    q = np.array([[[[2.0]]]], "float32")
    k = np.array([[[[0.0], [1.0]]]], "float32")
    v = np.array([[[[10.0], [20.0]]]], "float32")
    w1 = math.exp(2) / (1 + math.exp(2))
    out = np.asarray(MultiQueryAttention(1, 1)([q, k, v]))
    assert out.shape == (1, 1, 1, 1)
    assert out.item() == pytest.approx(10 * (1 - w1) + 20 * w1, rel=1e-6)
    with pytest.raises(ValueError, match="num_heads"):
        MultiQueryAttention(0, 8)
    with pytest.raises(ValueError, match="expected num_heads \\* key_dim"):
        MultiQueryAttention(2, 8)([np.zeros((1, 2, 2, 8), "float32"), np.zeros((1, 1, 1, 8), "float32"),
                                  np.zeros((1, 1, 1, 8), "float32")])


def test_gelu_is_exact_erf():
    x = np.linspace(-4, 4, 33).astype("float32")
    expected = [0.5 * t * (1 + math.erf(t / math.sqrt(2))) for t in x.astype("float64")]
    np.testing.assert_allclose(np.asarray(activation_layer("gelu")(x)), expected, rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------- grammar
@pytest.mark.parametrize(
    "text, canonical, fields",
    [
        ("r1_k3_s1_e1_i160_o160_ls_v2_d64_h4_mqa", "r1_k3_s11_e1_i160_o160_mqa_h4_d64_v2_ls", (4, 64, 2, True)),
        ("r1_k3_s11_e1_i256_o256_mqa_h4_d64_v1", "r1_k3_s11_e1_i256_o256_mqa_h4_d64", (4, 64, 1, False)),
        ("r1_k5_s22_e4_i48_o80_a3_ls", "r1_k5_s22_e4_i48_o80_a3_ls", (0, 0, 1, True)),
        ("r1_k3_s11_e4_i24_o24_gelu", "r1_k3_s11_e4_i24_o24_gelu", (0, 0, 1, False)),
    ],
)
def test_mqa_and_layer_scale_tokens_round_trip(text, canonical, fields):
    spec = BlockSpec.from_string(text)
    assert (spec.heads, spec.key_dim, spec.kv_stride, spec.layer_scale) == fields
    assert spec.to_string() == canonical
    assert BlockSpec.from_string(canonical) == spec


def test_existing_strings_encode_as_before():
    # Every pre-existing architecture string is already canonical; none gains a token.
    for name in ("mnasnet_a1", "mobilenet_v3_large", "mobilenet_v4_conv_medium"):
        blocks = list(mnas_keras.get_architecture(name).blocks)
        assert encode(blocks) == blocks
        assert not any(re.search(r"_(mqa|ls|h\d|d\d|v\d)", b) for b in blocks)


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ("r1_k3_s11_e1_i16_o16_h4", "'h4'"),
        ("r1_k3_s11_e4_i16_o16_v2", "'v2'"),
        ("r1_k3_s11_e1_i16_o16_conv_ls", "'ls'"),
        ("r1_k3_s11_e2_i16_o16_mqa_h4_d8", "'e2'"),
        ("r1_k3_s22_e1_i16_o16_mqa_h4_d8", "'s22'"),
        ("r1_k0_s11_e1_i16_o16_mqa_h4_d8", "'k0'"),
        ("r1_k3_s11_e1_i16_o16_mqa_h4_d8_a3", "'a3'"),
        ("r1_k3_s11_e1_i16_o16_mqa_h4_d8_se0.25", "'se0.25'"),
        ("r1_k3_s11_e1_i16_o16_mqa_h4_d8_gelu", "'gelu'"),
        ("r1_k3_s11_e1_i16_o16_mqa_h4_d8_poolskip", "'poolskip'"),
        ("r1_k3_s11_e1_i16_o16_mqa_h4", "'d'"),
        ("r1_k3_s11_e1_i16_o16_mqa_h4_d8_v0", "'v0'"),
        ("r1_k3_s11_e1_i16_o16_mqa_h4_d8_ls1", "'ls1'"),
        ("r1_k3_s11_e1_i16_o16_mqa_conv_h4_d8", "'conv'"),
    ],
)
def test_bad_tokens_are_named(bad, fragment):
    with pytest.raises(BlockStringError) as info:
        BlockSpec.from_string(bad)
    assert fragment in str(info.value) and isinstance(info.value, ValueError)


# --------------------------------------------------------------------------- applications
def test_constructor_signature_and_errors(hybrid_models):
    model = hybrid_models["mobilenet_v4_hybrid_medium"]
    assert model.output_shape == (None, 1000) and model.input_shape == (None, 64, 64, 3)
    with pytest.raises(WeightsUnavailableError, match="Hybrid-Large"):
        MobileNetV4HybridLarge(weights="imagenet")
    with pytest.raises(WeightsUnavailableError, match="Hybrid-Medium"):
        MobileNetV4HybridMedium(weights="imagenet")


def test_keras_round_trip_with_mqa_and_layer_scale(tmp_path):
    from mnas_keras.models import MnasNet

    blocks = ["r1_k3_s22_e4_i16_o16_a3_ls", "r1_k3_s11_e1_i16_o16_mqa_h2_d8_v2_ls", "r1_k1_s11_e1_i16_o32_conv"]
    model = MnasNet(blocks, input_shape=(32, 32, 3), stem_filters=16, activation="gelu", head="mobilenetv4",
                    head_filters=64, classes=5, classifier_activation=None)
    rng = np.random.default_rng(0)
    for w in model.weights:
        w.assign(rng.normal(0, 0.1, w.shape).astype("float32") + (1.0 if "variance" in w.path else 0.0))
    path = str(tmp_path / "hybrid.keras")
    model.save(path)
    again = keras.saving.load_model(path)  # safe_mode on
    x = rng.uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(model(x)), rtol=1e-5, atol=1e-5)
    assert sum(isinstance(l, (LayerScale, MultiQueryAttention)) for l in again.layers) == 3


# --------------------------------------------------------------------------- TFLite
# Float parity (< 1e-4) and built-in ops of both Hybrid models: tests/tflite/test_verify.py
# converts every registered model at 32x32. Here int8: one XNNPACK partition.
def test_int8_attention_and_gelu_run_in_one_xnnpack_partition():
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from mnas_keras.models import MnasNet
    from mnas_keras.tflite import compare, conversion_info, convert
    from mnas_keras.tflite.latency import delegation, randomize_batch_norm

    blocks = ["r1_k3_s22_e4_i16_o16_a3_ls", "r1_k3_s11_e1_i16_o16_mqa_h2_d8_v2_ls", "r1_k1_s11_e1_i16_o32_conv"]
    model = MnasNet(blocks, input_shape=(32, 32, 3), stem_filters=16, activation="gelu", head="mobilenetv4",
                    head_filters=64, classes=5, classifier_activation=None)
    randomize_batch_norm(model, seed=1)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, LayerScale):  # trained-looking scales, not 1e-5
            layer.gamma.assign(rng.uniform(0.5, 1.5, layer.gamma.shape).astype("float32"))
    data = rng.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    fb = convert(model, "int8", data, batch_size=1)
    report = delegation(fb)
    assert (report.partitions, report.undelegated) == (1, {})
    assert conversion_info(fb)["float_ops"] == ["SOFTMAX", "BATCH_MATMUL", "GELU"]
    interpreter = Interpreter(model_content=fb)
    kinds = {}
    for op in interpreter._get_ops_details():
        dtype = interpreter._get_tensor_details(op["outputs"][0], 0)["dtype"] if len(op["outputs"]) else None
        kinds.setdefault(op["op_name"], set()).add(np.dtype(dtype).name)
    assert kinds["SOFTMAX"] == kinds["BATCH_MATMUL"] == kinds["GELU"] == {"float32"}
    assert kinds["CONV_2D"] == {"int8"}
    report = compare(model, fb, data)
    assert report.max_rel_diff < 0.1 and report.top1_agreement >= 0.75
    # The stock full-integer conversion of the same graph leaves those operators to
    # built-in int8 kernels: more than one partition.
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([d[None]] for d in data)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    stock = delegation(converter.convert())
    assert stock.partitions > 1 and {"SOFTMAX", "GELU"} <= set(stock.undelegated)


def test_qat_bridge_names_the_hybrid_block():
    from mnas_keras.models import MnasNet
    from mnas_keras.tflite import qat

    model = MnasNet(["r1_k3_s11_e1_i16_o16_mqa_h2_d8_ls"], input_shape=(16, 16, 3), stem_filters=16, classes=3)
    x = np.zeros((2, 16, 16, 3), "float32")
    with pytest.raises(ValueError, match="'r1_k3_s11_e1_i16_o16_mqa_h2_d8_ls'.*no tf_keras twin"):
        qat.quantization_aware_training(model, x, np.zeros(2, "int32"))
