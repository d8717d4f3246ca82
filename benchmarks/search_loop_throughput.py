"""Throughput of the search loop itself: samples per second with the synthetic evaluator.

The synthetic evaluator costs microseconds, so this measures the loop: controller ask/tell,
journal appends (each fsynced), caching, checkpoints (every step). 300 samples of the
MnasNet space per controller, no TensorBoard, no export, in process, each run in a fresh run
directory and a fresh process. With ``--against DIR`` (a checkout of other code, e.g. the
release before a change: ``git archive REV mnas_keras | tar -x -C DIR``) the two are run
interleaved, repeat by repeat, and the table gives both medians and their ratio (> 1: this
code is faster).

Usage: ``PYTHONPATH=. python benchmarks/search_loop_throughput.py [--repeats 3] [--against DIR]``
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

CONTROLLERS = ("ppo", "reinforce", "evolution", "random")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def one_run(controller: str, num_samples: int) -> float:
    from mnas_keras.search import Search, SyntheticEvaluator, mnasnet_space

    space = mnasnet_space()
    folder = tempfile.mkdtemp()
    try:
        search = Search(space, SyntheticEvaluator(space), folder, controller=controller, seed=0,
                        num_samples=num_samples, target_ms=3.0, evaluate_reference=False, log=None, export=False,
                        tensorboard=False)
        start = time.perf_counter()
        search.run()
        return num_samples / (time.perf_counter() - start)
    finally:
        shutil.rmtree(folder)


def in_process(code_dir: str, controller: str, num_samples: int) -> float:
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", controller,
                           f"--num_samples={num_samples}"], env={**os.environ, "PYTHONPATH": code_dir},
                          capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--num_samples", type=int, default=300)
    parser.add_argument("--against", default=None, help="a folder holding other mnas_keras code to compare with")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(one_run(args.one, args.num_samples))
        return
    trees = {"this": ROOT} if args.against is None else {"this": ROOT, "against": os.path.abspath(args.against)}
    print(f"| controller | " + " | ".join(f"{name} samples/s" for name in trees)
          + (" | ratio |" if args.against else " |"))
    print("|---" * (len(trees) + 1 + bool(args.against)) + "|")
    for controller in CONTROLLERS:
        rates = {name: [] for name in trees}
        for _ in range(args.repeats):
            for name, folder in trees.items():
                rates[name].append(in_process(folder, controller, args.num_samples))
        medians = {name: statistics.median(values) for name, values in rates.items()}
        row = f"| {controller} | " + " | ".join(f"{medians[name]:.1f}" for name in trees)
        if args.against:
            row += f" | {medians['this'] / medians['against']:.2f}"
        print(row + " |")


if __name__ == "__main__":
    main()
