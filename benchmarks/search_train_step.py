"""Proxy-training cost per sampled model: ``model.fit`` against the evaluator's own
``tf.function`` step and eager steps.

A search trains every sampled architecture from scratch for a few steps, so the one-off
cost of tracing a training step for each new model matters as much as the per-step time.
This script trains MobileNetV2's stages (the MnasNet space's reference) on 32x32 digits
with each ``ProxyEvaluator`` ``train_mode``, fresh model each time, modes interleaved over
``--repeats`` rounds, and reports the median wall time for a short (8 steps) and a
default-sized (2 epochs of 1,150 images, 36 steps) proxy training.

    .venv/bin/python benchmarks/search_train_step.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import keras

    from mnas_keras.search.evaluation.proxy import ProxyEvaluator
    from mnas_keras.search.space import mnasnet_space

    blocks = mnasnet_space().reference_blocks()
    sizes = {"8 steps": dict(train_subset=512, epochs=1), "36 steps (CLI default)": dict(epochs=2)}
    modes = ("fit", "graph", "eager")
    times = {(size, mode): [] for size in sizes for mode in modes}
    for _ in range(args.repeats):
        for size, options in sizes.items():
            for mode in modes:
                evaluator = ProxyEvaluator(train_mode=mode, batch_size=64, **options)
                (x, y), _, _ = evaluator.splits()
                model = evaluator.build(blocks)
                start = time.perf_counter()
                evaluator._train(model, x, y)
                times[(size, mode)].append(time.perf_counter() - start)
                del model
                keras.backend.clear_session()
                print(f"{size} {mode}: {times[(size, mode)][-1]:.1f} s", file=sys.stderr, flush=True)
    print(f"Proxy training of MobileNetV2's stages (32x32 digits, batch 64), median of {args.repeats}:\n")
    print("| training | model.fit | tf.function step (graph) | eager | fit / graph |")
    print("|---|---:|---:|---:|---:|")
    for size in sizes:
        med = {m: statistics.median(times[(size, m)]) for m in modes}
        print(f"| {size} | {med['fit']:.1f} s | {med['graph']:.1f} s | {med['eager']:.1f} s | "
              f"{med['fit'] / med['graph']:.2f}x |")


if __name__ == "__main__":
    main()
