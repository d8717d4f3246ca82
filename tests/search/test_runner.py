"""The search loop with the synthetic evaluator: outputs, caching, failures, kill -9 resume."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from mnas_keras.search.errors import SearchConfigError
from mnas_keras.search.run.journal import Journal, RunDirectory
from mnas_keras.search.run.search import Search
from mnas_keras.search.space import SearchSpace, arch_key, mnasnet_space
from mnas_keras.search.run.summaries import read_scalars
from mnas_keras.search.evaluation.synthetic import SyntheticEvaluator

from conftest import ROOT, SMALL_SPACE, journal_records


def _results(run_dir):
    return [r for r in Journal(os.path.join(run_dir, "journal.jsonl")).records if r["event"] == "result"]


def test_search_writes_every_output(tmp_path):
    space = mnasnet_space()
    lines = []
    result = Search(space, SyntheticEvaluator(space), str(tmp_path), controller="reinforce", num_samples=25,
                    top_k=3, log=lines.append).run()
    records = _results(tmp_path)
    assert [r["step"] for r in records] == list(range(25))
    assert sum(line.startswith("[") and "/25] reward" in line for line in lines) == 25
    # The reference (MobileNetV2) defines the target latency.
    assert result.reference["blocks"] == space.reference_blocks()
    assert result.target_ms == pytest.approx(result.reference["latency_ms"])
    for r in records:
        assert r["reward"] == pytest.approx(r["accuracy"] * (r["latency_ms"] / result.target_ms) ** -0.07)
    # Pareto front: nothing in the run beats a member on both objectives.
    front = json.loads((tmp_path / "pareto.json").read_text())["models"]
    assert front and [m["key"] for m in front] == [r["key"] for r in result.front]
    for member in front:
        assert not any(r["accuracy"] > member["accuracy"] and r["latency_ms"] < member["latency_ms"]
                       for r in result.records)
    assert (tmp_path / "pareto.csv").read_text().splitlines()[0] == "rank,arch_id,reward,accuracy,latency_ms,step,blocks"
    assert (tmp_path / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    index = json.loads((tmp_path / "export" / "index.json").read_text())
    assert index["models"][0]["reward"] == result.best["reward"] == max(r["reward"] for r in records)
    assert json.loads((tmp_path / "export" / "best_blocks.json").read_text()) == result.best["blocks"]
    assert {m["arch_id"] for m in index["models"]} >= {r["arch_id"] for r in result.front}
    # TensorBoard: reward, baseline, entropy and per-decision probabilities for every step.
    scalars = read_scalars(str(tmp_path / "tensorboard"))
    tags = {s["tag"] for s in scalars}
    assert {"search/reward", "controller/baseline", "controller/entropy",
            "probability/stage3/kernel/5"} <= tags
    rewards = [s["value"] for s in scalars if s["tag"] == "search/reward"]
    assert rewards == pytest.approx([r["reward"] for r in records], abs=1e-6)


class FlakyEvaluator(SyntheticEvaluator):
    """Fails in the ways a real evaluation can: an exception, a NaN, a failed status."""

    def evaluate(self, blocks, artifact_dir=None):
        result = super().evaluate(blocks, artifact_dir)
        kernel5 = ["_k5_" in b for b in blocks[:2]]
        if kernel5 == [True, False]:
            raise MemoryError("out of memory while training")
        if kernel5 == [False, True]:
            return {**result, "accuracy": float("nan")}
        if kernel5 == [True, True]:
            return {"status": "failed", "reason": "timeout after 60 s"}
        return result


def test_failures_are_recorded_and_the_search_goes_on(tmp_path):
    space = SearchSpace.from_dict(SMALL_SPACE)
    result = Search(space, FlakyEvaluator(space), str(tmp_path), controller="random", num_samples=30,
                    failure_reward=-1.0, target_ms=1.0, log=None).run()
    records = _results(tmp_path)
    assert len(records) == 30
    failed = [r for r in records if r["status"] == "failed"]
    reasons = {r["reason"] for r in failed}
    assert "MemoryError: out of memory while training" in reasons
    assert "evaluator returned accuracy=nan" in reasons
    assert "timeout after 60 s" in reasons
    assert all(r["reward"] == -1.0 for r in failed)
    assert all(r["status"] == "ok" for r in result.front)
    # Repeats are served from the cache: each architecture is evaluated once.
    fresh = [r["key"] for r in records if not r["cached"]]
    assert len(fresh) == len(set(fresh)) < 30
    # Every sampled architecture is in the result once, also one served from the reference's evaluation.
    assert [r["key"] for r in result.records] == list(dict.fromkeys(r["key"] for r in records))
    assert any(r["cached_from"] is None for r in records if r["cached"])
    steps_of = {r["key"]: r["step"] for r in records if not r["cached"]}
    steps_of[result.reference["key"]] = None  # the reference was evaluated before step 0
    for r in records:
        if r["cached"]:
            assert r["cached_from"] == steps_of[r["key"]]
            assert r["cached_from"] is None or r["cached_from"] < r["step"]


def test_resume_refuses_a_different_run(tmp_path):
    space = mnasnet_space()
    Search(space, SyntheticEvaluator(space), str(tmp_path), controller="random", num_samples=3,
           tensorboard=False, export=False, log=None).run()
    with pytest.raises(SearchConfigError, match="holds a run with different controller;"):
        Search(space, SyntheticEvaluator(space), str(tmp_path), controller="reinforce", num_samples=3,
               log=None).run()
    # A larger budget on the same run continues it.
    result = Search(space, SyntheticEvaluator(space), str(tmp_path), controller="random", num_samples=6,
                    tensorboard=False, export=False, log=None).run()
    assert [r["step"] for r in _results(tmp_path)] == list(range(6))
    assert len(result.records) == 6


def test_overwrite_deletes_only_a_search_run_directory(tmp_path):
    space = SearchSpace.from_dict(SMALL_SPACE)
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "thesis.tex").write_text("irreplaceable")
    with pytest.raises(SearchConfigError, match="deletes only a search run directory; .*thesis.tex"):
        Search(space, SyntheticEvaluator(space), str(folder), num_samples=2, target_ms=1.0, log=None,
               overwrite=True).run()
    assert (folder / "thesis.tex").read_text() == "irreplaceable"
    run = tmp_path / "run"
    Search(space, SyntheticEvaluator(space), str(run), num_samples=3, target_ms=1.0, log=None, export=False).run()
    (run / "stale.txt").write_text("from the old run")
    Search(space, SyntheticEvaluator(space, seed=1), str(run), num_samples=2, target_ms=1.0, log=None, export=False,
           overwrite=True).run()  # a different run: the old one is deleted first
    assert not (run / "stale.txt").exists()
    assert sum(r["event"] == "result" for r in journal_records(run)) == 2


def test_torn_journal_line_is_dropped(tmp_path):
    run = RunDirectory(str(tmp_path))
    run.prepare({"a": 1})
    run.journal.append({"event": "result", "step": 0, "key": "x"})
    run.close()
    with open(run.journal_path, "a") as f:
        f.write('{"event": "result", "step": 1, "ke')  # the write a kill cut short
    journal = Journal(run.journal_path)
    assert [r["step"] for r in journal.records] == [0]
    journal.append({"event": "result", "step": 1, "key": "y"})
    journal.close()
    assert [json.loads(line)["step"] for line in open(run.journal_path)] == [0, 1]


SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from mnas_keras.search.run.search import Search
    from mnas_keras.search.space import SearchSpace
    from mnas_keras.search.evaluation.synthetic import SyntheticEvaluator
    space = SearchSpace.from_dict({space!r})
    evaluator = SyntheticEvaluator(space, delay_s=float(sys.argv[3]), log_path=sys.argv[2])
    Search(space, evaluator, sys.argv[1], controller="ppo", seed=5,
           controller_options={{"hidden_size": 16, "batch_size": 4}}, num_samples=40,
           checkpoint_every=3, top_k=2).run()
""")


def _count_results(run_dir):
    path = os.path.join(run_dir, "journal.jsonl")
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return f.read().count('"event": "result"')


def test_kill_9_resume_loses_and_repeats_nothing(tmp_path):
    script = tmp_path / "search.py"
    script.write_text(SCRIPT.format(root=ROOT, space=SMALL_SPACE))
    env = {**os.environ, "PYTHONPATH": ROOT}
    clean, killed = str(tmp_path / "clean"), str(tmp_path / "killed")
    subprocess.run([sys.executable, str(script), clean, str(tmp_path / "clean.log"), "0"], check=True,
                   env=env, capture_output=True, timeout=120)
    kills = 0
    for threshold in (4, 12, 20, 28):
        proc = subprocess.Popen([sys.executable, str(script), killed, str(tmp_path / "killed.log"), "0.05"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while _count_results(killed) < threshold and proc.poll() is None and time.time() < deadline:
            time.sleep(0.002)
        if proc.poll() is None:  # still running: kill it mid-search
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            assert proc.returncode == -signal.SIGKILL
            kills += 1
        else:
            assert proc.wait() == 0
    assert kills >= 2
    final = subprocess.run([sys.executable, str(script), killed, str(tmp_path / "killed.log"), "0"], env=env,
                           capture_output=True, text=True, timeout=120, check=True)
    assert "resuming" in final.stdout
    clean_results, killed_results = _results(clean), _results(killed)
    # One result per step, none lost, none written twice; the same search as without kills.
    assert [r["step"] for r in killed_results] == list(range(40))
    assert [(r["key"], r["reward"], r["cached"], r.get("cached_from")) for r in killed_results] == \
           [(r["key"], r["reward"], r["cached"], r.get("cached_from")) for r in clean_results]
    assert sum(r["cached"] for r in clean_results) > 0  # the small space makes repeats
    # Evaluations: every distinct architecture (and the reference) once, plus at most one
    # redone evaluation per kill (the one in flight when it struck).
    distinct = {r["key"] for r in clean_results} | {arch_key(SearchSpace.from_dict(SMALL_SPACE).reference_blocks())}
    clean_log = (tmp_path / "clean.log").read_text().split()
    killed_log = (tmp_path / "killed.log").read_text().split()
    assert sorted(set(clean_log)) == sorted(distinct) and len(clean_log) == len(set(clean_log))
    assert set(killed_log) == distinct
    assert len(killed_log) <= len(distinct) + kills
    controller = json.loads(open(os.path.join(killed, "controller.json")).read())
    assert controller["step"] == 40
    assert json.loads(open(os.path.join(killed, "pareto.json")).read()) == \
           json.loads(open(os.path.join(clean, "pareto.json")).read())
