"""A search's run directory stays its own (issue 13, section 5): journal ids never become
paths outside it, one process at a time, and a journal that lost lines is detected."""

import json
import os
import shutil

import pytest

from mnas_keras.search.errors import SearchConfigError
from mnas_keras.search.evaluation.synthetic import SyntheticEvaluator
from mnas_keras.search.run.journal import RunDirectory, RunInUseError
from mnas_keras.search.run.search import Search


class ArtifactEvaluator(SyntheticEvaluator):
    """The synthetic evaluator with artifact folders that its export clears (as
    ProxyEvaluator's evaluation does when a rebuild fails)."""

    saves_artifacts = True

    def export(self, entries, folder):
        for entry in entries:
            shutil.rmtree(entry["artifact_dir"], ignore_errors=True)
        return {}


def _search(space, run_dir, num_samples, **kwargs):
    return Search(space, ArtifactEvaluator(space), str(run_dir), controller="random", num_samples=num_samples,
                  target_ms=1.0, tensorboard=False, log=None, top_k=3, **kwargs)


def _rewrite_journal(run_dir, edit):
    path = os.path.join(str(run_dir), "journal.jsonl")
    records = [json.loads(line) for line in open(path)]
    records = edit(records)
    with open(path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)


@pytest.mark.parametrize("bad_id", ["../../victim", "x/../../../escaped"])
def test_journal_arch_id_never_becomes_a_path(tmp_path, small_space, bad_id):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    run = tmp_path / "run"
    _search(small_space, run, 3, export=False).run()

    def tamper(records):
        first = next(r for r in records if r["event"] == "result" and not r["cached"])
        first["arch_id"] = bad_id
        return records

    _rewrite_journal(run, tamper)
    with pytest.raises(SearchConfigError, match=rf"arch_id '{bad_id}' is not the id of its architecture"):
        _search(small_space, run, 4, export=True).run()
    assert (victim / "keep.txt").read_text() == "precious"
    outside = sorted(p.name for p in tmp_path.iterdir())
    assert outside == ["run", "victim"]  # nothing written next to the run (no "escaped")
    assert not (run / "export").exists()


def test_artifact_dir_takes_only_an_arch_id(tmp_path):
    run = RunDirectory(str(tmp_path))
    assert run.artifact_dir("0123456789ab") == os.path.join(str(tmp_path), "artifacts", "0123456789ab")
    for bad in ("../../victim", "x/../../../escaped", "/etc", "0123456789AB", ""):
        with pytest.raises(SearchConfigError, match="is not an architecture id"):
            run.artifact_dir(bad)


def _cli(*args, timeout=120):
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return subprocess.run([sys.executable, *args], cwd=root, env={**os.environ, "PYTHONPATH": root},
                          capture_output=True, text=True, timeout=timeout)


def test_second_user_of_a_run_is_refused_with_the_holders_pid(tmp_path):
    first = RunDirectory(str(tmp_path))
    assert first.prepare({"seed": 0}) is False
    first.journal.append({"event": "note", "step": 0})
    try:
        for overwrite in (False, True):  # --overwrite deletes nothing while the run is in use
            with pytest.raises(RunInUseError, match=rf"is in use by pid {os.getpid()} "):
                RunDirectory(str(tmp_path)).prepare({"seed": 0}, overwrite=overwrite)
        assert open(first.journal_path).read() == '{"event": "note", "step": 0}\n'
    finally:
        first.close()
    second = RunDirectory(str(tmp_path))
    assert second.prepare({"seed": 0}) is True  # released by close()
    second.close()


def test_cli_on_a_run_in_use_prints_one_line_and_exits_2(tmp_path):
    holder = RunDirectory(str(tmp_path / "run"))
    holder.prepare({"seed": 0})
    try:
        done = _cli("-m", "mnas_keras.search.cli", "--evaluator=synthetic", "--num_samples=2",
                    f"--run_dir={holder.path}")
    finally:
        holder.close()
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"mnas-search: error: run directory {holder.path} is in use by pid {os.getpid()} (lock {holder.lock_path}); "
        "wait for that process to finish or use another run directory"]
    assert json.load(open(holder.config_path)) == {"seed": 0}  # the run was not touched
    assert open(holder.journal_path).read() == ""


def test_lock_of_a_killed_process_is_free(tmp_path):
    script = ("import os, sys; from mnas_keras.search.run.journal import RunDirectory; "
              "RunDirectory(sys.argv[1]).prepare({'seed': 0}); os.kill(os.getpid(), 9)")
    done = _cli("-c", script, str(tmp_path))
    assert done.returncode == -9
    run = RunDirectory(str(tmp_path))
    assert run.prepare({"seed": 0}) is True
    assert open(run.lock_path).read() == f"{os.getpid()}\n"
    run.close()


@pytest.mark.parametrize("keep_lines", [4, 9])
def test_journal_shorter_than_the_checkpoint_is_reported(tmp_path, small_space, keep_lines):
    run = tmp_path / "run"
    _search(small_space, run, 6, export=False).run()  # the checkpoint is saved after 6 results
    _rewrite_journal(run, lambda records: records[:keep_lines])  # a restored older backup
    held = sum(r["event"] == "result" for r in json_lines(run / "journal.jsonl"))
    with pytest.raises(SearchConfigError, match=rf"controller.json was saved after 6 results but .*journal.jsonl "
                                                rf"holds {held} \(the journal lost lines"):
        _search(small_space, run, 6, export=False).run()
    assert len(json_lines(run / "journal.jsonl")) == keep_lines  # nothing evaluated or appended


def test_old_release_checkpoint_with_a_short_journal_is_reported(tmp_path):
    from golden import DATA, OLD_RUN, run_golden

    run = tmp_path / "old_run"
    shutil.copytree(f"{DATA}/old_run", run)
    assert json.load(open(run / "controller.json"))["step"] == 8  # the old schema: no journal_position
    _rewrite_journal(run, lambda records: records[:10])  # the reference and 4 samples with their results
    with pytest.raises(SearchConfigError, match="was saved after 8 results but .* holds 4 "):
        run_golden(OLD_RUN["run"], str(run), checkpoint_every=OLD_RUN["checkpoint_every"])


def json_lines(path):
    return [json.loads(line) for line in open(path)]
