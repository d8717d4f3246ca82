"""``mnas-search`` as a command: a synthetic (no training) run, resume, errors."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "mnas_keras.search.cli", *args], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True, timeout=120)


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
    assert config["controller_options"] == {"population_size": 10, "sample_size": 3}
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
    assert bad.returncode != 0 and "controller" in bad.stderr
    described = _cli("--describe_space")
    assert described.returncode == 0 and "nominal size 2.808e+18" in described.stdout
