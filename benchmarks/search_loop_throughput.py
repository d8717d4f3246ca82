"""Throughput of the search loop itself: samples per second with the synthetic evaluator.

The synthetic evaluator costs microseconds, so this measures the loop: controller ask/tell,
journal appends (each fsynced), caching, checkpoints. 300 samples of the MnasNet space per
controller, no TensorBoard, no export, in process; median of ``--repeats`` runs, each in a
fresh run directory. Run it before and after a change to the loop, on the same machine.

Usage: ``PYTHONPATH=. python benchmarks/search_loop_throughput.py [--repeats 3]``
"""

import argparse
import shutil
import statistics
import tempfile
import time

from mnas_keras.search import Search, SyntheticEvaluator, mnasnet_space

CONTROLLERS = {"ppo": {}, "reinforce": {}, "evolution": {}, "random": {}}


def one_run(controller: str, num_samples: int) -> float:
    space = mnasnet_space()
    folder = tempfile.mkdtemp()
    try:
        search = Search(space, SyntheticEvaluator(space), folder, controller=controller,
                        controller_options=CONTROLLERS[controller], seed=0, num_samples=num_samples, target_ms=3.0,
                        evaluate_reference=False, log=None, export=False, tensorboard=False)
        start = time.perf_counter()
        search.run()
        return num_samples / (time.perf_counter() - start)
    finally:
        shutil.rmtree(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--num_samples", type=int, default=300)
    args = parser.parse_args()
    print(f"| controller | samples/s (median of {args.repeats}, {args.num_samples} samples) |")
    print("|---|---|")
    for controller in CONTROLLERS:
        rates = [one_run(controller, args.num_samples) for _ in range(args.repeats)]
        print(f"| {controller} | {statistics.median(rates):.1f} |")


if __name__ == "__main__":
    main()
