"""``mnas-search`` as a command: a synthetic (no training) run, resume, errors."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "mnas_keras.search.cli", *args], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True, timeout=timeout)


def test_synthetic_search_prints_front_and_resumes(tmp_path):
    run_dir = str(tmp_path / "run")
    args = ["--evaluator=synthetic", "--num_samples=30", "--controller=evolution",
            '--controller_options={"population_size": 10, "sample_size": 3}', f"--run_dir={run_dir}"]
    first = _cli(*args)
    assert first.returncode == 0, first.stderr
    assert sum("/30] reward" in line for line in first.stdout.splitlines()) == 30
    assert "Pareto front (accuracy vs latency):" in first.stdout
    for name in ("pareto.json", "pareto.csv", "pareto.png", "journal.jsonl", "controller.json", "export/index.json"):
        assert os.path.exists(os.path.join(run_dir, name)), name
    config = json.load(open(os.path.join(run_dir, "config.json")))
    assert config["controller"]["options"] == {"population_size": 10, "sample_size": 3}
    again = _cli(*args)
    assert again.returncode == 0 and "resuming" in again.stdout
    assert "/30] reward" not in again.stdout  # nothing left to evaluate
    results = [json.loads(l) for l in open(os.path.join(run_dir, "journal.jsonl")) if '"result"' in l]
    assert [r["step"] for r in results] == list(range(30))


def test_errors_name_the_problem(tmp_path):
    bad = _cli("--evaluator=synthetic", f"--run_dir={tmp_path}", "--controller_options=[1]")
    assert bad.returncode == 2 and "--controller_options must be a JSON object" in bad.stderr
    bad = _cli("--space=missing.json", "--describe_space")
    assert bad.returncode == 2 and "search space file not found: missing.json" in bad.stderr
    bad = _cli("--controller=bayes")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "mnas-search: error: flag --controller=bayes: value should be one of <ppo|reinforce|evolution|random>"]
    bad = _cli("--num_samples=many")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert bad.stderr.startswith("mnas-search: error: flag --num_samples=many: ")
    bad = _cli("--no_such_flag=1")
    assert bad.returncode == 2 and bad.stderr.strip() == "mnas-search: error: Unknown command line flag 'no_such_flag'"
    described = _cli("--describe_space")
    assert described.returncode == 0 and "nominal size 2.808e+18" in described.stdout


@pytest.mark.parametrize("module,flag", [
    ("search", "--train_subset=-3"), ("search", "--val_subset=0"), ("search", "--latency_size=0"),
    ("search", "--latency_size=-5"), ("search", "--runs=0"), ("latency_table", "--latency_size=0"),
    ("latency_table", "--runs=0"),
])
def test_out_of_range_values_are_refused_before_any_work(module, flag, tmp_path):
    """Issue 13: these were accepted silently (a negative subset trained on all but 3 images,
    latency_size 0 became the image size, -5 recorded every sample failed and exited 0)."""
    tool = {"search": "mnas-search", "latency_table": "mnas-latency-table"}[module]
    if module == "search":
        done = _cli(flag, f"--run_dir={tmp_path / 'run'}")
    else:
        done = subprocess.run([sys.executable, "-m", "mnas_keras.search.cli.latency_table", flag], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-2000:]
    assert lines[0].startswith(f"{tool}: error: flag {flag}: "), lines[0]
    assert not (tmp_path / "run").exists()


def test_latency_table_command_errors_are_one_line(tmp_path):
    table = tmp_path / "table.json"
    table.write_text("{not json")
    runs = [[f"--table={table}", "--holdout=0", "--calibration=0"], ["--latency_size=big"], ["--objective=int4"]]
    expected = [f"mnas-latency-table: error: latency table file {table} is not valid JSON",
                "mnas-latency-table: error: flag --latency_size=big: ",
                "mnas-latency-table: error: flag --objective=int4: value should be one of <fp32|int8>"]
    for args, start in zip(runs, expected):
        done = subprocess.run([sys.executable, "-m", "mnas_keras.search.cli.latency_table", *args], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr[-2000:]
        assert done.stderr.startswith(start), done.stderr


def test_latency_table_modes(tmp_path):
    """--latency_mode: the table is built and calibrated once next to the run, samples are
    predicted, the front measured; a second search reuses the table."""
    space = {"name": "tiny", "stem_filters": 8, "stages": [
        {"reference": "r1_k3_s11_e1_i8_o8_dsconv", "fixed": True},
        {"reference": "r2_k3_s22_e6_i8_o16", "op": ["dsconv", "mbconv_e6"], "filters": [0.5, 2.0], "layers": [-1, 2]}]}
    (tmp_path / "space.json").write_text(json.dumps(space))
    common = [f"--space={tmp_path / 'space.json'}", "--latency_size=32", "--image_size=32", "--epochs=1",
              "--train_subset=64", "--val_subset=32", "--controller=random", "--runs=10", "--warmup=2",
              "--target_ms=0.05", "--noexport", "--notensorboard", "--final_top_k=0"]
    first = _cli(*common, "--latency_mode=predicted_then_measured", "--num_samples=3", f"--run_dir={tmp_path / 'a'}",
                 timeout=400)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "calibrating the latency table" in first.stdout
    for noise in ("oneDNN custom operations", "cudart_stub", "absl::InitializeLog", "cpu_feature_guard"):
        assert noise not in first.stderr, first.stderr[-2000:]  # TensorFlow's start-up lines (issue 13)
    table_path = tmp_path / "latency_table_32px_1t.json"
    table = json.loads(table_path.read_text())
    assert table["fit"]["models"] >= 5 and table["settings"]["anchor_ms"] > 0
    events = [json.loads(line) for line in open(tmp_path / "a" / "journal.jsonl")]
    samples = [e for e in events if e.get("event") == "result" and not e.get("cached")]
    assert samples
    for e in samples:  # predicted, or the table's cached measurement of a calibration network
        assert e["latency_source"] == "table" or (e["latency_source"] == "measured" and e["key"] in table["measured"])
    measured = [e for e in events if e.get("event") == "measured"]
    front = json.loads((tmp_path / "a" / "pareto.json").read_text())["models"]
    calibration = {k for k, v in table["measured"].items() if v["source"] == "calibration"}
    assert all(r["latency_source"] == "measured" for r in front)
    assert {r["key"] for r in front} <= {e["key"] for e in measured} | calibration
    for e in measured:  # front networks measured at the end are cached in the table
        assert table["measured"][e["key"]]["latency_ms"] == e["latency_ms"] and e["predicted_latency_ms"] > 0
    second = _cli(*common, "--latency_mode=predicted", "--num_samples=1", f"--run_dir={tmp_path / 'b'}", timeout=400)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "calibrating" not in second.stdout
    events = [json.loads(line) for line in open(tmp_path / "b" / "journal.jsonl")]
    assert all(e["latency_source"] in ("table", "measured") for e in events if e.get("event") == "result")
    assert not [e for e in events if e.get("event") == "measured"]
    bad = _cli(*common, "--latency_mode=predicted", "--int8", f"--run_dir={tmp_path / 'c'}")
    assert bad.returncode == 2 and "--int8 (measure fp32 and int8) needs --latency_mode=measured" in bad.stderr
