"""Memory over many evaluated samples: ProxyEvaluator (clears the Keras session, releases
models and interpreters) against the same work without the clean-up.

Each mode runs in its own fresh process and evaluates the same sequence of random
architectures from the MnasNet space (build, train a few steps, validate, convert, time at
32x32). The resident set size (VmRSS) is read after every sample.

    .venv/bin/python benchmarks/search_memory.py [--samples 30]

Prints the mean RSS over the first and the last ten samples and the growth per sample
(least-squares slope over all samples), for both modes side by side. RSS of a TensorFlow
process bounces by a few hundred MB from sample to sample (allocator caches), so the
means and the slope are what to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def worker(mode: str, samples: int) -> list[float]:
    import random

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, ROOT)
    from mnas_keras.search.evaluation.proxy import ProxyEvaluator
    from mnas_keras.search.space import mnasnet_space

    space = mnasnet_space()
    evaluator = ProxyEvaluator(epochs=1, train_subset=128, val_subset=64, bn_recalibration=64, warmup=2, runs=5,
                               isolate_latency=False)
    rng = random.Random(0)
    series = []
    for _ in range(samples):
        blocks = space.decode(space.sample(rng))
        if mode == "evaluator":
            result = evaluator.evaluate(blocks)
            assert result["status"] == "ok", result
        else:  # the same steps, no clean-up
            from mnas_keras.tflite import benchmark, convert

            (x, y), (xv, yv), _ = evaluator.splits()
            model = evaluator.build(blocks)
            evaluator._train(model, x, y)
            evaluator._recalibrate(model, x)
            evaluator.accuracy(model, xv, yv)
            benchmark(convert(model, input_shape=(32, 32, 3)), warmup=2, runs=5, input_shape=(32, 32, 3))
        series.append(rss_mb())
        print(f"{mode} sample {len(series)}: {series[-1]:.0f} MB", file=sys.stderr, flush=True)
    return series


def slope(values: list[float]) -> float:
    n = len(values)
    xs = range(n)
    mx, my = (n - 1) / 2, sum(values) / n
    return sum((x - mx) * (y - my) for x, y in zip(xs, values)) / max(1e-9, sum((x - mx) ** 2 for x in xs))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--worker", choices=["evaluator", "naive"])
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.samples)))
        return
    series = {}
    for mode in ("evaluator", "naive"):
        out = subprocess.run([sys.executable, __file__, "--worker", mode, "--samples", str(args.samples)],
                             capture_output=True, text=True, check=True)
        series[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"RSS over {args.samples} sampled MnasNet-space architectures (32x32, train+convert+time each):\n")
    print("| mode | mean RSS, first 10 | mean RSS, last 10 | growth per sample (fit) | max |")
    print("|---|---:|---:|---:|---:|")
    for mode, values in series.items():
        first, last = values[:10], values[-10:]
        print(f"| {mode} | {sum(first) / len(first):.0f} MB | {sum(last) / len(last):.0f} MB | "
              f"{slope(values):+.2f} MB | {max(values):.0f} MB |")
    print("\nseries:", json.dumps({k: [round(v) for v in vs] for k, vs in series.items()}))


if __name__ == "__main__":
    main()
