"""A tiny real search end to end (build, train, convert, measure, export) and the evaluator's
failure handling. Runs in well under a minute: 32x32 digits, a few images, one epoch."""

import json
import os

import numpy as np
import pytest

from mnas_keras.codec import decode
from mnas_keras.search.evaluation.proxy import ProxyEvaluator
from mnas_keras.search.run.journal import Journal
from mnas_keras.search.run.search import Search
from mnas_keras.search.space import mnasnet_space

keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def tiny_evaluator(digits32):
    return ProxyEvaluator(data=digits32, image_size=32, epochs=1, batch_size=64, train_subset=128, val_subset=64,
                          bn_recalibration=64, warmup=2, runs=5, isolate_latency=True, timeout_s=120)


def test_every_conv_op_and_skip_builds_and_converts(tiny_evaluator):
    from mnas_keras.tflite import convert, list_operators

    space = mnasnet_space()
    names = [d.name for d in space.decisions]
    for op in range(4):  # conv, dsconv, mbconv_e3, mbconv_e6 in every stage
        sample = [0] * len(names)
        for i, name in enumerate(names):
            if name.endswith("/op"):
                sample[i] = op
            if name.endswith("/skip"):
                sample[i] = op % 3  # identity, pool, none
            if name.endswith("/se") or name.endswith("/kernel"):
                sample[i] = op % 2
        blocks = space.decode(sample)
        model = tiny_evaluator.build(blocks)
        assert model.output_shape == (None, 10)
        ops = list_operators(convert(model, input_shape=(32, 32, 3)))
        assert "CONV_2D" in ops
        if op == 1:
            assert "DEPTHWISE_CONV_2D" in ops
        keras.backend.clear_session()


def test_failures_are_reported_not_raised(digits32, tiny_evaluator):
    blocks = ["r1_k3_s22_e1_i8_o16_dsconv"]
    (x, y), test = digits32
    poisoned = ProxyEvaluator(data=((np.full_like(x[:64], np.nan), y[:64]), test), epochs=1, stem_filters=8,
                              warmup=1, runs=2, isolate_latency=False)
    result = poisoned.evaluate(blocks)
    assert result["status"] == "failed"
    assert result["reason"].startswith("error: FloatingPointError: the training loss became NaN")
    slow = ProxyEvaluator(data=digits32, train_subset=256, epochs=1, batch_size=32, stem_filters=8,
                          timeout_s=1e-6, isolate_latency=False)
    result = slow.evaluate(blocks)
    assert result["status"] == "failed" and result["reason"] == "timeout: training exceeded 1e-06 s"
    good = ProxyEvaluator(data=digits32, train_subset=64, val_subset=32, epochs=1, stem_filters=8, warmup=1, runs=3,
                          isolate_latency=False)
    result = good.evaluate(blocks)
    assert result["status"] == "ok" and 0.0 <= result["accuracy"] <= 1.0 and result["latency_ms"] > 0


def test_tiny_real_search_end_to_end(tmp_path, tiny_evaluator, digits32):
    space = mnasnet_space()
    lines = []
    result = Search(space, tiny_evaluator, str(tmp_path), controller="ppo", seed=0, num_samples=2, top_k=1,
                    controller_options={"hidden_size": 16, "batch_size": 2}, log=lines.append).run()
    records = Journal(str(tmp_path / "journal.jsonl")).records
    reference = [r for r in records if r["event"] == "reference"]
    results = [r for r in records if r["event"] == "result"]
    samples = [r for r in records if r["event"] == "sample"]
    assert len(reference) == 1 and reference[0]["blocks"] == space.reference_blocks()
    assert [r["step"] for r in results] == [0, 1] and [r["step"] for r in samples] == [0, 1]
    for r in reference + results:
        assert r["status"] == "ok", r.get("reason")
        assert 0.0 <= r["accuracy"] <= 1.0 and r["latency_ms"] > 0 and r["params"] > 0
        assert r["train_mode"] == "eager" and r["tflite_bytes"] > 0
    for r in results:
        assert r["blocks"] == space.decode(r["decisions"])  # the journaled decisions' network
        assert [spec.to_string() for spec in decode(r["blocks"])] == r["blocks"]  # canonical block strings
        assert r["reward"] == pytest.approx(r["accuracy"] * (r["latency_ms"] / result.target_ms) ** -0.07)
    assert result.target_ms == reference[0]["latency_ms"]
    assert sum("/2] reward" in line for line in lines) == 2

    # Pareto front and plot.
    front = json.loads((tmp_path / "pareto.json").read_text())
    assert front["models"] and front["target_ms"] == result.target_ms
    assert (tmp_path / "pareto.png").stat().st_size > 1000

    # Export: block strings, .keras, .tflite and the latency report, for the best model.
    export = tmp_path / "export"
    index = json.loads((export / "index.json").read_text())
    best_name = index["best"]
    assert index["models"][0]["blocks"] == result.best["blocks"]
    model = keras.saving.load_model(str(export / "best.keras"))  # safe_mode on
    assert model.get_config()["blocks"] == result.best["blocks"]
    (_, _), (x_test, _) = digits32
    from mnas_keras.tflite import run_tflite

    tflite_out = run_tflite(str(export / "best.tflite"), x_test[:4])[0]
    keras_out = np.asarray(model(x_test[:4], training=False))
    np.testing.assert_allclose(tflite_out, keras_out, atol=1e-4)
    assert os.path.exists(export / best_name / "model.keras") and os.path.exists(export / best_name / "blocks.json")
    report = json.loads((export / "latency_report.json").read_text())
    assert report["input_shape"] == [32, 32, 3]
    assert {m["name"] for m in report["models"]} == {m["name"] for m in index["models"]}
    for m in report["models"]:
        assert m["median_ms"] > 0 and m["madds"] > 0 and 0 <= m["test_accuracy"] <= 1
    assert (export / "latency_report.csv").read_text().startswith("name,arch_id,rank")
    # Only the exported architectures keep their artifacts.
    kept = set(os.listdir(tmp_path / "artifacts"))
    assert kept == {m["arch_id"] for m in index["models"]}

    # TensorBoard's own reader accepts the event files.
    import glob

    import tensorflow as tf

    tags = set()
    for path in glob.glob(str(tmp_path / "tensorboard" / "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(v.tag for v in event.summary.value)
    assert {"search/reward", "controller/entropy", "probability/stage1/op/conv"} <= tags
