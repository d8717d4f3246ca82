"""The final training stage (issue 21): finalists, dominance, journaled resume, the table."""

import csv
import json
import os

import numpy as np
import pytest

from mnas_keras.search.errors import SearchConfigError
from mnas_keras.search.run.final import FinalStage, check_final_options, choose_finalists, dominates
from mnas_keras.search.space import arch_id

REFERENCE = ["r1_k3_s22_e1_i16_o16", "r1_k3_s22_e6_i16_o24"]
FOUND = ["r1_k3_s22_e1_i16_o16"]


def test_finalists_are_the_front_by_reward_without_the_reference():
    front = [{"arch_id": "fast", "reward": 0.80, "accuracy": 0.70}, {"arch_id": "ref", "reward": 0.95, "accuracy": 0.9},
             {"arch_id": "tie_low", "reward": 0.85, "accuracy": 0.75}, {"arch_id": "tie_high", "reward": 0.85, "accuracy": 0.8}]
    assert [r["arch_id"] for r in choose_finalists(front, {"arch_id": "ref"}, 3)] == ["tie_high", "tie_low", "fast"]
    assert choose_finalists(front, {"arch_id": "ref"}, 0) == []


@pytest.mark.parametrize("a,b,expected", [
    ((0.90, 2.0), (0.90, 2.0), False),  # equal: not strictly better in either
    ((0.91, 2.0), (0.90, 2.0), True),
    ((0.90, 1.9), (0.90, 2.0), True),
    ((0.95, 2.1), (0.90, 2.0), False),  # more accurate but slower
    ((None, 1.0), (0.90, 2.0), False),  # failed training
])
def test_dominance_by_hand(a, b, expected):
    row = lambda t: {"accuracy": t[0], "fp32_ms": t[1]}  # noqa: E731
    assert dominates(row(a), row(b), "fp32_ms") is expected


def test_bad_options_name_the_flag():
    for args, message in (((0, 1, [0]), "--final_epochs must be a positive integer; received 0"),
                          ((2, -1, [0]), "--final_top_k must be an integer >= 0"),
                          ((2, 1, ["a"]), "--final_seeds must be a list of integers like 0,1,2; received ['a']"),
                          ((2, 1, [1, 1]), "--final_seeds must be distinct integers >= 0"),
                          ((2, 1, []), "--final_seeds must be distinct integers >= 0, at least one")):
        with pytest.raises(SearchConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
            check_final_options(*args)
    with pytest.raises(SearchConfigError, match="needs a ProxyEvaluator"):
        FinalStage(object(), "/tmp/unused_final", epochs=1)


def test_final_stage_trains_measures_writes_and_resumes(digits32, tmp_path):
    from mnas_keras.search.evaluation.proxy import ProxyEvaluator

    evaluator = ProxyEvaluator(data=digits32, train_subset=32, val_subset=32, bn_recalibration=32, stem_filters=16,
                               runs=3, warmup=1, isolate_latency=False, seed=3)
    reference = {"arch_id": arch_id(REFERENCE), "blocks": REFERENCE, "accuracy": 0.5, "status": "ok"}
    front = [{"arch_id": arch_id(FOUND), "blocks": FOUND, "reward": 0.9, "accuracy": 0.6}, reference]
    folder = str(tmp_path / "final")
    logs = []
    out = FinalStage(evaluator, folder, epochs=1, top_k=1, seeds=[0, 1], log=logs.append).run(front, reference)
    assert sum(line.startswith("final training") for line in logs) == 4  # 2 models x 2 seeds
    journal = [json.loads(line) for line in open(os.path.join(folder, "journal.jsonl"))]
    assert sorted((r["name"], r["seed"]) for r in journal) == [("found 1", 0), ("found 1", 1), ("reference", 0),
                                                               ("reference", 1)]
    ref_row, found_row = out["rows"]
    assert (ref_row["name"], found_row["arch_id"]) == ("reference", arch_id(FOUND))
    accs = [r["accuracy"] for r in journal if r["name"] == "reference"]
    assert ref_row["accuracy"] == pytest.approx(np.mean(accs)) and ref_row["accuracy_std"] == pytest.approx(
        np.std(accs, ddof=1))
    latency = json.load(open(os.path.join(folder, "latency.json")))["models"]
    assert found_row["fp32_ms"] == latency[arch_id(FOUND)]["fp32_ms"] and found_row["int8_ms"] > 0
    by_hand = (found_row["accuracy"] >= ref_row["accuracy"] and found_row["fp32_ms"] <= ref_row["fp32_ms"]
               and (found_row["accuracy"] > ref_row["accuracy"] or found_row["fp32_ms"] < ref_row["fp32_ms"]))
    assert found_row["dominates_reference_fp32"] is by_hand
    assert out["verdict"].startswith("fair comparison (1 epochs, 2 seeds")
    assert len(list(csv.DictReader(open(out["files"]["final_csv"])))) == 2
    assert os.path.getsize(out["files"]["final_plot"]) > 0
    # resume: nothing trained or measured again; a line cut by a crash is trained again
    logs.clear()
    again = FinalStage(evaluator, folder, epochs=1, top_k=1, seeds=[0, 1], log=logs.append).run(front, reference)
    assert logs == [] and again["rows"][0]["accuracies"] == ref_row["accuracies"]
    text = open(os.path.join(folder, "journal.jsonl")).read().splitlines()
    with open(os.path.join(folder, "journal.jsonl"), "w") as f:
        f.write("\n".join(text[:-1]) + "\n" + text[-1][:20])
    FinalStage(evaluator, folder, epochs=1, top_k=1, seeds=[0, 1], log=logs.append).run(front, reference)
    assert [line.split(":")[0] for line in logs if line.startswith("final training")] == ["final training 4/4"]
    # the torn line was cut, not glued to the retrained record: every line decodes, and a
    # further resume trains nothing
    assert len([json.loads(line) for line in open(os.path.join(folder, "journal.jsonl"))]) == 4
    logs.clear()
    FinalStage(evaluator, folder, epochs=1, top_k=1, seeds=[0, 1], log=logs.append).run(front, reference)
    assert not [line for line in logs if line.startswith("final training")]


def test_cli_refuses_bad_final_flags_before_any_work(tmp_path):
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "-m", "mnas_keras.search.cli", "--final_seeds=0,0",
                           f"--run_dir={tmp_path / 'run'}"], cwd=root, env={**os.environ, "PYTHONPATH": root},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "mnas-search: error: --final_seeds must be distinct integers >= 0, at least one; received ['0', '0']"]
    assert not (tmp_path / "run").exists()


def test_compare_trains_a_built_network_and_times_the_search_artifacts(digits32, tmp_path, monkeypatch):
    """A network outside the space (a callable, here a functional model nested in another)
    is trained with the same recipe; an architecture the search already converted is timed
    from its artifact files, not converted again."""
    import keras

    from mnas_keras import tflite
    from mnas_keras.search.evaluation.proxy import ProxyEvaluator

    evaluator = ProxyEvaluator(data=digits32, train_subset=32, val_subset=32, bn_recalibration=32, stem_filters=16,
                               runs=3, warmup=1, isolate_latency=False, seed=3)
    (x, _), _, _ = evaluator.splits()
    art = tmp_path / "artifacts" / arch_id(REFERENCE)
    art.mkdir(parents=True)
    reference_model = evaluator.build(REFERENCE)
    (art / "model.tflite").write_bytes(tflite.convert(reference_model, input_shape=(32, 32, 3)))
    (art / "model_int8.tflite").write_bytes(
        tflite.convert(reference_model, "int8", representative_data=x[:8], input_shape=(32, 32, 3)))

    def build(seed):
        keras.utils.set_random_seed(seed)
        x_in = keras.Input((None, None, 3))
        y = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, strides=2)(x_in))
        inner = keras.Model(x_in, keras.layers.Dense(10, activation="softmax")(y))
        outer_in = keras.Input((None, None, 3))
        return keras.Model(outer_in, inner(keras.layers.Rescaling(1 / 255)(outer_in)))

    converted = []
    real_convert = tflite.convert
    monkeypatch.setattr(tflite, "convert", lambda model, *a, **k: converted.append(a[0] if a else "fp32")
                        or real_convert(model, *a, **k))
    stage = FinalStage(evaluator, str(tmp_path / "final"), epochs=1, top_k=0, seeds=[0], log=None,
                       artifacts=lambda ident: str(tmp_path / "artifacts" / ident))
    out = stage.compare([("reference", {"arch_id": arch_id(REFERENCE), "blocks": REFERENCE}),
                         ("peer", {"arch_id": "tiny_conv", "build": build})])
    assert converted == ["fp32", "int8"]  # only the built network; the reference came from its artifacts
    peer = out["rows"][1]
    assert peer["name"] == "peer" and peer["params"] == 3 * 3 * 3 * 4 + 4 + 4 * 10 + 10  # conv + dense, by hand
    assert len(peer["accuracies"]) == 1 and peer["int8_ms"] > 0
    assert stage.timings["train_s"] > 0 and stage.timings["convert_s"] > 0
