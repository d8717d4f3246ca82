"""NASNetMobile from cell strings against keras.applications.NASNetMobile: build time, size,
multiply-adds and float32 LiteRT latency, side by side in one run.

Ours (``mnas_keras.applications.NASNetMobile``, built by ``mnas_keras.models.cells`` from
NASNet-A's cell strings, converted with ``mnas_keras.tflite.convert``) and the peer
(``keras.applications.NASNetMobile``, the stock converter, ``method="keras"``) are the same
network, so the latency ratio should be 1 within noise; MnasNet-A1 is added for the paper's
headline (Pixel 1: A1 2.3x faster than NASNet-A Mobile, 78 vs 183 ms). All flatbuffers are
measured interleaved in one fresh process pinned to one core: one thread, XNNPACK, 224x224,
batch 1, medians.

Usage: ``python benchmarks/nasnet_latency.py [--runs=50] [--rounds=5]``
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import keras

    import mnas_keras
    from mnas_keras.applications import NASNetMobile
    from mnas_keras.models import profile
    from mnas_keras.tflite import benchmark_many, convert

    builders = {
        "ours:NASNetMobile": (lambda: NASNetMobile(weights=None), "trace"),
        "keras:NASNetMobile": (lambda: keras.applications.NASNetMobile(weights=None), "keras"),
        "ours:mnasnet_a1": (lambda: mnas_keras.create_model("mnasnet_a1", input_shape=(224, 224, 3)), "trace"),
    }
    tflites, rows = {}, {}
    for name, (build, method) in builders.items():
        start = time.perf_counter()
        model = build()
        built = time.perf_counter() - start
        counts = profile(model)
        start = time.perf_counter()
        tflites[name] = convert(model, method=method)
        rows[name] = (built, time.perf_counter() - start, counts.params, counts.madds)
        print(f"built and converted {name}", flush=True)
    load = os.getloadavg()[0]
    results = benchmark_many(tflites, warmup=args.warmup, runs=args.runs, rounds=args.rounds, isolate=True,
                             timeout=3600)
    print()
    print(f"{'model':<22}{'build s':>9}{'convert s':>11}{'params':>12}{'MAdds':>10}{'fp32 ms':>9}{'p90 ms':>9}")
    for name, (built, converted, params, madds) in rows.items():
        r = results[name]
        print(f"{name:<22}{built:>9.1f}{converted:>11.1f}{params:>12,}{madds / 1e6:>9.1f}M"
              f"{r.median_ms:>9.2f}{r.p90_ms:>9.2f}")
    med = {k: r.median_ms for k, r in results.items()}
    print()
    print(f"ours/keras NASNetMobile fp32 latency: {med['ours:NASNetMobile'] / med['keras:NASNetMobile']:.2f} "
          "(same network: target 1.0 within noise)")
    print(f"NASNetMobile / MnasNet-A1 fp32 latency: {med['ours:NASNetMobile'] / med['ours:mnasnet_a1']:.2f}x "
          "(paper, Pixel 1: 183 / 78 ms = 2.35x)")
    first = next(iter(results.values()))
    print(f"\n(LiteRT {first.litert_version}, {first.num_threads} thread, {first.delegate}, {first.runs} runs in "
          f"{args.rounds} interleaved rounds after {first.warmup} warm-up, cpu {first.cpu}; load average "
          f"before measuring: {load:.2f})")


if __name__ == "__main__":
    main()
