"""Behaviour pinned before the search was restructured (issue 17): seeded synthetic searches
give the journal, Pareto table and controller state that the code before the restructure
wrote (``data/golden_synthetic.json``), and a run directory that code left half done
(``data/old_run``, its checkpoint schema) resumes to the same result. The fixtures come
from ``data/make_fixtures.py``, run on the code before the restructure."""

import shutil

import pytest

from golden import DATA, GOLDEN_RUNS, OLD_RUN, load_golden, run_golden, snapshot


@pytest.fixture(scope="module")
def golden():
    return load_golden()


@pytest.mark.parametrize("name", sorted(GOLDEN_RUNS))
def test_seeded_synthetic_search_matches_the_pinned_run(name, golden, tmp_path):
    run_golden(name, str(tmp_path))
    assert snapshot(str(tmp_path)) == golden[name]


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
    assert now["pareto"] == pinned["pareto"] and now["controller"] == pinned["controller"]


def snapshot_partial(run_dir):
    """How many results the half-done run holds."""
    with open(run_dir / "journal.jsonl") as f:
        return f.read().count('"event": "result"')
