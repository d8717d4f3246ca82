"""A stray positional argument is one ``<tool>: error:`` line with exit status 2, before any
work, for every console script (run as the generated wrappers call them).

Found by a new user's pass: ``mnas-search stray`` and ``mnas-ablation stray`` printed absl's
usage text and exited 1; ``mnas-latency-table stray`` ignored it and started timing.
"""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""}

TOOLS = {  # console script -> (module of its run(), flags keeping a try small and local)
    "mnas-search": ("mnas_keras.search.cli.search", ["--evaluator=synthetic", "--num_samples=1", "--run_dir=run"]),
    "mnas-ablation": ("mnas_keras.search.cli.ablation", ["--evaluator=synthetic", "--num_samples=1", "--out_dir=out"]),
    "mnas-latency-table": ("mnas_keras.search.cli.latency_table", ["--table=lt.json", "--latency_size=32"]),
    "mnas-train": ("mnas_keras.training.cli", ["--recipe=digits", "--model_dir=train"]),
    "mnas-demo": ("mnas_keras.demo", []),
    "mnas-netadapt": ("mnas_keras.search.netadapt.cli", ["--run_dir=na", "--latency=madds"]),
    "mnas-scaling": ("mnas_keras.search.scaling", ["--out=scaling", "--sizes=32", "--no_int8"]),
    "mnas-tflite": ("mnas_keras.tflite.cli", ["ops", "--model=m.tflite"]),
}


def test_stray_argument_is_one_line_exit_2(tmp_path):
    procs = {}
    for tool, (module, flags) in TOOLS.items():
        code = f"import sys; sys.argv[0] = {tool!r}; from {module} import run; run()"
        procs[tool] = subprocess.Popen([sys.executable, "-c", code, *flags, "stray"], cwd=tmp_path, env=ENV,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for tool, proc in procs.items():
            _, err = proc.communicate(timeout=180)
            lines = [line for line in err.splitlines() if line.strip()]
            assert proc.returncode == 2 and len(lines) == 1, (tool, proc.returncode, err[-2000:])
            assert lines[0].startswith(f"{tool}: error: ") and "stray" in lines[0], lines[0]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert sorted(os.listdir(tmp_path)) == []  # nothing was started
