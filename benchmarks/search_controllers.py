"""Samples each search controller needs to reach 99% of a known optimum (numpy only).

The objective is :class:`mnas_keras.search.evaluation.synthetic.SyntheticObjective` over the MnasNet
default space (42 decisions, 5.5e17 samples): a separable score with exponentially decaying
decision weights, worst sample 0.8, optimum exactly 1.0. For each seed (objective and
controller), a controller runs until a sample scores >= 0.99 or the budget ends (a miss
counts as the budget). Random search is evaluated vectorized with a larger budget.

    .venv/bin/python benchmarks/search_controllers.py [--seeds 10] [--budget 5000]

Prints mean/median samples per controller, its ratio to random search and to regularized
evolution (lower is better), and the controller's own overhead per sample.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mnas_keras.search.controllers import make_controller  # noqa: E402
from mnas_keras.search.space import mnasnet_space  # noqa: E402
from mnas_keras.search.evaluation.synthetic import SyntheticObjective  # noqa: E402

CONTROLLERS = {
    "random search": ("random", {}),
    "regularized evolution (P=100, S=25)": ("evolution", {"population_size": 100, "sample_size": 25}),
    "regularized evolution (P=20, S=5)": ("evolution", {"population_size": 20, "sample_size": 5}),
    "REINFORCE, per-decision logits (TuNAS)": ("reinforce", {}),
    "LSTM + PPO (MnasNet)": ("ppo", {}),
}


def random_reach(num_choices, objective, seed, budget):
    rng = np.random.default_rng(seed + 100)
    samples = np.stack([rng.integers(0, n, size=budget) for n in num_choices], axis=1)
    hits = np.nonzero(objective.batch(samples) >= 0.99 * objective.optimum)[0]
    return (int(hits[0]) + 1 if len(hits) else budget), 0.0


def controller_reach(name, options, num_choices, objective, seed, budget):
    controller = make_controller(name, num_choices, seed=seed + 100, **options)
    start = time.perf_counter()
    for step in range(budget):
        trial = controller.ask()
        sample = list(trial.decisions)
        reward = objective(sample)
        controller.tell(trial.id, reward)
        if reward >= 0.99 * objective.optimum:
            return step + 1, (time.perf_counter() - start) / (step + 1)
    return budget, (time.perf_counter() - start) / budget


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=5000)
    parser.add_argument("--random_budget", type=int, default=200_000)
    args = parser.parse_args()
    num_choices = mnasnet_space().num_choices
    results = {}
    for label, (name, options) in CONTROLLERS.items():
        counts, overheads = [], []
        for seed in range(args.seeds):
            objective = SyntheticObjective(num_choices, seed=seed)
            if name == "random":
                count, overhead = random_reach(num_choices, objective, seed, args.random_budget)
            else:
                count, overhead = controller_reach(name, options, num_choices, objective, seed, args.budget)
            counts.append(count)
            overheads.append(overhead)
        results[label] = (counts, statistics.mean(overheads))
        print(f"{label}: {counts}", flush=True)
    random_mean = statistics.mean(results["random search"][0])
    evo_mean = statistics.mean(results["regularized evolution (P=100, S=25)"][0])
    print(f"\nSamples to reach 99% of the optimum, MnasNet space, {args.seeds} seeds "
          f"(budget {args.budget}, random {args.random_budget}):\n")
    print("| controller | mean | median | max | vs random | vs evolution (P=100) | ms/sample (controller) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, (counts, overhead) in results.items():
        mean = statistics.mean(counts)
        print(f"| {label} | {mean:.0f} | {statistics.median(counts):.0f} | {max(counts)} | "
              f"{mean / random_mean:.3f}x | {mean / evo_mean:.2f}x | {overhead * 1e3:.2f} |")


if __name__ == "__main__":
    main()
