"""The NASNet cell and NAS-RL macro search spaces (issue 18 part 2): sizes, round trips,
every controller, a tiny proxy search in each (build, train, TFLite with built-in ops,
LiteRT latency), resume after kill -9, and the CLI's errors."""

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from mnas_keras.codec.cells import NASNET_A_NORMAL, NASNET_A_REDUCTION, CellSpec
from mnas_keras.codec.macro import MacroSpec
from mnas_keras.search.controllers import make_controller
from mnas_keras.search.errors import SearchConfigError, SearchSpaceError
from mnas_keras.search.spaces import NASNetCellSpace, NASRLMacroSpace, Space, get_space
from mnas_keras.search.space import arch_key, mnasnet_space

from conftest import ROOT

#: Small networks for 32 px images: the searches below train and convert them quickly.
TINY_CELLS = dict(num_blocks=1, filters=4, stem_filters=8)
TINY_MACRO = dict(num_layers=3)


def test_nasnet_space_has_the_papers_controller_layout_and_size():
    space = get_space("nasnet")
    # NASNet App. A.2: 2 cells x 5 blocks x (input A, input B, op A, op B, combine).
    assert len(space.num_choices) == 50
    assert space.num_choices == [n for _ in range(2) for b in range(5) for n in (2 + b, 2 + b, 13, 13, 2)]
    # SEARCH_METHODS.md 1.1 [calc]: ~5.2e36 (normal, reduction) pairs; ~5.1e33 with add only.
    assert f"{space.size:.1e}" == "5.2e+36"
    assert f"{NASNetCellSpace(combines=('add',)).size:.1e}" == "5.1e+33"
    # The reference is NASNet-A's wiring (keras.applications / TF-Slim) with the paper's output rule.
    assert space.reference_blocks() == [NASNET_A_NORMAL.split(";")[0], NASNET_A_REDUCTION.split(";")[0]]


def test_nasrl_space_decisions_follow_the_paper():
    space = NASRLMacroSpace(num_layers=3)
    # Per layer: kernel h, kernel w {1,3,5,7}, stride {1,2}, filters {24,36,48,64}, then one
    # yes/no per earlier layer (NAS-RL 3.3 anchors).
    assert space.num_choices == [4, 4, 2, 4] + [4, 4, 2, 4, 2] + [4, 4, 2, 4, 2, 2]
    # Written by hand: layer 2 = 7x1 stride 2, 48 filters from layer 1; layer 3 = 1x5, 64
    # filters from layers 1 and 2.
    sample = [1, 1, 0, 0] + [3, 0, 1, 2, 1] + [0, 2, 0, 3, 1, 1]
    assert space.decode(sample) == ["k3x3_f24,k7x1_s22_f48_in1,k1x5_f64_in1.2"]
    assert space.encode(["k3x3_f24,k7x1_s22_f48_in1,k1x5_f64_in1.2"]) == sample
    with pytest.raises(SearchSpaceError, match="layer 2: filters 40 is not among the choices"):
        space.encode(["k3x3_f24,k7x1_s22_f40_in1,k1x5_f64_in1.2"])
    with pytest.raises(SearchSpaceError, match="unknown op 'sep9x9'"):
        NASNetCellSpace().encode(["sep9x9@0+id@1", "id@0+id@1"])


@pytest.mark.parametrize("space", [NASNetCellSpace(), NASRLMacroSpace(), NASNetCellSpace(**TINY_CELLS)],
                         ids=["nasnet", "nasrl", "nasnet_tiny"])
def test_samples_round_trip_through_the_grammar(space):
    assert isinstance(space, Space) and isinstance(mnasnet_space(), Space)
    parse = CellSpec.from_string if space.network == "cells" else MacroSpec.from_string
    rng = random.Random(0)
    for _ in range(30):
        sample = space.sample(rng)
        blocks = space.decode(sample)
        assert [parse(b).to_string() for b in blocks] == blocks  # canonical strings of the codec
        assert space.encode(blocks) == sample
        assert arch_key(blocks) == "|".join(blocks)
    assert type(space).from_dict(json.loads(json.dumps(space.to_dict()))) == space
    assert get_space(space.to_dict()) == space


@pytest.mark.parametrize("controller", ["ppo", "reinforce", "evolution", "random"])
def test_every_controller_searches_every_space(controller):
    for space in (NASNetCellSpace(), NASRLMacroSpace()):
        ctl = make_controller(controller, space.num_choices, seed=0, names=[d.name for d in space.decisions])
        for _ in range(4):
            trial = ctl.ask()
            assert len(trial.decisions) == len(space.num_choices)
            assert all(0 <= d < n for d, n in zip(trial.decisions, space.num_choices))
            assert space.encode(space.decode(trial.decisions)) == list(trial.decisions)
            ctl.tell(trial.id, 0.5)


@pytest.fixture(scope="module")
def digits():
    from mnas_keras.datasets import load_digits

    return load_digits(size=32, seed=0)


# One NASNet sample (each costs a build, a training step, a TFLite conversion and a Keras
# save): with one block per cell its two cells still hold four of the 13 ops, a combine and
# both reductions' strides; the macro space's two samples are cheap.
@pytest.mark.parametrize("space, num_samples", [(NASNetCellSpace(**TINY_CELLS), 1), (NASRLMacroSpace(**TINY_MACRO), 2)],
                         ids=["nasnet", "nasrl"])
def test_tiny_proxy_search_builds_converts_and_measures(space, num_samples, digits, tmp_path):
    import keras

    from mnas_keras.search.evaluation.networks import SpaceProxyEvaluator
    from mnas_keras.search.run.search import Search
    from mnas_keras.tflite import benchmark
    from mnas_keras.tflite.flatbuffer import non_builtin_operators

    evaluator = SpaceProxyEvaluator(space, data=digits, image_size=32, epochs=1, batch_size=32, train_subset=32,
                                    val_subset=32, bn_recalibration=0, train_mode="eager", runs=3, warmup=1,
                                    isolate_latency=False)
    result = Search(space, evaluator, str(tmp_path / "run"), controller="random", seed=1, num_samples=num_samples,
                    target_ms=1.0, evaluate_reference=False, tensorboard=False, export=False, log=None).run()
    assert [r["status"] for r in result.records] == ["ok"] * num_samples
    _, (x_val, y_val), _ = evaluator.splits()
    for record in result.records:
        folder = os.path.join(str(tmp_path / "run"), "artifacts", record["arch_id"])
        tflite = open(os.path.join(folder, "model.tflite"), "rb").read()
        assert non_builtin_operators(tflite) == []
        model = keras.saving.load_model(os.path.join(folder, "model.keras"))  # safe_mode on
        assert [layer.__class__.__module__.split(".")[0] for layer in model.layers] == ["keras"] * len(model.layers)
        # The journaled accuracy, recomputed from the saved model (numpy argmax).
        predicted = np.argmax(np.asarray(model(x_val, training=False)), axis=-1)
        assert record["accuracy"] == pytest.approx(float(np.mean(predicted == y_val)))
        # LiteRT runs the converted file and agrees with Keras on an image.
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_content=tflite)
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x_val[:1])
        interpreter.invoke()
        lite = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        np.testing.assert_allclose(lite, np.asarray(model(x_val[:1], training=False)), atol=1e-4)
        assert benchmark(tflite, runs=2, warmup=0, isolate=False).median_ms > 0
        assert record["params"] == model.count_params()
    keras.backend.clear_session()


def test_public_names_of_the_spaces_and_the_ablation():
    import mnas_keras.search as search
    from mnas_keras.search.cli import ablation
    from mnas_keras.search.evaluation.networks import SpaceProxyEvaluator

    for name in search.__all__:
        assert getattr(search, name) is not None, name
    # The package's get_space is the one that knows every space (NASNet App. A.2: 50 decisions).
    assert len(search.get_space("nasnet").num_choices) == 50
    assert search.get_space("nasrl") == search.NASRLMacroSpace() and search.get_space("uib") == search.uib_space()
    assert search.space_from_dict({"kind": "nasnet", "num_blocks": 2}) == search.NASNetCellSpace(num_blocks=2)
    assert isinstance(search.mnasnet_space(), search.Space)
    assert search.SPACE_NAMES == ("mnasnet", "uib", "mobilenetv4", "nasnet", "nasrl")
    assert search.SpaceProxyEvaluator is SpaceProxyEvaluator
    assert (search.run_ablation, search.hypervolume, search.ABLATION_ARMS) == \
           (ablation.run_ablation, ablation.hypervolume, ablation.ARMS)
    assert list(search.ABLATION_ARMS) == ["factorized_soft", "factorized_hard", "cells_accuracy", "cells_soft"]


def test_space_evaluator_refuses_a_latency_table():
    from mnas_keras.search.evaluation.networks import SpaceProxyEvaluator

    with pytest.raises(SearchConfigError, match="only measured latency applies; received latency_mode='predicted'"):
        SpaceProxyEvaluator(NASRLMacroSpace(), latency_mode="predicted")


# ------------------------------------------------------- kill -9 resume (nasrl, nasnet, uib)
# MnasNet's own space has the same test in test_runner.py; the UIB space is a SearchSpace
# whose blocks differ, so it runs here with the two new spaces (synthetic evaluator: the
# journal, the controller checkpoint and the evaluation cache are what a kill can tear).
SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from mnas_keras.search.run.search import Search
    from mnas_keras.search.spaces import get_space
    from mnas_keras.search.evaluation.synthetic import SyntheticEvaluator
    space = get_space({space!r})
    evaluator = SyntheticEvaluator(space, delay_s=float(sys.argv[3]), log_path=sys.argv[2], input_size=32)
    Search(space, evaluator, sys.argv[1], controller="ppo", seed=5,
           controller_options={{"hidden_size": 16, "batch_size": 4}}, num_samples=16,
           checkpoint_every=3, top_k=2, tensorboard=False, export=False).run()
""")

KILL_SPACES = {"nasrl": NASRLMacroSpace(**TINY_MACRO).to_dict(), "nasnet": "nasnet", "uib": "uib"}


def _results(run_dir):
    from conftest import journal_records

    return [r for r in journal_records(run_dir) if r["event"] == "result"]


@pytest.mark.parametrize("name", list(KILL_SPACES))
def test_kill_9_resume_in_each_space(name, tmp_path):
    from test_runner import _count_results  # the kill -9 harness of the MnasNet space's test

    script = tmp_path / "search.py"
    script.write_text(SCRIPT.format(root=ROOT, space=KILL_SPACES[name]))
    env = {**os.environ, "PYTHONPATH": ROOT}
    clean, killed = str(tmp_path / "clean"), str(tmp_path / "killed")
    subprocess.run([sys.executable, str(script), clean, str(tmp_path / "clean.log"), "0"], check=True,
                   env=env, capture_output=True, timeout=120)
    kills = 0
    for threshold in (3, 9):
        proc = subprocess.Popen([sys.executable, str(script), killed, str(tmp_path / "killed.log"), "0.1"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while _count_results(killed) < threshold and proc.poll() is None and time.time() < deadline:
            time.sleep(0.002)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            assert proc.returncode == -signal.SIGKILL
            kills += 1
        else:
            assert proc.wait() == 0
    assert kills >= 1
    final = subprocess.run([sys.executable, str(script), killed, str(tmp_path / "killed.log"), "0"], env=env,
                           capture_output=True, text=True, timeout=120, check=True)
    assert "resuming" in final.stdout
    clean_results, killed_results = _results(clean), _results(killed)
    # One result per step, none lost, none written twice; the same search as without kills.
    assert [r["step"] for r in killed_results] == list(range(16))
    assert [(r["key"], r["reward"], r["cached"]) for r in killed_results] == \
           [(r["key"], r["reward"], r["cached"]) for r in clean_results]
    # Every distinct architecture (and the reference) evaluated, plus at most one redone
    # evaluation per kill (the one in flight).
    distinct = {r["key"] for r in clean_results} | {arch_key(get_space(KILL_SPACES[name]).reference_blocks())}
    killed_log = (tmp_path / "killed.log").read_text().split()
    assert set(killed_log) == distinct and len(killed_log) <= len(distinct) + kills
    controller = json.loads((tmp_path / "killed" / "controller.json").read_text())
    assert controller["step"] == 16
    assert json.loads((tmp_path / "killed" / "pareto.json").read_text()) == \
           json.loads((tmp_path / "clean" / "pareto.json").read_text())


# ------------------------------------------------------------------------------ CLI
def _cli(*args):
    return subprocess.run([sys.executable, "-m", "mnas_keras.search.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": ROOT})


@pytest.mark.parametrize("args, message", [
    (["--space=darts"], "mnas-search: error: unknown search space 'darts'; expected 'mnasnet', 'uib', "
                        "'mobilenetv4', 'nasnet', 'nasrl' or a .json file"),
    (["--space=nasnet", "--latency_mode=predicted"],
     "mnas-search: error: --space=nasnet has no latency-table parts: only measured latency applies; use "
     "--latency_mode=measured (received --latency_mode=predicted)"),
])
def test_cli_errors_are_one_line(args, message, tmp_path):
    done = _cli(*args, "--evaluator=synthetic", f"--run_dir={tmp_path / 'run'}")
    assert done.returncode == 2
    assert done.stderr.strip() == message
    assert not os.path.exists(tmp_path / "run")


# ------------------------------------------------------------------------ ablation
def test_hypervolume_by_hand():
    from mnas_keras.search.cli.ablation import hypervolume

    # Box [0, 2] x [0, 1] in latency/target: 0.5 * 0.6 + 1.0 * 0.8; (15, 0.7) is dominated,
    # (25, 0.9) lies past the box.
    assert hypervolume([(5.0, 0.6), (10.0, 0.8), (15.0, 0.7), (25.0, 0.9)], target_ms=10.0) == pytest.approx(1.1)
    assert hypervolume([], target_ms=10.0) == 0.0


def test_ablation_tiny_budget_writes_table_and_plot_and_resumes(tmp_path):
    from mnas_keras.search.cli.ablation import ARMS

    from conftest import journal_records

    out = tmp_path / "ablation"
    args = ["-m", "mnas_keras.search.cli.ablation", "--evaluator=synthetic", "--num_samples=4", "--controller=random",
            f"--out_dir={out}", "--tensorboard=false", "--export=false"]
    env = {**os.environ, "PYTHONPATH": ROOT}
    first = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    table = json.loads((out / "ablation.json").read_text())
    assert [row["arm"] for row in table["arms"]] == list(ARMS)
    assert (out / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for row in table["arms"]:
        run = out / row["arm"]
        config = json.loads((run / "config.json").read_text())
        assert config["space"].get("kind", "mnasnet") == {"nasnet": "nasnet", "mnasnet": "mnasnet"}[row["space"]]
        results = [r for r in journal_records(run) if r["event"] == "result" and not r.get("cached")]
        # Brute force: integrate the best accuracy reachable at each latency over [0, 2T].
        grid = np.linspace(0, 2, 20001)[:-1] + 0.5e-4
        best = [max([r["accuracy"] for r in results if r["latency_ms"] / table["target_ms"] <= x], default=0.0)
                for x in grid]
        assert row["hypervolume"] == pytest.approx(float(np.mean(best)) * 2, abs=1e-3)
        assert row["best_reward"] == max(r["reward"] for r in results)
    # The second arm of a space proposes the first arm's architectures (same seed): their
    # results are shared, not trained again, and equal the first arm's.
    for first, second in (("factorized_soft", "factorized_hard"), ("cells_accuracy", "cells_soft")):
        done = {r["key"]: r for r in journal_records(out / first) if r["event"] in ("result", "reference")}
        again_ = [r for r in journal_records(out / second) if r["event"] in ("result", "reference") and not r.get("cached")]
        assert [r["shared_from"] for r in again_] == [first] * len(again_)
        assert [(r["accuracy"], r["latency_ms"]) for r in again_] == \
               [(done[r["key"]]["accuracy"], done[r["key"]]["latency_ms"]) for r in again_]
    # Accuracy-only arm: reward equals accuracy (MnasNet form with w = 0).
    cells = [r for r in journal_records(out / "cells_accuracy") if r["event"] == "result"]
    assert all(r["reward"] == pytest.approx(r["accuracy"]) for r in cells)
    again = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout.count("resuming") == 4
    assert [{k: v for k, v in row.items() if k != "wall_s"} for row in json.loads((out / "ablation.json").read_text())["arms"]] == \
           [{k: v for k, v in row.items() if k != "wall_s"} for row in table["arms"]]
