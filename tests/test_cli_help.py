"""``--help`` of every absl-based console script lists the flags README documents, exit 0.

absl's ``--help`` lists only the flags of the ``__main__`` module; a console script's
``__main__`` is the generated wrapper, which defines none, so ``mnas-search --help`` printed a
bare usage line and exited 1. The entry points run here as the wrappers call them
(``from module import run; run()``), in parallel processes (no TensorFlow is imported).
"""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=ROOT, CUDA_VISIBLE_DEVICES="")

# The flags each tool's README section names (README.md, "Command-line tools" and the tools'
# own sections).
TOOLS = {
    "mnas-search": ("mnas_keras.search.cli.search",
                    ["controller", "reward", "target_ms", "num_samples", "run_dir", "describe_space",
                     "overrides", "print_config", "latency_mode", "executor", "max_in_flight"]),
    "mnas-train": ("mnas_keras.training.cli",
                   ["model", "blocks", "dataset", "data_dir", "model_dir", "strategy", "recipe",
                    "overrides", "print_config", "allow_changes", "mode"]),
    "mnas-latency-table": ("mnas_keras.search.cli.latency_table",
                           ["table", "all_parts", "calibration", "holdout", "space", "anchor"]),
    "mnas-ablation": ("mnas_keras.search.cli.ablation", ["out_dir", "num_samples", "target_ms"]),
    "mnas-demo": ("mnas_keras.demo", ["blocks", "alpha", "epochs", "size"]),
}


def test_help_lists_the_tools_flags(tmp_path):
    procs = {}
    for tool, (module, _) in TOOLS.items():
        for help_flag in ("--help", "-h"):
            code = f"import sys; sys.argv[0] = {tool!r}; from {module} import run; run()"
            procs[(tool, help_flag)] = subprocess.Popen(
                [sys.executable, "-c", code, help_flag], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, env=ENV, cwd=tmp_path)
    for (tool, help_flag), proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, (tool, help_flag, out, err[-2000:])
        assert out.startswith(f"usage: {tool} [flags]\n"), out[:200]
        for name in TOOLS[tool][1]:
            assert f"\n  --{name}:" in out or f"\n  --[no]{name}:" in out, (tool, name, out)
        assert "Traceback" not in err
