"""Behaviour pinned before the search was restructured (issue 17): seeded synthetic searches
give the journal, Pareto table and controller state that the code before the restructure
wrote (``data/golden_synthetic.json``), and a run directory that code left half done
(``data/old_run``, its checkpoint schema) resumes to the same result. The fixtures come
from ``data/make_fixtures.py``, run on the code before the restructure."""

import json
import shutil

import pytest

from golden import DATA, GOLDEN_RUNS, OLD_RUN, load_golden, run_golden, snapshot


@pytest.fixture(scope="module")
def golden():
    return load_golden()


def _controller(state):
    """A controller state as this code writes it: the pinned states predate trial ids, so
    they are read by the old-schema reader and written again (nothing outstanding at the end)."""
    from mnas_keras.search.controllers import controller_from_state

    return controller_from_state(state).state_dict()


@pytest.mark.parametrize("name", sorted(GOLDEN_RUNS))
def test_seeded_synthetic_search_matches_the_pinned_run(name, golden, tmp_path):
    run_golden(name, str(tmp_path))
    now, pinned = snapshot(str(tmp_path)), golden[name]
    assert now["journal"] == pinned["journal"] and now["pareto"] == pinned["pareto"]
    assert now["controller"] == _controller(pinned["controller"])
    assert now["controller"]["num_asked"] == now["controller"]["num_told"] == len(
        [r for r in pinned["journal"] if r["event"] == "sample"])


def _results(journal):
    return [r for r in journal if r["event"] in ("result", "reference")]


def test_a_run_directory_of_the_old_release_resumes_to_the_same_result(golden, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(f"{DATA}/old_run", run_dir)
    old = snapshot_partial(run_dir)
    assert 0 < old < GOLDEN_RUNS[OLD_RUN["run"]]["num_samples"]  # the fixture stopped mid-run
    run_golden(OLD_RUN["run"], str(run_dir), checkpoint_every=OLD_RUN["checkpoint_every"])
    now, pinned = snapshot(str(run_dir)), golden[OLD_RUN["run"]]
    assert _results(now["journal"]) == _results(pinned["journal"])
    assert now["pareto"] == pinned["pareto"] and now["controller"] == _controller(pinned["controller"])


def snapshot_partial(run_dir):
    """How many results the half-done run holds."""
    with open(run_dir / "journal.jsonl") as f:
        return f.read().count('"event": "result"')


class _Stop(BaseException):  # not caught as a failed evaluation
    pass


def test_ppo_checkpoints_at_policy_updates_and_resumes_exactly(golden, tmp_path):
    """Issue 13: PPO's state (parameters and Adam moments) changes only at an update, so
    ``controller.json`` is written then (every ``batch_size`` = 3 results here, although
    ``checkpoint_every`` is 1), not after every result; a run killed at its 8th evaluation
    resumes from the last checkpoint plus the journal to the pinned result."""
    from mnas_keras.search.evaluation.synthetic import SyntheticEvaluator

    class StopAt(SyntheticEvaluator):
        calls = 0

        def evaluate(self, blocks, artifact_dir=None):
            type(self).calls += 1
            if type(self).calls == 8:
                raise _Stop
            return super().evaluate(blocks, artifact_dir)

    run_dir = tmp_path / "run"
    with pytest.raises(_Stop):
        run_golden("ppo_small", str(run_dir), evaluator_class=StopAt, checkpoint_every=1)
    results = snapshot_partial(run_dir)
    saved = json.load(open(run_dir / "controller.json"))
    assert results >= 6 and saved["step"] == 3 * (results // 3)  # the last multiple of batch_size
    assert saved["controller"]["state"]["buffer"] == []
    run_golden("ppo_small", str(run_dir), checkpoint_every=1)
    now, pinned = snapshot(str(run_dir)), golden["ppo_small"]
    assert _results(now["journal"]) == _results(pinned["journal"])
    assert now["controller"] == _controller(pinned["controller"])
