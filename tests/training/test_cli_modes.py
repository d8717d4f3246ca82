"""``mnas-train --mode=evaluate|export`` on a model_dir without a checkpoint is an error.

Found by a new user's pass: both ran on the freshly initialised network and exited 0
(``evaluate`` printed chance accuracy, ``export`` wrote an untrained ``model.keras``), so a
mistyped ``--model_dir`` looked like a finished run.
"""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""}


def test_evaluate_and_export_need_a_checkpoint(tmp_path):
    procs = {mode: subprocess.Popen([sys.executable, "-m", "mnas_keras.training.cli", "--recipe=digits",
                                     f"--mode={mode}", f"--model_dir={tmp_path / mode}"], cwd=tmp_path, env=ENV,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for mode in ("evaluate", "export")}
    for mode, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        lines = [line for line in err.splitlines() if line.strip()]
        assert proc.returncode == 2 and len(lines) == 1, (mode, out[-1000:], err[-2000:])
        assert lines[0] == (f"mnas-train: error: --mode={mode}: model_dir '{tmp_path / mode}' holds no checkpoint; "
                            "train it first (--mode=train) or start from weights (model.init_weights)")
        assert not os.path.exists(tmp_path / mode / "model.keras")


def test_logical_cpus_must_be_positive(tmp_path):
    # --logical_cpus=0 was accepted and ignored
    done = subprocess.run([sys.executable, "-m", "mnas_keras.training.cli", "--recipe=digits", "--logical_cpus=0",
                           f"--model_dir={tmp_path / 'run'}"], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "mnas-train: error: flag --logical_cpus=0: 0 is not a positive integer"]
