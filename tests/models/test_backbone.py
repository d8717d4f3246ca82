"""MnasNet backbone: block semantics, endpoints, options, serialization, profiler."""

import keras
import numpy as np
import pytest

import mnas_keras
from mnas_keras import MnasNet, profile
from mnas_keras.layers import DropConnect

TINY = ["r1_k3_s11_e1_i32_o16", "r2_k3_s22_e6_i16_o24_se0.25", "r2_k5_s22_e3_i24_o40_se0.25_hswish_hsig_sexp"]


def layer_types(model):
    return [layer.__class__.__name__ for layer in model.layers]


def test_mbconv_semantics_follow_tpu():
    m = MnasNet(["r1_k3_s11_e1_i32_o16", "r2_k3_s22_e6_i16_o24_se0.25"], input_shape=(32, 32, 3), classes=10)
    names = [layer.name for layer in m.layers]
    assert "stage1_block1_expand" not in names  # e == 1: no expand conv
    assert m.get_layer("stage2_block1_expand").filters == 96  # 16 * 6
    assert m.get_layer("stage2_block1_se_reduce").filters == 4  # int(16 * 0.25): from INPUT filters
    assert m.get_layer("stage2_block2_se_reduce").filters == 6  # int(24 * 0.25)
    assert "stage2_block1_add" not in names and "stage2_block2_add" in names  # stride / i==o rule
    assert m.get_layer("head_conv").filters == 1280
    assert m.get_layer("predictions").units == 10


def test_mobilenet_v3_extensions():
    m = MnasNet(["r1_k5_s22_e4.5_i16_o24_se0.25_relu_hsig_sexp"], input_shape=(32, 32, 3), stem_filters=16, classes=10)
    assert m.get_layer("stage1_block1_expand").filters == 72
    assert m.get_layer("stage1_block1_se_reduce").filters == 24  # make_divisible(72 * 0.25)
    assert m.get_layer("stage1_block1_se_gate").get_config()["activation"] == "hard_sigmoid"
    assert isinstance(m.get_layer("stage1_block1_expand_act"), keras.layers.ReLU)


def test_mnasnet_small_declared_input_quirk():
    """Stage 1 declares i16 behind an 8-filter stem: no expand, no shortcut (tpu rule)."""
    m = mnas_keras.create_model("mnasnet_small", input_shape=(32, 32, 3))
    names = [layer.name for layer in m.layers]
    assert m.get_layer("stem_conv").filters == 8
    assert "stage1_block1_add" not in names
    assert m.get_layer("stage1_block1_project").input.shape[-1] == 8


def test_conv_ops_and_skip_ops():
    m = MnasNet(
        ["r1_k3_s11_e1_i32_o16_conv", "r2_k3_s22_e1_i16_o24_dsconv_poolskip", "r1_k3_s11_e3_i24_o24_conv_noskip",
         "r2_k5_s11_e6_i24_o24_swish"],
        input_shape=(32, 32, 3), classes=10,
    )
    names = [layer.name for layer in m.layers]
    assert m.get_layer("stage1_block1_conv").kernel_size == (3, 3)
    assert "stage2_block1_skip_pool" in names and "stage2_block1_skip_proj" in names
    assert "stage2_block1_add" in names and "stage2_block2_add" in names
    assert isinstance(m.get_layer("stage2_block1_pointwise_act"), keras.layers.ReLU)  # dsconv: non-linear output
    assert m.get_layer("stage3_block1_project").filters == 24  # fused conv projects
    assert "stage3_block1_add" not in names  # noskip
    assert "stage4_block1_add" in names
    y = m(np.zeros((1, 32, 32, 3), "float32"))
    assert y.shape == (1, 10)


def test_alpha_rounds_like_tpu_and_keeps_head():
    m = MnasNet(TINY, input_shape=(32, 32, 3), alpha=0.5, classes=10)
    assert m.get_layer("stem_conv").filters == 16
    assert m.get_layer("stage3_block1_project").filters == 24  # round_filters(40, 0.5)
    assert m.get_layer("head_conv").filters == 1280


def test_endpoints_and_output_stride():
    m = MnasNet(TINY, input_shape=(64, 64, 3), include_top=False)
    features = m.feature_extractor(["stride_2", "stride_4", "stride_8", "expansion_4"])
    shapes = [tuple(s[1:3]) for s in features.output_shape]
    assert shapes == [(32, 32), (16, 16), (8, 8), (16, 16)]
    dilated = MnasNet(TINY, input_shape=(64, 64, 3), include_top=False, output_stride=4)
    assert dilated.output_shape[1:3] == (16, 16)
    assert dilated.get_layer("stage3_block1_depthwise").dilation_rate == (1, 1)
    assert dilated.get_layer("stage3_block2_depthwise").dilation_rate == (2, 2)
    with pytest.raises(ValueError, match="endpoint"):
        m.feature_extractor(["stride_64"])


def test_output_stride_16_on_an_application():
    m = mnas_keras.create_model("mobilenet_v3_small", input_shape=(64, 64, 3), include_top=False, output_stride=16)
    assert m.output_shape[1:3] == (4, 4)
    assert sorted(k for k in m.endpoints if k.startswith("stride")) == ["stride_16", "stride_2", "stride_4", "stride_8"]


def test_drop_connect_only_in_training():
    m = MnasNet(TINY, input_shape=(32, 32, 3), classes=10, drop_connect_rate=0.5)
    drop = m.get_layer("stage3_block2_drop")
    assert isinstance(drop, DropConnect) and drop.rate == pytest.approx(0.4)  # 0.5 * 4 / 5 blocks
    probe = keras.Model(m.input, [drop.input, drop.output])
    x = np.random.default_rng(0).uniform(0, 1, (16, 32, 32, 3)).astype("float32")
    branch, dropped = (np.asarray(t) for t in probe(x, training=True))
    scale = (dropped.reshape(16, -1) / branch.reshape(16, -1))[:, 0].astype("float64")
    assert set(np.round(scale, 4).tolist()) <= {0.0, round(1 / 0.6, 4)}  # dropped, or kept / (1 - rate)
    branch, same = (np.asarray(t) for t in probe(x, training=False))
    np.testing.assert_array_equal(same, branch)


def test_keras_file_round_trip(tmp_path):
    m = MnasNet(TINY, input_shape=(32, 32, 3), classes=10, drop_connect_rate=0.2, include_preprocessing=True)
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    path = str(tmp_path / "m.keras")
    m.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, MnasNet)
    assert loaded.get_config() == m.get_config()
    assert loaded.get_config()["blocks"] == mnas_keras.encode(TINY)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(m(x)))


def test_bad_options_are_clear():
    with pytest.raises(mnas_keras.BlockStringError, match="'k0'"):
        MnasNet(["r1_k0_s11_e1_i32_o16"])
    with pytest.raises(ValueError, match="activation"):
        MnasNet(TINY, activation="mish")
    with pytest.raises(ValueError, match="pooling"):
        MnasNet(TINY, include_top=False, pooling="mean")
    with pytest.raises(ValueError, match="weights"):
        mnas_keras.applications.MnasNetA1(weights="imagenet")
    with pytest.raises(ValueError, match="Unknown model"):
        mnas_keras.create_model("mnasnet_z9")


def test_profiler_counts_by_hand():
    m = MnasNet(["r1_k3_s11_e1_i8_o8_noskip"], input_shape=(8, 8, 3), stem_filters=8, head_filters=16,
                classes=4, dropout_rate=0.0)
    p = profile(m)
    stem = 4 * 4 * 8 * 3 * 3 * 3
    dw = 4 * 4 * 8 * 9
    project = 4 * 4 * 8 * 8
    head = 4 * 4 * 16 * 8
    dense = 16 * 4
    assert p.madds == stem + dw + project + head + dense
    assert p.params == m.count_params()
    assert "total" in p.table()


def test_published_sizes():
    """A1: 3.9M params and 312M multiply-adds (paper); MobileNetV3 Small 2.5M / 56M."""
    a1 = profile(mnas_keras.create_model("mnasnet_a1"))
    assert abs(a1.params - 3.9e6) < 0.05e6 and abs(a1.madds - 312e6) < 3e6
    small = profile(mnas_keras.create_model("mobilenet_v3_small"))
    assert abs(small.params - 2.55e6) < 0.05e6 and abs(small.madds - 56e6) < 2e6


@pytest.mark.parametrize("name", mnas_keras.list_models())
def test_every_registered_model_trains(name, application_model):
    m = application_model(name)  # 32x32, 10 classes, alpha 0.5: shared with the TFLite parity test
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    import tensorflow as tf

    with tf.GradientTape() as tape:
        y = m(x, training=True)
        loss = tf.reduce_mean(y * tf.range(10, dtype=y.dtype))
    grads = tape.gradient(loss, m.trainable_weights)
    assert y.shape == (2, 10) and np.all(np.isfinite(np.asarray(y)))
    missing = [w.name for w, g in zip(m.trainable_weights, grads) if g is None]
    assert not missing


def test_global_options_share_their_defaults():
    # The network's global options are declared once (mnas_keras.codec.options.NetworkOptions):
    # Architecture takes its option fields from there, BuildOptions is that class and MnasNet
    # takes it; the values below are the published MnasNet-A1 settings (tensorflow/tpu
    # mnasnet_models: stem 32, head 1280, dropout 0.2, batch norm momentum 0.99, epsilon 1e-3).
    import dataclasses

    from mnas_keras.codec import Architecture
    from mnas_keras.codec.options import NetworkOptions
    from mnas_keras.models import BuildOptions, MnasNet

    published = dict(stem_filters=32, head_filters=1280, dropout_rate=0.2, bn_momentum=0.99, bn_epsilon=1e-3,
                     alpha=1.0, activation="relu", head="mnasnet")
    assert BuildOptions is NetworkOptions
    defaults = NetworkOptions()
    for option, value in published.items():
        assert getattr(defaults, option) == value, option
    architecture = {f.name: f.default for f in dataclasses.fields(Architecture)}
    for option in ("stem_filters", "head_filters", "dropout_rate", "bn_momentum", "bn_epsilon", "activation", "head"):
        assert architecture[option] == published[option], option
    config = MnasNet(["r1_k3_s11_e1_i32_o16"], input_shape=(32, 32, 3), classes=3).get_config()
    assert {k: config[k] for k in published} == published
    with pytest.raises(ValueError, match=r"Unknown network option\(s\) \['alpah'\]"):
        NetworkOptions().replace(alpah=0.5)
