"""Does the proxy task separate architectures? Accuracy spread of random architectures
against the seed-to-seed spread of one, on digits and on generated shapes x textures.

For each dataset: ``--archs`` architectures drawn uniformly from the MnasNet space (seed 0),
each trained once (seed 0) with the search's proxy recipe (``ProxyEvaluator``: Adam 2e-3,
batch 64, ``--epochs`` epochs, BN recalibration, validation accuracy on a held-out 20% of
the training split), and the MobileNetV2 reference trained with ``--seeds`` seeds (seed
changes initialization, data order and validation split). A proxy separates good from poor
architectures when the spread across architectures is well above the spread across seeds:
the table gives both standard deviations, their ratio, and the ranges.

    nice .venv/bin/python benchmarks/proxy_spread.py [--archs 20 --seeds 5 --epochs 2]

Finished trainings are appended to ``--results`` (JSON lines); a rerun resumes, and
``proxy_fidelity.py`` reuses the proxy trainings of the same architectures.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _proxy_runs import DATASETS, Results, load_data, random_architectures  # noqa: E402


def summarize(values) -> dict:
    v = np.asarray([x for x in values if x is not None], float)
    return {"n": len(v), "mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "min": float(v.min()), "max": float(v.max())}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--archs", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--num_train", type=int, default=2000, help="shapes_classification training images")
    parser.add_argument("--results", default="runs/proxy_benchmarks.jsonl")
    args = parser.parse_args(argv)
    from mnas_keras.search.space import mnasnet_space

    space = mnasnet_space()
    reference = space.reference_blocks()
    archs = random_architectures(space, args.archs, seed=0)
    results = Results(args.results)
    rows = []
    for dataset in args.datasets.split(","):
        n = args.num_train if dataset != "digits" else 0
        data = load_data(dataset, num_train=args.num_train)
        seeds = [results.get_or_train(dataset, data, reference, epochs=args.epochs, seed=s, num_train=n,
                                      label=f"reference seed {s}")["val_accuracy"] for s in range(args.seeds)]
        accs = [results.get_or_train(dataset, data, blocks, epochs=args.epochs, seed=0, num_train=n,
                                     label=f"arch {i}")["val_accuracy"] for i, blocks in enumerate(archs)]
        rows.append((dataset, summarize(accs), summarize(seeds), sum(a is None for a in accs)))
    print(f"\nProxy: {args.epochs} epochs, Adam 2e-3, batch 64, 32x32, validation accuracy; "
          f"{args.archs} random MnasNet-space architectures (seed 0) vs MobileNetV2 reference x {args.seeds} seeds\n")
    print("| dataset | archs: mean | archs: std | archs: min-max | reference: mean | reference: std (seeds) "
          "| reference: min-max | std ratio (archs / seeds) | range ratio |")
    print("|---|---:|---:|---|---:|---:|---|---:|---:|")
    for dataset, a, s, failed in rows:
        ratio = a["std"] / s["std"] if s["std"] else float("inf")
        range_ratio = (a["max"] - a["min"]) / (s["max"] - s["min"]) if s["max"] > s["min"] else float("inf")
        print(f"| {dataset} | {a['mean']:.3f} | {a['std']:.3f} | {a['min']:.3f}-{a['max']:.3f} | {s['mean']:.3f} | "
              f"{s['std']:.3f} | {s['min']:.3f}-{s['max']:.3f} | {ratio:.1f}x | {range_ratio:.1f}x |"
              + (f" ({failed} failed)" if failed else ""))


if __name__ == "__main__":
    main()
