"""LiteRT latency of this package's models against keras.applications, float32 and int8.

One run: every model is converted (ours with ``mnas_keras.tflite.convert``; the
keras.applications peers with the stock ``TFLiteConverter.from_keras_model`` path,
``method="keras"``), then all flatbuffers are measured together in ONE fresh process pinned
to one core, interleaved round by round (``benchmark_many(..., isolate=True)``): one
thread, XNNPACK, 224x224, batch 1, medians. int8 is full-integer post-training quantization
calibrated on random images (latency does not depend on the calibration values).

Printed:

* each model's fp32 and int8 median and their ratio (models here are freshly initialised,
  whose tiny activations make XNNPACK decline some int8 ADDs; ``benchmarks/tflite_int8.py``
  measures int8 with realistic BatchNorm statistics and explains hard-swish in int8);
* ours / keras.applications for MobileNetV3Large/Small (target <= 1.0);
* MnasNet-A1/B1/small against MobileNetV2 1.0 and 1.4 and NASNetMobile, beside the paper's
  Pixel-1 headline (A1 is 1.8x faster than MobileNetV2 1.4 and 2.3x faster than NASNet-A
  mobile).

Usage: ``python benchmarks/tflite_latency.py [--runs=100] [--rounds=10] [--no-int8]``
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

OURS = ["mobilenet_v3_large", "mobilenet_v3_small", "mnasnet_a1", "mnasnet_b1", "mnasnet_small"]
PEERS = {
    "keras:MobileNetV3Large": ("MobileNetV3Large", {}),
    "keras:MobileNetV3Small": ("MobileNetV3Small", {}),
    "keras:MobileNetV2": ("MobileNetV2", {}),
    "keras:MobileNetV2_1.4": ("MobileNetV2", {"alpha": 1.4}),
    "keras:NASNetMobile": ("NASNetMobile", {}),
}
PAIRS = [
    ("mobilenet_v3_large", "keras:MobileNetV3Large", None),
    ("mobilenet_v3_small", "keras:MobileNetV3Small", None),
    ("mnasnet_a1", "keras:MobileNetV2_1.4", "paper (Pixel 1): 1.8x faster"),
    ("mnasnet_a1", "keras:NASNetMobile", "paper (Pixel 1): 2.3x faster"),
    ("mnasnet_a1", "keras:MobileNetV2", None),
    ("mnasnet_b1", "keras:MobileNetV2", None),
    ("mnasnet_small", "keras:MobileNetV2", None),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--no-int8", action="store_true")
    args = parser.parse_args()

    import keras

    import mnas_keras
    from mnas_keras.tflite import benchmark_many, convert

    quantizations = [None] if args.no_int8 else [None, "int8"]
    calibration = np.random.default_rng(0).uniform(0, 255, (32, 224, 224, 3)).astype("float32")
    tflites, convert_s = {}, {}
    for name in OURS + list(PEERS):
        if name in PEERS:
            constructor, kwargs = PEERS[name]
            model = getattr(keras.applications, constructor)(input_shape=(224, 224, 3), weights=None, **kwargs)
            method = "keras"
        else:
            model = mnas_keras.create_model(name, input_shape=(224, 224, 3))
            method = "trace"
        for q in quantizations:
            start = time.perf_counter()
            tflites[(name, q)] = convert(
                model, q, representative_data=calibration if q else None, method=method
            )
            convert_s[(name, q)] = time.perf_counter() - start
        print(f"converted {name} ({method})", flush=True)

    keys = {f"{n}|{q or 'fp32'}": v for (n, q), v in tflites.items()}
    load = os.getloadavg()[0]
    results = benchmark_many(
        keys, warmup=args.warmup, runs=args.runs, rounds=args.rounds, isolate=True, timeout=3600
    )
    med = {k: r.median_ms for k, r in results.items()}
    first = next(iter(results.values()))

    print()
    print(f"{'model':<26}{'fp32 ms':>9}{'int8 ms':>9}{'int8/fp32':>11}{'fp32 p90':>10}{'conv s':>8}")
    for name in OURS + list(PEERS):
        fp = med[f"{name}|fp32"]
        i8 = med.get(f"{name}|int8")
        p90 = results[f"{name}|fp32"].p90_ms
        tail = f"{i8:>9.2f}{i8 / fp:>11.2f}" if i8 else f"{'-':>9}{'-':>11}"
        print(f"{name:<26}{fp:>9.2f}{tail}{p90:>10.2f}{convert_s[(name, None)]:>8.1f}")

    print()
    print(f"{'ours':<20}{'peer':<24}{'fp32 ratio':>11}{'int8 ratio':>11}  (ours/peer medians; < 1 = ours faster)")
    for ours, peer, note in PAIRS:
        fp = med[f"{ours}|fp32"] / med[f"{peer}|fp32"]
        i8 = (med[f"{ours}|int8"] / med[f"{peer}|int8"]) if not args.no_int8 else float("nan")
        speed = f"   = {1 / fp:.2f}x faster fp32" + (f"; {note}" if note else "")
        print(f"{ours:<20}{peer:<24}{fp:>11.2f}{i8:>11.2f}{speed}")
    print(
        f"\n(LiteRT {first.litert_version}, {first.num_threads} thread, {first.delegate}, 224x224, "
        f"{first.runs} runs in {args.rounds} interleaved rounds after {first.warmup} warm-up, one "
        f"isolated process pinned to cpu {first.cpu}; load average before measuring: "
        f"{load:.2f})"
    )


if __name__ == "__main__":
    main()
