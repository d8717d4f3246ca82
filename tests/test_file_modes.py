"""Files the package writes atomically get the permissions of a file written with ``open``.

Found by a new user's pass: ``mnas-tflite convert --output=m.tflite``, a search's
``config.json``/``controller.json``/exported ``blocks.json`` and ``model.keras`` were all
``-rw-------`` (``tempfile.mkstemp``'s mode survives the rename), while ``journal.jsonl``
beside them, written with ``open``, was ``-rw-r--r--``.
"""

import os
import stat
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_tflite_save_and_json_match_a_plain_file(tmp_path):
    from mnas_keras.search.run.journal import atomic_write_json
    from mnas_keras.tflite import save

    old = os.umask(0o027)
    try:
        with open(tmp_path / "plain", "w"):  # the reference: what ``open`` creates under this umask
            pass
        save(b"1234TFL3", tmp_path / "m.tflite")
        atomic_write_json(str(tmp_path / "c.json"), {"a": 1})
    finally:
        os.umask(old)
    assert _mode(tmp_path / "plain") == 0o640
    assert _mode(tmp_path / "m.tflite") == _mode(tmp_path / "c.json") == 0o640


def test_search_run_directory_files_share_the_journals_mode(tmp_path):
    run = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "mnas_keras.search.cli", "--evaluator=synthetic", "--num_samples=2",
                           f"--run_dir={run}", "--notensorboard"], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    expected = _mode(run / "journal.jsonl")  # written with open()
    written = [run / "config.json", run / "controller.json", run / "pareto.json", run / "export" / "index.json"]
    written += sorted((run / "export").glob("*/blocks.json"))
    assert {str(p.relative_to(run)): _mode(p) for p in written} == {str(p.relative_to(run)): expected for p in written}


def test_tflite_save_to_a_directory_is_named(tmp_path):
    from mnas_keras.tflite import TFLiteError, save

    with pytest.raises(TFLiteError, match=f"cannot write the TFLite model to '{tmp_path}': it is a directory"):
        save(b"1234TFL3", tmp_path)
    assert os.listdir(tmp_path) == []  # no temporary left behind
