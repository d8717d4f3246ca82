"""NetAdapt: proposals, weight surgery, the loop (journal, resume, determinism) and its CLI.

Expected values come from outside the code under test: block strings and width groups
written by hand from the architectures' tables, kept channels chosen here with numpy
norms, and a functional check (the parent with the removed channels zeroed computes what
the narrow child computes).
"""

import json

import numpy as np
import pytest

from mnas_keras.search.netadapt.proposals import ProposalError, apply, flatten, merge, proposals, width_groups

SE_MNAS = ["r1_k3_s11_e1_i8_o8_noskip", "r2_k3_s22_e6_i8_o16_se0.25", "r1_k3_s22_e4_i16_o24"]
V3 = ["r1_k3_s22_e1_i16_o16_se0.25_relu_hsig_sexp", "r2_k5_s11_e6_i16_o16_se0.25_hswish_hsig_sexp"]


def _model(blocks, stem=8, seed=0, **kwargs):
    import keras

    from mnas_keras.models import MnasNet

    keras.utils.set_random_seed(seed)
    model = MnasNet(blocks, stem_filters=stem, input_shape=(32, 32, 3), classes=5, head_filters=32,
                    dropout_rate=0.0, **kwargs)
    rng = np.random.default_rng(seed)
    for layer in model.layers:  # non-trivial BN statistics, so slicing them is checked too
        if layer.__class__.__name__ == "BatchNormalization":
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape),
                               rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 1.5, var.shape)])
    return model


def _top(norms, k):
    """Indices of the k largest values, ascending (the rule, written independently)."""
    order = sorted(range(len(norms)), key=lambda i: (-norms[i], i))
    return np.array(sorted(order[:k]))


# ----------------------------------------------------------------------- proposals (no TF)
def test_width_groups_of_mnasnet_a1_follow_its_residual_stages():
    from mnas_keras.codec import get_architecture

    blocks = flatten(get_architecture("mnasnet_a1").blocks)
    # Stages r1 (noskip), r2, r3, r4, r2 (i80 -> o112 first block: no residual), r3, r1.
    assert width_groups(blocks, 32) == [(-1,), (0,), (1, 2), (3, 4, 5), (6, 7, 8, 9), (10, 11), (12, 13, 14),
                                        (15,)]
    keys = [p.key for p in proposals(blocks, 32)]
    assert keys.count("bottleneck:6,7,8,9") == 1 and len([k for k in keys if k.startswith("expansion")]) == 15


def test_bottleneck_of_a_residual_chain_changes_every_block_reading_it():
    blocks = flatten(["r1_k3_s11_e1_i16_o16", "r3_k3_s22_e6_i16_o40", "r1_k3_s11_e6_i40_o80"])
    group = next(p for p in proposals(blocks, 16) if p.key == "bottleneck:1,2,3")
    assert group.width == 40 and group.candidates()[:2] == [32, 24]
    new, stem = apply(blocks, 16, group, 32)
    # Expanded widths kept: 6 x 40 = 240 filters read from 32 is e7.5 (also in the last block).
    assert merge(new) == ["r1_k3_s11_e1_i16_o16", "r1_k3_s22_e6_i16_o32", "r2_k3_s11_e7.5_i32_o32",
                          "r1_k3_s11_e7.5_i32_o80"]
    assert stem == 16


def test_structure_changing_widths_are_refused_with_the_proposal_named():
    blocks = flatten(["r1_k3_s11_e1_i16_o16", "r1_k3_s22_e3_i16_o24"])
    expansion = next(p for p in proposals(blocks, 16) if p.key == "expansion:1")
    with pytest.raises(ProposalError, match="expansion:1"):
        apply(blocks, 16, expansion, 16)  # e1 would drop the expand conv
    with pytest.raises(ProposalError, match="width must be in 1..47"):
        apply(blocks, 16, expansion, 48)
    stem_group = next(p for p in proposals(blocks, 16) if p.key == "bottleneck:stem,0")
    assert apply(blocks, 16, stem_group, 8)[1] == 8


# ----------------------------------------------------------------------- weight surgery
def test_expansion_surgery_keeps_largest_filters_bit_for_bit():
    from mnas_keras.search.netadapt.surgery import shrink

    parent = _model(SE_MNAS)
    child = shrink(parent, "expansion:2", 64)  # the second block of stage 2: 96 -> 64 filters
    assert child.blocks == ["r1_k3_s11_e1_i8_o8_noskip", "r1_k3_s22_e6_i8_o16_se0.25",
                            "r1_k3_s11_e4_i16_o16_se0.25", "r1_k3_s22_e4_i16_o24"]
    w = {l.name: [np.asarray(v) for v in l.weights] for l in parent.layers}
    kernel = w["stage2_block2_expand"][0]
    keep = _top([float(np.sum(kernel[..., c] ** 2)) for c in range(kernel.shape[-1])], 64)
    c = {l.name: [np.asarray(v) for v in l.weights] for l in child.layers}
    np.testing.assert_array_equal(c["stage3_block1_expand"][0], kernel[..., keep])
    for p, q in zip(c["stage3_block1_expand_bn"], w["stage2_block2_expand_bn"]):
        np.testing.assert_array_equal(p, q[keep])
    np.testing.assert_array_equal(c["stage3_block1_depthwise"][0], w["stage2_block2_depthwise"][0][:, :, keep])
    np.testing.assert_array_equal(c["stage3_block1_se_reduce"][0], w["stage2_block2_se_reduce"][0][:, :, keep])
    np.testing.assert_array_equal(c["stage3_block1_se_expand"][0], w["stage2_block2_se_expand"][0][..., keep])
    np.testing.assert_array_equal(c["stage3_block1_se_expand"][1], w["stage2_block2_se_expand"][1][keep])
    np.testing.assert_array_equal(c["stage3_block1_project"][0], w["stage2_block2_project"][0][:, :, keep])
    for name in ("stem_conv", "stage2_block1_expand", "head_conv", "predictions"):
        for p, q in zip(c[name], w[name]):
            np.testing.assert_array_equal(p, q)

    # Functionally, the child is the parent with the removed channels' outgoing weights zeroed.
    drop = np.setdiff1d(np.arange(96), keep)
    layer = parent.get_layer("stage2_block2_project")
    kernel_p = layer.get_weights()[0]
    kernel_p[:, :, drop] = 0.0
    layer.set_weights([kernel_p])
    layer = parent.get_layer("stage2_block2_se_reduce")
    se_k, se_b = layer.get_weights()
    se_k[:, :, drop] = 0.0
    layer.set_weights([se_k, se_b])
    x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(child(x)), np.asarray(parent(x)), rtol=1e-5, atol=1e-6)


def test_bottleneck_surgery_prunes_the_residual_chain_together():
    from mnas_keras.search.netadapt.surgery import shrink

    blocks = ["r1_k3_s11_e1_i8_o8_noskip", "r3_k3_s22_e6_i8_o24", "r1_k3_s22_e3_i24_o32"]
    parent = _model(blocks)
    child = shrink(parent, "bottleneck:1,2,3", 16)
    assert child.blocks == ["r1_k3_s11_e1_i8_o8_noskip", "r1_k3_s22_e6_i8_o16", "r2_k3_s11_e9_i16_o16",
                            "r1_k3_s22_e4.5_i16_o32"]
    w = {l.name: [np.asarray(v) for v in l.weights] for l in parent.layers}
    norms = sum(np.sum(w[f"stage2_block{b}_project"][0] ** 2, axis=(0, 1, 2)) for b in (1, 2, 3))
    keep = _top(list(norms), 16)
    c = {l.name: [np.asarray(v) for v in l.weights] for l in child.layers}
    np.testing.assert_array_equal(c["stage2_block1_project"][0], w["stage2_block1_project"][0][..., keep])
    np.testing.assert_array_equal(c["stage3_block2_project"][0], w["stage2_block3_project"][0][..., keep])
    np.testing.assert_array_equal(c["stage3_block1_expand"][0], w["stage2_block2_expand"][0][:, :, keep])
    np.testing.assert_array_equal(c["stage4_block1_expand"][0], w["stage3_block1_expand"][0][:, :, keep])
    for p, q in zip(c["stage3_block2_project_bn"], w["stage2_block3_project_bn"]):
        np.testing.assert_array_equal(p, q[keep])

    # The parent with the removed residual channels forced to zero (their BN outputs 0)
    # computes what the child computes.
    drop = np.setdiff1d(np.arange(24), keep)
    for b in (1, 2, 3):
        layer = parent.get_layer(f"stage2_block{b}_project_bn")
        gamma, beta, mean, var = layer.get_weights()
        gamma[drop], beta[drop] = 0.0, 0.0
        layer.set_weights([gamma, beta, mean, var])
    x = np.random.default_rng(2).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(child(x)), np.asarray(parent(x)), rtol=1e-5, atol=1e-6)


def test_mobilenet_v3_blocks_stem_group_and_se_from_expanded_width():
    import keras

    from mnas_keras.search.netadapt.surgery import shrink

    parent = _model(V3, stem=16, activation="hswish", head="mobilenetv3")
    # SE of 'sexp' blocks is sized from the expansion: 96 -> 48 filters takes it from 24 to 16.
    child = shrink(parent, "expansion:1", 48)
    assert child.blocks == [V3[0], "r1_k5_s11_e3_i16_o16_se0.25_hswish_hsig_sexp",
                            "r1_k5_s11_e6_i16_o16_se0.25_hswish_hsig_sexp"]
    w = {l.name: [np.asarray(v) for v in l.weights] for l in parent.layers}
    se = w["stage2_block1_se_reduce"][0]
    keep_se = _top([float(np.sum(se[..., c] ** 2)) for c in range(24)], 16)
    expand = w["stage2_block1_expand"][0]
    keep = _top([float(np.sum(expand[..., c] ** 2)) for c in range(96)], 48)
    got = child.get_layer("stage2_block1_se_reduce").get_weights()
    np.testing.assert_array_equal(got[0], se[:, :, keep][..., keep_se])
    np.testing.assert_array_equal(got[1], w["stage2_block1_se_reduce"][1][keep_se])
    np.testing.assert_array_equal(child.get_layer("stage2_block1_se_expand").get_weights()[0],
                                  w["stage2_block1_se_expand"][0][:, :, keep_se][..., keep])

    # A model nesting the backbone is accepted; the residual stem group shrinks the stem too.
    from mnas_keras.search.netadapt.surgery import find_backbone

    x = keras.Input((32, 32, 3))
    wrapper = keras.Model(x, parent(x))
    narrow = find_backbone(shrink(wrapper, "bottleneck:stem", 8))
    assert narrow.get_config()["stem_filters"] == 8 and narrow.blocks[0] == "r1_k3_s22_e1_i8_o16_se0.25_relu_hsig_sexp"


def test_a_backbone_nested_in_a_classifier_comes_back_in_the_same_wrapping():
    """README's transfer-learning pattern: backbone(training=False) -> Dropout -> Dense."""
    import keras

    from mnas_keras.models import MnasNet
    from mnas_keras.search.netadapt.surgery import find_backbone, shrink

    keras.utils.set_random_seed(4)
    inner = MnasNet(SE_MNAS, stem_filters=8, input_shape=(32, 32, 3), include_top=False, pooling="avg",
                    head_filters=32, name="backbone")
    image = keras.Input((32, 32, 3), name="image")
    features = keras.layers.Dropout(0.2, name="drop")(inner(image, training=False))
    outer = keras.Model(image, keras.layers.Dense(5, activation="softmax", name="digit_head")(features),
                        name="classifier")
    child = shrink(outer, "expansion:2", 64)
    assert child.name == "classifier" and [l.name for l in child.layers] == ["image", "backbone", "drop", "digit_head"]
    assert child.get_layer("backbone").blocks == ["r1_k3_s11_e1_i8_o8_noskip", "r1_k3_s22_e6_i8_o16_se0.25",
                                                  "r1_k3_s11_e4_i16_o16_se0.25", "r1_k3_s22_e4_i16_o24"]
    assert find_backbone(child) is child.get_layer("backbone") and child.get_layer("digit_head") is not \
        outer.get_layer("digit_head")
    for p, q in zip(child.get_layer("digit_head").weights, outer.get_layer("digit_head").weights):
        np.testing.assert_array_equal(np.asarray(p), np.asarray(q))
    kernel = np.asarray(inner.get_layer("stage2_block2_expand").kernel)
    keep = _top([float(np.sum(kernel[..., c] ** 2)) for c in range(96)], 64)
    np.testing.assert_array_equal(np.asarray(child.get_layer("backbone").get_layer("stage3_block1_expand").kernel),
                                  kernel[..., keep])
    assert child.get_config()["layers"][1]["inbound_nodes"][0]["kwargs"]["training"] is False
    x = np.random.default_rng(5).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    probs = np.asarray(child(x))
    np.testing.assert_allclose(probs.sum(axis=-1), [1.0, 1.0], rtol=1e-5)  # the softmax head is there


def test_recalibrated_batch_norm_holds_the_datas_statistics():
    import keras

    from mnas_keras.search.netadapt.loop import recalibrate_batch_norm

    image = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(4, 3, name="conv")
    bn = keras.layers.BatchNormalization(momentum=0.99, name="bn")
    inner = keras.Model(image, bn(conv(image)), name="inner")
    outer_in = keras.Input((8, 8, 3))
    outer = keras.Model(outer_in, keras.layers.GlobalAveragePooling2D()(inner(outer_in)))
    x = np.random.default_rng(6).normal(3.0, 2.0, (24, 8, 8, 3)).astype("float32")
    # Every batch is the whole set (batch_size = n), so each batch's statistics are the population's.
    recalibrate_batch_norm(outer, x, batches=3, batch_size=24)
    features = np.asarray(conv(x), "float64").reshape(-1, 4)  # numpy statistics of the conv output
    np.testing.assert_allclose(np.asarray(bn.moving_mean), features.mean(axis=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(bn.moving_variance), features.var(axis=0), rtol=1e-4)
    assert bn.momentum == 0.99  # restored


# ----------------------------------------------------------------------- the loop
LOOP_BLOCKS = ["r1_k3_s22_e4_i8_o16", "r1_k3_s11_e4_i16_o16"]
# MobileNetV3's delta (1% of the seed latency per step, the default) on a tiny seed nested in a
# classifier (README's transfer-learning wrapping), so the loop carries the wrapping through.
LOOP_CONFIG = dict(target_fraction=0.9, delta_fraction=0.01, steps=1, batch_size=16, seed=3)
DRIVER = """
import sys, numpy as np
from mnas_keras.search.netadapt.latency import MAddsLatency
from mnas_keras.search.netadapt.loop import NetAdapt, NetAdaptConfig
d = np.load(sys.argv[2])
data = ((d["x"], d["y"]), (d["xt"], d["yt"]))
NetAdapt(sys.argv[1], data, MAddsLatency(32), NetAdaptConfig(**eval(sys.argv[4])), sys.argv[3],
         export_tflite=False, log=None).run_loop()
"""


@pytest.fixture(scope="module")
def loop_setup(tmp_path_factory, digits32):
    (x, y), (xt, yt) = digits32
    folder = tmp_path_factory.mktemp("netadapt")
    data = ((x[:80], y[:80]), (xt[:20], yt[:20]))
    np.savez(folder / "data.npz", x=data[0][0], y=data[0][1], xt=data[1][0], yt=data[1][1])
    import keras

    from mnas_keras.models import MnasNet

    keras.utils.set_random_seed(0)
    backbone = MnasNet(LOOP_BLOCKS, stem_filters=8, input_shape=(32, 32, 3), include_top=False, pooling="avg",
                       head_filters=16, include_preprocessing=True, preprocessing="scale_-1_1", name="backbone")
    image = keras.Input((32, 32, 3), name="image")
    outputs = keras.layers.Dense(10, activation="softmax", name="digit_head")(backbone(image))
    keras.Model(image, outputs, name="classifier").save(folder / "parent.keras")
    return folder, data


def _run(folder, data, name):
    from mnas_keras.search.netadapt.latency import MAddsLatency
    from mnas_keras.search.netadapt.loop import NetAdapt, NetAdaptConfig

    return NetAdapt(str(folder / "parent.keras"), data, MAddsLatency(32), NetAdaptConfig(**LOOP_CONFIG),
                    str(folder / name), export_tflite=False, log=None).run_loop()


@pytest.fixture(scope="module")
def reference_run(loop_setup):
    folder, data = loop_setup
    return _run(folder, data, "a")


def _trajectory(run_dir):
    from mnas_keras.search.netadapt.loop import load_journal

    return [(r["iteration"], r["key"], r["width"], r["latency_ms"], r["accuracy"])
            for r in load_journal(str(run_dir)) if r["event"] == "accepted"]


def test_loop_meets_the_target_in_steps_of_at_least_delta(loop_setup, reference_run):
    import keras

    from mnas_keras.search.netadapt.latency import MAddsLatency
    from mnas_keras.search.netadapt.loop import load_journal

    folder, data = loop_setup
    result = reference_run
    steps = _trajectory(folder / "a")
    assert result.status == "target_met" and result.iterations == len(steps) >= 1
    source = MAddsLatency(32)  # re-measure the saved backbones with a fresh source

    def backbone_ms(name):
        return source(keras.saving.load_model(folder / "a" / name).get_layer("backbone"))

    seed_ms = backbone_ms("seed.keras")
    assert seed_ms == result.seed_latency_ms
    latencies = [seed_ms] + [backbone_ms(f"iter_{k}.keras") for k in range(1, len(steps) + 1)]
    assert latencies[1:] == [s[3] for s in steps]
    delta = LOOP_CONFIG["delta_fraction"] * seed_ms
    assert all(after <= before - delta for before, after in zip(latencies, latencies[1:]))
    assert latencies[-1] <= LOOP_CONFIG["target_fraction"] * seed_ms < latencies[-2]
    final = keras.saving.load_model(folder / "a" / "final.keras")
    # Same wrapping as the parent: the refined backbone between the input and the digit head.
    assert final.name == result.model.name == "classifier"
    assert [l.name for l in final.layers] == ["image", "backbone", "digit_head"]
    assert result.blocks == final.get_layer("backbone").blocks == result.model.get_layer("backbone").blocks
    # At delta = 1% one step of 8 filters already meets L - delta, so every proposal takes the
    # largest multiple of 8 below its width; its network, rebuilt from the journal's blocks and
    # measured afresh, meets the constraint.
    from mnas_keras.search.netadapt.surgery import build

    config = keras.saving.load_model(folder / "a" / "seed.keras").get_layer("backbone").get_config()
    tried = [r for r in load_journal(str(folder / "a")) if r["event"] == "proposal" and r["status"] == "ok"]
    assert len(tried) >= 2
    for record in tried:
        assert record["width"] == (record["from_width"] - 1) // 8 * 8, record["key"]
        rebuilt = build(config, flatten(record["blocks"]), record["stem_filters"])
        assert source(rebuilt) == record["latency_ms"] <= latencies[record["iteration"]] - delta
    assert (folder / "a" / "netadapt.png").stat().st_size > 0


def _kill_9_when(folder, run_dir, config, ready) -> str:
    """Runs :data:`DRIVER` on ``run_dir`` in a subprocess and SIGKILLs it as soon as
    ``ready(journal text)``; returns the journal's text at the kill."""
    import os
    import signal
    import subprocess
    import sys
    import time

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(folder / "parent.keras"), str(folder / "data.npz"),
                             str(run_dir), repr(config)], cwd=root,
                            env={**os.environ, "PYTHONPATH": root}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    journal = run_dir / "journal.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and ready(journal.read_text()):
            break
        time.sleep(0.02)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return journal.read_text()


def test_kill_9_resume_gives_the_same_trajectory_without_repeating_proposals(loop_setup, reference_run):
    from mnas_keras.search.netadapt.loop import load_journal

    folder, data = loop_setup
    reference = reference_run  # same seed: same trajectory
    run_dir = folder / "c"
    text = _kill_9_when(folder, run_dir, LOOP_CONFIG, lambda journal: journal.count('"event": "proposal"') >= 2)
    done_before = text.count('"event": "proposal"')
    resumed = _run(folder, data, "c")
    records = load_journal(str(run_dir))
    keys = [(r["iteration"], r["key"]) for r in records if r["event"] == "proposal"]
    assert len(keys) == len(set(keys)) and len(keys) > done_before >= 2
    assert _trajectory(run_dir) == _trajectory(folder / "a")
    assert (resumed.blocks, resumed.latency_ms, resumed.accuracy) == (reference.blocks, reference.latency_ms,
                                                                      reference.accuracy)


def test_table_source_is_the_tables_prediction_and_measures_a_narrowed_stem():
    from mnas_keras.models import MnasNet
    from mnas_keras.search.latency.table import LatencyTable
    from mnas_keras.search.netadapt.latency import TableLatency

    table = LatencyTable.create(input_size=32, stem_filters=16, classes=3, head_filters=16)
    blocks = ["r1_k3_s11_e1_i16_o16", "r2_k3_s22_e4_i16_o24"]
    keys = ["stem:32x32x3>16", "block:16x16:r1_k3_s11_e1_i16_o16", "block:16x16:r1_k3_s22_e4_i16_o24",
            "block:8x8:r1_k3_s11_e4_i24_o24", "head:8x8x24"]  # written from the part-key grammar
    assert table.parts(blocks) == keys
    table.update_parts(dict(zip(keys, [0.5, 0.25, 0.125, 0.125, 1.0])))
    model = MnasNet(blocks, stem_filters=16, input_shape=(32, 32, 3), classes=3, head_filters=16)
    assert TableLatency(table)(model) == 2.0  # no fit yet: the plain sum
    # the stem width group (stem, block 0) narrowed to 8: the first two blocks read 8 channels
    narrow = ["r1_k3_s11_e1_i8_o8", "r1_k3_s22_e8_i8_o24", "r1_k3_s11_e4_i24_o24"]
    new_keys = ["stem:32x32x3>8", "block:16x16:r1_k3_s11_e1_i8_o8", "block:16x16:r1_k3_s22_e8_i8_o24"]
    assert table.parts(narrow, stem_filters=8) == new_keys + keys[3:]
    table.update_parts(dict(zip(new_keys[1:], [0.0625, 0.125])))
    source = TableLatency(table)
    ms = source.blocks_ms(narrow, 8)  # the narrowed stem's part is measured on LiteRT, then summed
    stem_ms = table.part_latencies["stem:32x32x3>8"]
    assert stem_ms > 0 and ms == pytest.approx(stem_ms + 0.0625 + 0.125 + 0.125 + 1.0, rel=1e-12)
    narrow_model = MnasNet(narrow, stem_filters=8, input_shape=(32, 32, 3), classes=3, head_filters=16)
    assert source(narrow_model) == ms


@pytest.mark.parametrize("argv, expected", [
    (["--model=/nonexistent/m.keras"], "--model '/nonexistent/m.keras': no such file"),
    (["--criterion=best"], "argument --criterion: invalid choice: 'best'"),
    (["--latency_size=16"], "--latency_size must be >= 32; received 16"),
])
def test_cli_errors_are_one_line_with_exit_2(capsys, argv, expected):
    from mnas_keras.search.netadapt.cli import main

    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1 and err[0].startswith("mnas-netadapt: error: ")
    assert expected in err[0]


def test_cli_names_its_overwrite_flag_for_another_run_and_refuses_to_overwrite_other_files(loop_setup, tmp_path,
                                                                                            capsys):
    from mnas_keras.search.netadapt.cli import main, parser

    folder, _ = loop_setup
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text('{"netadapt": {"steps": 7}}')
    (run_dir / "journal.jsonl").write_text("")
    argv = [f"--model={folder / 'parent.keras'}", f"--run_dir={run_dir}", "--latency=madds", "--no_tflite"]
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1
    assert err[0].startswith(f"mnas-netadapt: error: run directory {run_dir} holds a run with different ")
    assert "--overwrite" in err[0] and "--overwrite" in parser().format_help()  # the flag it names exists

    other = tmp_path / "notes"
    other.mkdir()
    (other / "thesis.txt").write_text("keep me")
    with pytest.raises(SystemExit) as info:
        main([f"--model={folder / 'parent.keras'}", f"--run_dir={other}", "--latency=madds", "--overwrite"])
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1
    assert err[0] == (f"mnas-netadapt: error: --overwrite deletes only a run directory; {other} holds "
                      "['thesis.txt'] but no journal.jsonl")
    assert (other / "thesis.txt").read_text() == "keep me"


class _AnchoredMAdds:
    """Multiply-adds with the measured source's anchor seam, recording every anchor set."""

    name = "madds"

    def __init__(self):
        from mnas_keras.search.netadapt.latency import MAddsLatency

        self.madds, self.anchors = MAddsLatency(32), []

    def config(self):
        return self.madds.config()

    def set_anchor(self, model, anchor_ms=None):
        self.anchors.append((list(model.blocks), anchor_ms))
        return self.madds(model) if anchor_ms is None else anchor_ms

    def __call__(self, model):
        return self.madds(model)


def test_each_iteration_times_its_proposals_against_the_current_network(loop_setup, reference_run):
    from mnas_keras.search.netadapt.loop import NetAdapt, NetAdaptConfig, load_journal

    folder, data = loop_setup
    source = _AnchoredMAdds()
    result = NetAdapt(str(folder / "parent.keras"), data, source, NetAdaptConfig(**LOOP_CONFIG),
                      str(folder / "anchored"), export_tflite=False, log=None).run_loop()
    assert _trajectory(folder / "anchored") == _trajectory(folder / "a")  # the seam changes no decision
    records = load_journal(str(folder / "anchored"))
    seed = next(r for r in records if r["event"] == "seed")
    accepted = [r for r in records if r["event"] == "accepted"]
    # the seed (timed alone), then per iteration the network it starts from with its journaled
    # milliseconds, then the seed again to time the final network against it
    expected = [(seed["blocks"], None), (seed["blocks"], seed["latency_ms"])]
    expected += [(r["blocks"], r["latency_ms"]) for r in accepted[:-1]]
    expected += [(seed["blocks"], seed["latency_ms"])]
    assert source.anchors == expected
    assert result.latency_vs_seed_ms == reference_run.latency_ms == accepted[-1]["latency_ms"]


def test_measured_latency_rebuilds_a_network_fixed_to_another_size(tmp_path):
    import keras
    from ai_edge_litert.interpreter import Interpreter

    from mnas_keras.search.errors import SearchConfigError
    from mnas_keras.search.netadapt.latency import MeasuredLatency

    flat = MeasuredLatency(input_size=48)._convert(_model(SE_MNAS))  # built for 32x32
    interpreter = Interpreter(model_content=flat)
    assert interpreter.get_input_details()[0]["shape"].tolist() == [1, 48, 48, 3]
    inputs = keras.Input((32, 32, 3))
    plain = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs)))
    with pytest.raises(SearchConfigError, match=r"fixed to \(32, 32\); cannot time it at 48x48"):
        MeasuredLatency(input_size=48)._convert(plain)


class _OptimisticFirstTiming(_AnchoredMAdds):
    """A timed source's winner's curse, made deterministic: the first timing of a network reads
    15% low, every later one exact (multiply-adds)."""

    def __init__(self):
        super().__init__()
        self.seen = set()

    def __call__(self, model):
        key = tuple(model.blocks), model.get_config()["stem_filters"]
        first = key not in self.seen
        self.seen.add(key)
        return self.madds(model) * (0.85 if first else 1.0)


def test_winner_timed_again_and_dropped_when_the_second_timing_misses_the_constraint(loop_setup):
    import keras

    from mnas_keras.search.netadapt.latency import MAddsLatency
    from mnas_keras.search.netadapt.loop import NetAdapt, NetAdaptConfig, load_journal
    from mnas_keras.search.netadapt.surgery import build

    folder, data = loop_setup
    config = dict(LOOP_CONFIG, delta_fraction=0.1, target_fraction=0.6)
    result = NetAdapt(str(folder / "parent.keras"), data, _OptimisticFirstTiming(), NetAdaptConfig(**config),
                      str(folder / "optimistic"), export_tflite=False, log=None).run_loop()
    records = load_journal(str(folder / "optimistic"))
    seed_config = keras.saving.load_model(folder / "optimistic" / "seed.keras").get_layer("backbone").get_config()
    true_ms = lambda r: MAddsLatency(32)(build(seed_config, flatten(r["blocks"]), r["stem_filters"]))  # noqa: E731
    seed_ms = next(r for r in records if r["event"] == "seed")["latency_ms"]
    delta = 0.1 * seed_ms
    latencies = [seed_ms]
    for record in records:
        if record["event"] == "rejected":  # its second timing (exact) misses the constraint
            proposal = next(r for r in records if r["event"] == "proposal" and r["key"] == record["key"]
                            and r["iteration"] == record["iteration"])
            assert record["confirmed_ms"] == true_ms(proposal) > latencies[-1] - delta
        if record["event"] == "accepted":  # accepted on its exact latency, which meets the constraint
            assert record["latency_ms"] == true_ms(record) <= latencies[-1] - delta
            assert record["first_latency_ms"] == pytest.approx(0.85 * record["latency_ms"])
            latencies.append(record["latency_ms"])
    assert any(r["event"] == "rejected" for r in records)
    assert result.latency_ms == latencies[-1]


def test_cli_table_source_builds_the_runs_layerwise_table_and_times_the_final_network(loop_setup, tmp_path, capsys):
    """--latency=table without --table: the run's own table (seed settings, no fitted
    correction), so the seed's latency is the plain sum of its parts' measured milliseconds
    as saved in the file; the final network is also timed against the seed on LiteRT."""
    from mnas_keras.search.latency.parts import network_parts
    from mnas_keras.search.netadapt.cli import main
    from mnas_keras.search.netadapt.loop import load_journal

    folder, _ = loop_setup
    run_dir = tmp_path / "run"
    assert main([f"--model={folder / 'parent.keras'}", f"--run_dir={run_dir}", "--latency=table",
                 "--latency_size=32", "--steps=1", "--final_steps=0", "--max_iterations=1", "--delta=0.01",
                 "--target_fraction=0.99", "--no_tflite"]) == 0
    table = json.loads((run_dir / "latency_table.json").read_text())
    assert table["settings"]["input_size"] == 32 and table["settings"]["stem_filters"] == 8
    assert table["settings"]["anchor"] == LOOP_BLOCKS and table["fit"]["intercept_ms"] == 0
    records = load_journal(str(run_dir))
    seed, final = records[0], records[-1]
    keys = network_parts(LOOP_BLOCKS, 32, stem_filters=8)
    assert seed["latency_ms"] == pytest.approx(sum(table["parts"][k] for k in keys), rel=1e-12)
    accepted = [r for r in records if r["event"] == "accepted"]
    assert len(accepted) == 1 and accepted[0]["latency_ms"] <= 0.99 * seed["latency_ms"]
    assert final["latency_vs_seed_ms"] > 0
    assert "final network timed against the seed in one interleaved run" in capsys.readouterr().out


def test_delta_halves_when_no_proposal_can_cut_it(loop_setup):
    """min_delta_fraction (NNI NetAdaptPruner's rule): a step no single proposal can cut is
    halved until one can. The largest cut one proposal can make is found here by brute force
    (every proposal at every width, multiply-adds of the rebuilt network)."""
    import keras

    from mnas_keras.search.netadapt.latency import MAddsLatency
    from mnas_keras.search.netadapt.loop import NetAdapt, NetAdaptConfig, load_journal
    from mnas_keras.search.netadapt.surgery import build

    folder, data = loop_setup
    config = dict(LOOP_CONFIG, delta_fraction=0.8, min_delta_fraction=0.01, target_fraction=0.1, max_iterations=1)
    result = NetAdapt(str(folder / "parent.keras"), data, MAddsLatency(32), NetAdaptConfig(**config),
                      str(folder / "halving"), export_tflite=False, log=None).run_loop()
    seed_config = keras.saving.load_model(folder / "halving" / "seed.keras").get_layer("backbone").get_config()
    flat = flatten(seed_config["blocks"])
    seed_ms = MAddsLatency(32)(build(seed_config, flat, 8))
    best_cut = 0.0
    for proposal in proposals(flat, 8):
        for width in proposal.candidates(8):
            try:
                blocks, stem = apply(flat, 8, proposal, width)
            except ProposalError:
                continue
            best_cut = max(best_cut, seed_ms - MAddsLatency(32)(build(seed_config, blocks, stem)))
    fractions, fraction = [], 0.8
    while fraction * seed_ms > best_cut:
        fraction /= 2
        fractions.append(fraction)
    assert 1 <= len(fractions) and fractions[-1] >= 0.01  # the rule has something to do here
    records = load_journal(str(folder / "halving"))
    assert [r["delta_fraction"] for r in records if r["event"] == "delta"] == fractions
    # every proposal tried before the last halving was infeasible; the accepted step cuts the
    # halved delta, and its proposals were journaled under the last round
    assert all(r["status"] == "infeasible" for r in records
               if r["event"] == "proposal" and r.get("round", 0) < len(fractions))
    accepted = [r for r in records if r["event"] == "accepted"]
    assert len(accepted) == 1 and accepted[0]["latency_ms"] <= seed_ms - fractions[-1] * seed_ms
    assert result.status == "max_iterations" and result.iterations == 1
    # without the rule the same run stops at the first iteration
    config.pop("min_delta_fraction")
    stalled = NetAdapt(str(folder / "parent.keras"), data, MAddsLatency(32), NetAdaptConfig(**config),
                       str(folder / "no_halving"), export_tflite=False, log=None).run_loop()
    assert (stalled.status, stalled.iterations) == ("stalled", 0)


def test_adaptive_bn_evaluation_trains_only_the_chosen_proposal(loop_setup):
    """evaluate="adaptive_bn" (EagleEye): every proposal keeps the parent's truncated
    weights exactly (only batch-norm statistics recomputed), and only the accepted one is
    fine-tuned before it becomes the next network."""
    import keras

    from mnas_keras.search.netadapt.latency import MAddsLatency
    from mnas_keras.search.netadapt.loop import NetAdapt, NetAdaptConfig, load_journal
    from mnas_keras.search.netadapt.surgery import shrink

    folder, data = loop_setup
    config = dict(LOOP_CONFIG, steps=2, evaluate="adaptive_bn", max_iterations=1, target_fraction=0.5)
    run_dir = folder / "adaptive_bn"
    NetAdapt(str(folder / "parent.keras"), data, MAddsLatency(32), NetAdaptConfig(**config), str(run_dir),
             export_tflite=False, log=None).run_loop()
    records = load_journal(str(run_dir))
    seed = keras.saving.load_model(run_dir / "seed.keras")
    ok = [r for r in records if r["event"] == "proposal" and r["status"] == "ok"]
    assert len(ok) >= 2 and not any("fine_tune_seconds" in r for r in ok)

    def kernels(model):  # every weight but the batch norms' moving statistics
        return [w for layer in model.get_layer("backbone").layers if "BatchNormalization" not in type(layer).__name__
                for w in layer.get_weights()]

    for record in ok:
        expected = shrink(seed, record["key"], record["width"])
        saved = shrink(seed, record["key"], record["width"])
        saved.load_weights(run_dir / "proposals" / "0" / (record["key"].replace(":", "_").replace(",", "-")
                                                          + ".weights.h5"))
        assert all(np.array_equal(a, b) for a, b in zip(kernels(expected), kernels(saved))), record["key"]
    accepted = next(r for r in records if r["event"] == "accepted")
    chosen = next(r for r in ok if r["key"] == accepted["key"])
    assert accepted["proposal_accuracy"] == chosen["accuracy"] and accepted["fine_tune_seconds"] > 0
    trained = keras.saving.load_model(run_dir / "iter_1.keras")
    untrained = shrink(seed, chosen["key"], chosen["width"])
    assert not all(np.array_equal(a, b) for a, b in zip(kernels(untrained), kernels(trained)))


class _PrefetchingMAdds:
    """Multiply-adds with a table's two hooks (``blocks_ms``, ``prefetch``), recording which
    networks were prefetched and in how many rounds."""

    def __init__(self, config):
        from mnas_keras.search.netadapt.latency import MAddsLatency

        self.network_config, self.madds = config, MAddsLatency(32)
        self.rounds, self.known, self.unprefetched = [], set(), 0

    def __call__(self, model):
        return self.madds(model)

    def blocks_ms(self, blocks, stem):
        from mnas_keras.search.netadapt.surgery import build

        if (tuple(b.to_string() for b in blocks), stem) not in self.known:
            self.unprefetched += 1
        return self.madds(build(self.network_config, blocks, stem))

    def prefetch(self, networks):
        self.rounds.append(len(networks))
        self.known.update((tuple(b.to_string() for b in blocks), stem) for blocks, stem in networks)
        return 0


def test_lock_step_prefetch_probes_what_the_sequential_bisection_probes(loop_setup, reference_run):
    """A source with ``prefetch`` (the layer-wise table) gets every probe of an iteration in
    a few batches (one per bisection round), and the run is the one the plain source gives."""
    import keras

    from mnas_keras.search.netadapt.loop import NetAdapt, NetAdaptConfig, load_journal
    from mnas_keras.search.netadapt.surgery import find_backbone, flat_config

    folder, data = loop_setup
    config = flat_config(find_backbone(keras.saving.load_model(folder / "parent.keras")))
    source = _PrefetchingMAdds(config)
    NetAdapt(str(folder / "parent.keras"), data, source, NetAdaptConfig(**LOOP_CONFIG), str(folder / "prefetch"),
             export_tflite=False, log=None).run_loop()
    assert _trajectory(folder / "prefetch") == _trajectory(folder / "a")
    tried = lambda run: [(r["iteration"], r["key"], r["tried"]) for r in load_journal(str(folder / run))  # noqa: E731
                         if r["event"] == "proposal"]
    assert tried("prefetch") == tried("a")
    assert source.unprefetched == 0
    # rounds per iteration: at most 1 + ceil(log2(candidates)) (bisection), never one per probe
    probes = sum(len(t) for _, _, t in tried("a"))
    assert len(source.rounds) < probes and sum(source.rounds) == probes


class _FourthRootTiming(_AnchoredMAdds):
    """A measurement that disagrees with the source: a network's time relative to the anchor
    is the fourth root of its multiply-adds ratio (slower than multiply-adds predict)."""

    def set_anchor(self, model, anchor_ms=None):
        self.anchor = self.madds(model)
        return self.anchor

    def __call__(self, model):
        return self.anchor * (self.madds(model) / self.anchor) ** 0.25


def test_target_met_by_the_source_is_checked_against_the_seed_and_the_loop_goes_on(loop_setup):
    """The final latency is at or under the target as measured (``verify``), not only by the
    source's chain: when the direct timing misses it, the loop continues."""
    import keras

    from mnas_keras.search.netadapt.latency import MAddsLatency
    from mnas_keras.search.netadapt.loop import NetAdapt, NetAdaptConfig, load_journal

    folder, data = loop_setup
    config = dict(LOOP_CONFIG, target_fraction=0.9, final_steps=0)
    run_dir = folder / "verified"
    result = NetAdapt(str(folder / "parent.keras"), data, MAddsLatency(32), NetAdaptConfig(**config), str(run_dir),
                      export_tflite=False, log=None, verify=_FourthRootTiming()).run_loop()
    madds = lambda name: MAddsLatency(32)(keras.saving.load_model(run_dir / name).get_layer("backbone"))  # noqa: E731
    seed = madds("seed.keras")
    checks = [r for r in load_journal(str(run_dir)) if r["event"] == "verified"]
    assert len(checks) >= 2  # met by multiply-adds, missed as "measured", then met again
    first = checks[0]
    ratio = madds(f"iter_{first['iteration']}.keras") / seed
    assert ratio <= 0.9 < ratio ** 0.25
    assert first["latency_vs_seed_ms"] == pytest.approx(seed * ratio ** 0.25, rel=1e-12)
    final_ratio = madds("final.keras") / seed
    assert final_ratio ** 0.25 <= 0.9 and result.status == "target_met"
    assert result.latency_vs_seed_ms == pytest.approx(seed * final_ratio ** 0.25, rel=1e-12) == \
        checks[-1]["latency_vs_seed_ms"]
    assert result.target_ms == pytest.approx(0.9 * seed, rel=1e-12)


def test_kill_9_resume_with_halved_delta_and_adaptive_bn_gives_the_same_run(loop_setup):
    """Resume keeps the halvings (journaled) and repeats no finished proposal of a halved
    round; the resumed run ends as an uninterrupted one."""
    from mnas_keras.search.netadapt.latency import MAddsLatency
    from mnas_keras.search.netadapt.loop import NetAdapt, NetAdaptConfig, load_journal

    folder, data = loop_setup
    config = dict(LOOP_CONFIG, delta_fraction=0.8, min_delta_fraction=0.01, target_fraction=0.1, max_iterations=2,
                  evaluate="adaptive_bn", steps=2)
    reference = NetAdapt(str(folder / "parent.keras"), data, MAddsLatency(32), NetAdaptConfig(**config),
                         str(folder / "halved_reference"), export_tflite=False, log=None).run_loop()
    run_dir = folder / "halved_killed"
    _kill_9_when(folder, run_dir, config, lambda journal: '"round": ' in journal)  # in a halved round
    before = load_journal(str(run_dir))
    resumed = NetAdapt(str(folder / "parent.keras"), data, MAddsLatency(32), NetAdaptConfig(**config), str(run_dir),
                       export_tflite=False, log=None).run_loop()
    records = load_journal(str(run_dir))
    keys = [(r["iteration"], r.get("round", 0), r["key"]) for r in records if r["event"] == "proposal"]
    assert len(keys) == len(set(keys)) and len(records) > len(before)
    halvings = lambda run: [r["delta_fraction"] for r in load_journal(str(folder / run)) if r["event"] == "delta"]  # noqa: E731
    assert halvings("halved_killed") == halvings("halved_reference") != []
    assert _trajectory(run_dir) == _trajectory(folder / "halved_reference")
    assert (resumed.blocks, resumed.latency_ms, resumed.accuracy) == (reference.blocks, reference.latency_ms,
                                                                      reference.accuracy)


def test_cli_rerun_of_the_same_command_resumes_its_run(loop_setup, tmp_path):
    """The early run-directory check (before the seed is trained) accepts the run's own
    directory: the same command again resumes and finds the run finished."""
    from mnas_keras.search.netadapt.cli import main
    from mnas_keras.search.netadapt.loop import load_journal

    folder, _ = loop_setup
    argv = [f"--model={folder / 'parent.keras'}", f"--run_dir={tmp_path / 'run'}", "--latency=madds",
            "--latency_size=32", "--steps=1", "--final_steps=0", "--max_iterations=1", "--no_tflite"]
    assert main(argv) == 0
    first = load_journal(str(tmp_path / "run"))
    assert main(argv) == 0
    assert load_journal(str(tmp_path / "run")) == first  # nothing repeated


def test_a_missed_check_sets_the_source_target_from_the_goal_not_from_the_previous_target(loop_setup):
    """After a direct timing misses the goal, the source's target is the goal scaled by the
    measured/source ratio of the network just timed (goal x source ms / measured ms), not the
    previous, already scaled target scaled again: compounding the ratios shrank networks that
    already met the goal as measured. With a measurement that is the fourth root of the
    multiply-adds ratio, a network meets a goal of 0.8 x the seed when its multiply-adds are
    at most 0.8 ** 4 of the seed's, so no network before the last may get there (brute
    force over the saved iterations)."""
    import keras

    from mnas_keras.search.netadapt.latency import MAddsLatency
    from mnas_keras.search.netadapt.loop import NetAdapt, NetAdaptConfig, load_journal

    folder, data = loop_setup
    config = dict(LOOP_CONFIG, target_fraction=0.8, delta_fraction=0.1, steps=0, bn_batches=0, final_steps=0)
    run_dir = folder / "verified_goal"
    NetAdapt(str(folder / "parent.keras"), data, MAddsLatency(32), NetAdaptConfig(**config), str(run_dir),
             export_tflite=False, log=None, verify=_FourthRootTiming()).run_loop()
    records = load_journal(str(run_dir))
    seed = next(r for r in records if r["event"] == "seed")["latency_ms"]
    goal = 0.8 * seed
    checks = [r for r in records if r["event"] == "verified"]
    missed = [r for r in checks if r["latency_vs_seed_ms"] > goal]
    assert len(missed) >= 2  # the second miss is where a compounded target differs
    for check in missed:
        assert check["next_target_ms"] == pytest.approx(goal * check["latency_ms"] / check["latency_vs_seed_ms"],
                                                         rel=1e-12)
    accepted = [r for r in records if r["event"] == "accepted"]
    madds = lambda name: MAddsLatency(32)(keras.saving.load_model(run_dir / name).get_layer("backbone"))  # noqa: E731
    ratios = [madds(f"iter_{k}.keras") / seed for k in range(1, len(accepted) + 1)]
    assert ratios[-1] <= 0.8 ** 4
    assert all(r > 0.8 ** 4 for r in ratios[:-1]), ratios


def test_a_table_run_resumes_under_another_spelling_of_its_paths_and_when_moved(loop_setup, tmp_path, monkeypatch):
    """The run's definition names its latency table by where it is, not by how the path was
    spelt: the same run reached through a relative path, and the run directory moved with its
    own table in it, resume (the seed is under the target: no iteration, no part measured)."""
    import os
    import shutil

    from mnas_keras.search.latency.table import LatencyTable
    from mnas_keras.search.netadapt.latency import TableLatency
    from mnas_keras.search.netadapt.loop import NetAdapt, NetAdaptConfig, load_journal

    folder, data = loop_setup
    seed_parts = LatencyTable({"input_size": 32, "stem_filters": 8}).parts(LOOP_BLOCKS)
    config = NetAdaptConfig(**dict(LOOP_CONFIG, target_ms=1e6))

    def run(run_dir, table_path):
        return NetAdapt(str(folder / "parent.keras"), data, TableLatency(LatencyTable.load(table_path, check=False)),
                        config, run_dir, export_tflite=False, log=None).run_loop()

    monkeypatch.chdir(tmp_path)
    for table_dir in ("own", "shared"):  # the run's own table, and one outside the run directory
        table = LatencyTable({"input_size": 32, "stem_filters": 8})
        table.update_parts(dict.fromkeys(seed_parts, 0.25))
        table_path = tmp_path / table_dir / "latency_table.json"
        table.save(str(table_path))
        first = run(str(tmp_path / "own"), str(table_path))
        assert first.seed_latency_ms == 0.25 * len(seed_parts) and first.iterations == 0
        records = load_journal(str(tmp_path / "own"))
        again = run("own", os.path.join(table_dir, "latency_table.json"))  # relative spellings
        assert load_journal("own") == records and again.status == first.status == "target_met"
        shutil.rmtree(tmp_path / "own")
    table.save(str(tmp_path / "own" / "latency_table.json"))
    run(str(tmp_path / "own"), str(tmp_path / "own" / "latency_table.json"))
    records = load_journal(str(tmp_path / "own"))
    shutil.move(str(tmp_path / "own"), str(tmp_path / "moved"))
    run(str(tmp_path / "moved"), str(tmp_path / "moved" / "latency_table.json"))
    assert load_journal(str(tmp_path / "moved")) == records


def test_a_run_directory_of_the_same_architecture_with_other_weights_is_refused(loop_setup, tmp_path):
    """A run is defined by its seed's weights too: another trained copy of the same blocks
    got the earlier seed's run back (its seed.keras, journal and result) as if it were its own."""
    import keras

    from mnas_keras.search.errors import SearchConfigError
    from mnas_keras.search.netadapt.latency import MAddsLatency
    from mnas_keras.search.netadapt.loop import NetAdapt, NetAdaptConfig, load_journal

    folder, data = loop_setup
    config = NetAdaptConfig(**dict(LOOP_CONFIG, target_ms=1e6))  # no iteration: the seed meets it
    run_dir = str(tmp_path / "run")
    NetAdapt(str(folder / "parent.keras"), data, MAddsLatency(32), config, run_dir, export_tflite=False,
             log=None).run_loop()
    records = load_journal(run_dir)
    other = keras.saving.load_model(folder / "parent.keras")
    head = other.get_layer("digit_head")
    kernel, bias = head.get_weights()
    head.set_weights([kernel, bias + 1.0])  # the same architecture, retrained
    with pytest.raises(SearchConfigError, match=r"holds a run with different weights"):
        NetAdapt(other, data, MAddsLatency(32), config, run_dir, export_tflite=False, log=None).run_loop()
    assert load_journal(run_dir) == records
    again = NetAdapt(str(folder / "parent.keras"), data, MAddsLatency(32), config, run_dir, export_tflite=False,
                     log=None).run_loop()  # the same model still resumes
    assert load_journal(run_dir) == records and again.iterations == 0


def test_table_source_predicts_every_network_alike_even_one_the_table_holds_measured():
    """A search's table caches whole networks it measured (its Pareto front, likely the seed
    NetAdapt refines): the source answered such a network with that measurement and every
    other with the table's sum of parts, so the first step's 'cut' was the gap between
    measurement and prediction. Every network is the sum of its parts (no fit here)."""
    from mnas_keras.models import MnasNet
    from mnas_keras.search.latency.table import LatencyTable
    from mnas_keras.search.netadapt.latency import TableLatency

    table = LatencyTable({"input_size": 32, "stem_filters": 16})
    blocks = ["r1_k3_s11_e1_i16_o16", "r1_k3_s22_e4_i16_o24"]
    keys = ["stem:32x32x3>16", "block:16x16:r1_k3_s11_e1_i16_o16", "block:16x16:r1_k3_s22_e4_i16_o24",
            "head:8x8x24"]
    table.update_parts(dict(zip(keys, [0.5, 0.25, 0.125, 1.0])))
    table.add_measurement(blocks, 3.0, refit=False)  # the whole network timed at 3 ms
    model = MnasNet(blocks, stem_filters=16, input_shape=(32, 32, 3), classes=3, head_filters=16)
    source = TableLatency(table)
    assert source(model) == source.blocks_ms(blocks, 16) == 1.875  # 0.5 + 0.25 + 0.125 + 1.0


def test_a_learning_rate_that_diverges_is_named_as_bad_input():
    """An infinite learning rate passed the config check and a huge one ended the run with a
    bare FloatingPointError (a traceback from mnas-netadapt); both are ValueErrors naming it."""
    from mnas_keras.search.errors import SearchConfigError
    from mnas_keras.search.netadapt.loop import NetAdaptConfig, fine_tune

    with pytest.raises(SearchConfigError, match=r"learning_rate finite and > 0; received 32, inf"):
        NetAdaptConfig(learning_rate=float("inf"))
    model = _model(["r1_k3_s11_e1_i8_o8"])
    x = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    with pytest.raises(ValueError, match=r"NaN or infinite at step \d+ of 6 with learning rate 1e\+30"):
        fine_tune(model, x, np.arange(8) % 5, 6, batch_size=8, learning_rate=1e30, momentum=0.9, seed=0, graph=False)
