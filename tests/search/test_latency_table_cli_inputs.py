"""mnas-latency-table refuses bad settings and unwritable outputs before any measurement.

Found by a new user's pass: ``--num_threads=0``, ``--warmup=-1``, ``--classes=0``,
``--calibration=-1``, ``--holdout=-1`` and ``--stem_filters=0`` were accepted (a negative
calibration saved an empty table), a misspelt ``--anchor`` name was taken for block strings,
and ``--table`` in a folder that cannot be created failed with a traceback after every part
and network had been timed (minutes of work lost).
"""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""}


def test_bad_settings_and_outputs_are_one_line_before_any_work(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    table = str(tmp_path / "lt.json")
    cases = [
        ([f"--table={table}", "--num_threads=0"], "mnas-latency-table: error: flag --num_threads=0: "),
        ([f"--table={table}", "--warmup=-1"], "mnas-latency-table: error: flag --warmup=-1: "),
        ([f"--table={table}", "--classes=0"], "mnas-latency-table: error: flag --classes=0: "),
        ([f"--table={table}", "--calibration=-1"], "mnas-latency-table: error: flag --calibration=-1: "),
        ([f"--table={table}", "--holdout=-1"], "mnas-latency-table: error: flag --holdout=-1: "),
        ([f"--table={table}", "--stem_filters=0"], "mnas-latency-table: error: flag --stem_filters=0: "),
        ([f"--table={table}", "--anchor=mnasnet_a2"],
         "mnas-latency-table: error: --anchor 'mnasnet_a2': expected 'none', an architecture name (mnasnet_a1, "),
        ([f"--table={a_file}/lt.json"],
         f"mnas-latency-table: error: --table '{a_file}/lt.json': its folder '{a_file}' is a file; expected a directory"),
        ([f"--table={tmp_path}"], f"mnas-latency-table: error: --table '{tmp_path}' is a directory; expected a .json file"),
        ([f"--table={table}", "--holdout=2", f"--report_dir={a_file}"],
         f"mnas-latency-table: error: --report_dir '{a_file}' is a file; expected a directory"),
    ]
    procs = [(subprocess.Popen([sys.executable, "-m", "mnas_keras.search.cli.latency_table", *args], cwd=tmp_path,
                               env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), expected)
             for args, expected in cases]
    try:
        for proc, expected in procs:
            _, err = proc.communicate(timeout=120)
            lines = err.strip().splitlines()
            assert proc.returncode == 2 and len(lines) == 1, (proc.args, err[-2000:])
            assert lines[0].startswith(expected), (lines[0], expected)
    finally:  # a case that started measuring is not left running
        for proc, _ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert not os.path.exists(table) and a_file.read_text() == "keep me"
