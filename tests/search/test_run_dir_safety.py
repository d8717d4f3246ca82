"""A search's run directory stays its own (issue 13, section 5): journal ids never become
paths outside it, one process at a time, and a journal that lost lines is detected."""

import json
import os
import shutil

import pytest

from mnas_keras.search.errors import SearchConfigError
from mnas_keras.search.evaluation.synthetic import SyntheticEvaluator
from mnas_keras.search.run.journal import RunDirectory
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
