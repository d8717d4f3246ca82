"""The search loop without Ray: exact replay, resume, process pool with a killed worker or
driver, PPO with outstanding proposals."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from mnas_keras.search.controllers import PPOController, controller_from_state
from mnas_keras.search.errors import SearchConfigError
from mnas_keras.search.execution import InlineExecutor, LocalPoolExecutor, make_executor
from mnas_keras.search.run.search import Search
from mnas_keras.search.space import SearchSpace, mnasnet_space
from mnas_keras.search.evaluation.synthetic import SyntheticEvaluator

from conftest import ROOT, SMALL_SPACE, check_consistent, journal_records

PPO = {"hidden_size": 8, "batch_size": 3}


def _trace(run_dir):
    return [(r["event"], r.get("step"), r.get("key"), r.get("reward"), r.get("cached")) for r in journal_records(run_dir)]


class Interrupt(SyntheticEvaluator):
    """Stops the driver (like Ctrl-C) at its ``stop_at``-th evaluation."""

    def __init__(self, space, stop_at):
        super().__init__(space)
        self.calls, self.stop_at = 0, stop_at

    def evaluate(self, blocks, artifact_dir=None):
        self.calls += 1
        if self.calls == self.stop_at:
            raise KeyboardInterrupt
        return super().evaluate(blocks, artifact_dir)


def _search(space, evaluator, run_dir, num_samples, executor, **kw):
    return Search(space, evaluator, str(run_dir), controller="ppo", controller_options=PPO, seed=3,
                  num_samples=num_samples, log=None, export=False, tensorboard=False, executor=executor, **kw)


def test_a_run_with_an_inline_executor_is_the_default_run(tmp_path):
    space = SearchSpace.from_dict(SMALL_SPACE)
    _search(space, SyntheticEvaluator(space), tmp_path / "default", 25, None).run()
    _search(space, SyntheticEvaluator(space), tmp_path / "inline", 25, InlineExecutor()).run()
    assert _trace(tmp_path / "default") == _trace(tmp_path / "inline")
    inline = json.load(open(tmp_path / "inline" / "controller.json"))
    default = json.load(open(tmp_path / "default" / "controller.json"))
    assert inline["version"] == 2 and inline["step"] == inline["asked"] == 25
    assert inline["journal_position"] == len(journal_records(tmp_path / "inline"))
    assert inline["controller"] == default["controller"]  # the same controller state, bit for bit


def test_resume_replays_the_journal_after_the_checkpoint(tmp_path):
    space = SearchSpace.from_dict(SMALL_SPACE)
    _search(space, SyntheticEvaluator(space), tmp_path / "clean", 24, InlineExecutor(), checkpoint_every=5).run()
    run = tmp_path / "run"
    for stop_at in (4, 9, 6):  # three interruptions, each mid-evaluation
        with pytest.raises(KeyboardInterrupt):
            _search(space, Interrupt(space, stop_at), run, 24, InlineExecutor(), checkpoint_every=5).run()
    saved = json.load(open(run / "controller.json"))
    assert saved["journal_position"] < len(journal_records(run))  # there was something to replay
    # Resumed without an executor: the run goes on in process.
    _search(space, SyntheticEvaluator(space), run, 24, None, checkpoint_every=5).run()
    records = check_consistent(run, 24)
    assert [(r["step"], r["key"], r["reward"]) for r in records if r["event"] == "result"] == \
           [(r["step"], r["key"], r["reward"]) for r in journal_records(tmp_path / "clean") if r["event"] == "result"]
    assert json.load(open(run / "controller.json"))["controller"] == \
           json.load(open(tmp_path / "clean" / "controller.json"))["controller"]


def test_journal_that_does_not_match_the_checkpoint_is_refused(tmp_path):
    space = SearchSpace.from_dict(SMALL_SPACE)
    _search(space, SyntheticEvaluator(space), tmp_path, 6, InlineExecutor(), checkpoint_every=100).run()
    saved = json.load(open(tmp_path / "controller.json"))
    saved["controller"] = PPOController(space.num_choices, seed=99, names=[d.name for d in space.decisions],
                                        **PPO).state_dict()
    saved["journal_position"], saved["asked"], saved["step"] = 0, 0, 0
    json.dump(saved, open(tmp_path / "controller.json", "w"))
    with pytest.raises(SearchConfigError, match="the controller checkpoint does not belong to this journal"):
        _search(space, SyntheticEvaluator(space), tmp_path, 6, InlineExecutor(), checkpoint_every=100).run()


class KillingEvaluator(SyntheticEvaluator):
    """SIGKILLs its own process: once on the first evaluation (a marker file remembers),
    and every time for the reference network."""

    def __init__(self, space, marker):
        super().__init__(space, delay_s=0.05)
        self.marker = marker

    def evaluate(self, blocks, artifact_dir=None):
        if list(blocks) == self.space.reference_blocks():
            os.kill(os.getpid(), signal.SIGKILL)
        if not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return super().evaluate(blocks, artifact_dir)


def test_process_pool_retries_a_killed_worker(tmp_path):
    space = SearchSpace.from_dict(SMALL_SPACE)
    # The reference kills its worker on every attempt: recorded failed after 1 + 1 attempts.
    # Step 0's first attempt kills its worker (the marker): it runs again and succeeds.
    evaluator = KillingEvaluator(space, str(tmp_path / "marker"))
    executor = LocalPoolExecutor(2, max_retries=1)
    result = Search(space, evaluator, str(tmp_path / "run"), controller="random", num_samples=8, target_ms=1.0,
                    log=None, export=False, tensorboard=False, executor=executor).run()
    records = check_consistent(tmp_path / "run", 8)
    reference = next(r for r in records if r["event"] == "reference")
    assert reference["status"] == "failed" and reference["reason"].startswith("worker_died: BrokenProcessPool")
    assert reference["attempts"] == 2 and len(reference["worker_errors"]) == 2
    assert result.reference["status"] == "failed"
    finished = [r for r in records if r["event"] == "result" and not r["cached"]]
    assert all(r["status"] == "ok" for r in finished)
    retried = [r for r in finished if r.get("attempts") == 2]  # step 0 (and step 1 if it shared the pool)
    assert retried and {r["step"] for r in retried} <= {0, 1}
    assert all(r["worker_errors"][0].startswith("BrokenProcessPool") for r in retried)


POOL_DRIVER = textwrap.dedent("""
    import sys
    from mnas_keras.search.execution import LocalPoolExecutor
    from mnas_keras.search.run.search import Search
    from mnas_keras.search.space import SearchSpace
    from mnas_keras.search.evaluation.synthetic import SyntheticEvaluator
    if __name__ == "__main__":  # the workers are spawned: they import this file too
        space = SearchSpace.from_dict({space!r})
        Search(space, SyntheticEvaluator(space, delay_s=0.3), sys.argv[1], controller="random", num_samples=200,
               target_ms=1.0, log=None, export=False, tensorboard=False, executor=LocalPoolExecutor(2)).run()
""")


def _descendants(pid):
    """Process ids below ``pid`` (from /proc's parent ids)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid):
    """True while ``pid`` runs (a zombie no one reaps counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_pool_workers_die_with_a_killed_driver(tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(POOL_DRIVER.format(space=SMALL_SPACE))
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(script), str(run_dir)], env={**os.environ, "PYTHONPATH": ROOT},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:  # two evaluations done: the workers run
            journal = run_dir / "journal.jsonl"
            if journal.exists() and journal.read_text().count('"status": "ok"') >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the driver ended before it could be killed"
        children = _descendants(proc.pid)
        assert len(children) >= 3  # two workers and the resource tracker
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.time() + 10
        while time.time() < deadline and any(_alive(pid) for pid in children):
            time.sleep(0.1)
        survivors = [pid for pid in children if _alive(pid)]
    finally:
        if proc.poll() is None:
            proc.kill()
    for pid in survivors:  # clean up before failing
        os.kill(pid, signal.SIGKILL)
    assert survivors == []


def test_ppo_uses_each_proposals_own_sampling_policy():
    """Told by trial id, out of order: each trial's PPO ratio is against the policy that
    sampled it, found by its id even when two outstanding trials propose the same network
    (a 2 x 1 space: every trial is one of two samples)."""
    c = PPOController([2, 1], seed=0, hidden_size=8, batch_size=2)
    trials = [c.ask() for _ in range(3)]
    sampled_log_probs = dict(c.pending)
    restored = controller_from_state(json.loads(json.dumps(c.state_dict())))  # outstanding ones survive
    for controller in (c, restored):
        controller.tell(trials[2].id, 1.0)
        controller.tell(trials[0].id, 0.0)  # the batch is full: the policy is updated
        now = controller._sample_log_probs(list(trials[1].decisions))
        assert not np.allclose(now, sampled_log_probs[1])
        controller.tell(trials[1].id, 0.5)
        assert controller.buffer[0][2] == sampled_log_probs[1]  # PPO's ratio is against the sampler
        assert controller.pending == {} and controller.outstanding == {}
    assert c.state_dict() == restored.state_dict()


def test_ppo_state_of_the_release_before_trial_ids_resumes():
    """A PPO state that kept [decisions, log-probabilities] per outstanding proposal (no trial
    ids, as the loop before trial ids wrote it) gets the ids of the journal's in-flight steps."""
    c = PPOController([3, 2], seed=1, hidden_size=8, batch_size=2)
    trials = [c.ask(step) for step in (4, 5, 6)]
    c.tell(5, 1.0)
    state = json.loads(json.dumps(c.state_dict()))
    old = {**state, "state": {**state["state"], "pending": [[list(trials[i].decisions), c.pending[i + 4]]
                                                             for i in (0, 2)]}}
    del old["outstanding"], old["num_asked"]
    restored = controller_from_state(old, {4: list(trials[0].decisions), 6: list(trials[2].decisions)})
    assert restored.state_dict() == state  # num_asked: told 1 + 2 outstanding (ids are the steps)
    restored.tell(6, 0.5)
    c.tell(6, 0.5)
    assert restored.params[0].tolist() == c.params[0].tolist() and restored.buffer == c.buffer == []


def test_executor_errors_name_the_problem():
    assert type(make_executor("inline")) is type(make_executor("local")) is InlineExecutor  # the older name still works
    with pytest.raises(SearchConfigError, match="the in-process executor .'local'. runs one evaluation at a time"):
        make_executor("local", max_in_flight=4)
    with pytest.raises(SearchConfigError, match="latency_resource needs the Ray executor"):
        make_executor("pool", latency_resource="latency_device")
    with pytest.raises(SearchConfigError, match="num_workers must be an integer >= 1; received 0"):
        make_executor("pool", max_in_flight=0)
    space = mnasnet_space()
    with pytest.raises(SearchConfigError, match="executor must be an Executor or None"):
        Search(space, SyntheticEvaluator(space), "unused", executor="ray")
