"""mnas-ablation: an unusable --out_dir and the flags each arm sets are one error line, exit 2.

Found by a new user's pass: ``--out_dir`` naming a file ended in a ``FileExistsError``
traceback, and ``--space``, ``--reward``, ``--latency_size``... were accepted and dropped
(each arm sets them).
"""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""}


def test_out_dir_and_arm_flags(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    arm_flags = ("mnas-ablation: error: {} cannot be given: each arm sets the space and reward, the run "
                 "directories are <out_dir>/<arm> and latency is measured at --image_size")
    cases = [
        ([f"--out_dir={a_file}"], f"mnas-ablation: error: --out_dir '{a_file}' is a file; expected a directory"),
        (["--space=nasnet"], arm_flags.format("--space")),
        (["--reward=hard", "--latency_size=224"], arm_flags.format("--reward, --latency_size")),
    ]
    procs = []
    for i, (args, expected) in enumerate(cases):
        command = [sys.executable, "-m", "mnas_keras.search.cli.ablation", "--evaluator=synthetic", "--num_samples=1"]
        if not any(a.startswith("--out_dir") for a in args):
            command.append(f"--out_dir={tmp_path / f'out{i}'}")
        procs.append((subprocess.Popen(command + args, cwd=tmp_path, env=ENV, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True), expected))
    for proc, expected in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 2 and err.strip().splitlines() == [expected], (proc.args, err[-2000:])
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"] and a_file.read_text() == "keep me"
