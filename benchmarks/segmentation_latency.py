"""LR-ASPP on LiteRT: this package's converter against the stock one, fp32 and int8.

Models (``mnas_keras.heads``): LR-ASPP MobileNetV3-Large and -Small and MnasNet-A1, each
with the paper's Cityscapes setting (reduced tail, 128 filters, output stride 16; the gate
pooled 49x49 with stride (16, 20) at 1024x2048, globally at smaller sizes where a 49x49
kernel does not fit), at 512x512 and at 1024x2048 (the paper's size).

For each model and precision two flatbuffers are measured side by side in one isolated,
interleaved run (``benchmark_many(..., isolate=True)``; one thread, XNNPACK, batch 1,
medians): ``ours`` = ``mnas_keras.tflite.convert`` (dilated convolutions as native dilated
ops, see ``mnas_keras.tflite.dilation``) and ``stock`` = ``TFLiteConverter.from_keras_model``.
Also printed: each flatbuffer's SPACE_TO_BATCH_ND count and XNNPACK partitions, and the
model's multiply-adds from ``mnas_keras.profile`` beside the paper's 9.74B (Large) and 2.90B
(Small) at 1024x2048 (MobileNetV3 paper, table 7).

Weights: random, with the same random BN statistics for every model (see
``benchmarks/tflite_int8.py`` for why); int8 is calibrated on a few random images.

Usage: ``python benchmarks/segmentation_latency.py [--sizes=512x512,1024x2048] [--runs=10]``
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

PAPER_MADDS = {"LRASPPMobileNetV3Large": 9.74e9, "LRASPPMobileNetV3Small": 2.90e9}
MODELS = ("LRASPPMobileNetV3Large", "LRASPPMobileNetV3Small", "LRASPPMnasNetA1")


def stock_convert(model, quantization, data):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantization == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x[None]] for x in data)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with contextlib.redirect_stdout(io.StringIO()):
        return converter.convert()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="512x512,1024x2048")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calibration", type=int, default=4)
    parser.add_argument("--no-int8", action="store_true")
    args = parser.parse_args()

    from mnas_keras import heads, profile
    from mnas_keras.heads.lraspp import PAPER_POOLING
    from mnas_keras.tflite import benchmark_many, convert, delegation, list_operators
    from mnas_keras.tflite.latency import randomize_batch_norm

    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    precisions = ["fp32"] if args.no_int8 else ["fp32", "int8"]
    tflites, info, madds = {}, {}, {}
    start = time.perf_counter()
    for h, w in sizes:
        data = np.random.default_rng(0).uniform(0, 255, (args.calibration, h, w, 3)).astype("float32")
        for name in args.models.split(","):
            pooling = PAPER_POOLING if min(h, w) >= 769 else "global"
            model = getattr(heads, name)(input_shape=(h, w, 3), num_classes=19, reduced_tail=True,
                                         pooling=pooling)
            randomize_batch_norm(model)
            madds[(name, h, w)] = profile(model).madds
            for precision in precisions:
                q = None if precision == "fp32" else "int8"
                ours = convert(model, q, representative_data=data if q else None)
                stock = stock_convert(model, q, data)
                for kind, fb in (("ours", ours), ("stock", stock)):
                    key = f"{name}|{h}x{w}|{precision}|{kind}"
                    tflites[key] = fb
                    report = delegation(fb, input_shape=(1, h, w, 3))
                    info[key] = (list_operators(fb).get("SPACE_TO_BATCH_ND", 0), report.partitions)
            print(f"converted {name} at {h}x{w} ({time.perf_counter() - start:.0f} s)", flush=True)
    shapes = {k: (1, *[int(v) for v in k.split("|")[1].split("x")], 3) for k in tflites}
    load = os.getloadavg()[0]
    results = benchmark_many(tflites, input_shape=shapes, warmup=2, runs=args.runs, rounds=args.rounds,
                             isolate=True, timeout=7200)
    med = {k: r.median_ms for k, r in results.items()}
    first = next(iter(results.values()))
    print(f"\n{'model':<24}{'size':>10}{'prec':>6}{'ours ms':>10}{'stock ms':>10}{'stock/ours':>11}"
          f"{'S2B ours/stock':>16}{'partitions ours/stock':>23}{'MAdds':>9}{'paper':>8}")
    for key in tflites:
        name, size, precision, kind = key.split("|")
        if kind != "ours":
            continue
        stock_key = f"{name}|{size}|{precision}|stock"
        h, w = (int(v) for v in size.split("x"))
        paper = PAPER_MADDS.get(name) if (h, w) == (1024, 2048) else None
        print(f"{name:<24}{size:>10}{precision:>6}{med[key]:>10.1f}{med[stock_key]:>10.1f}"
              f"{med[stock_key] / med[key]:>11.2f}{info[key][0]:>8}/{info[stock_key][0]:<7}"
              f"{info[key][1]:>12}/{info[stock_key][1]:<10}{madds[(name, h, w)] / 1e9:>8.2f}B"
              f"{(f'{paper / 1e9:.2f}B' if paper else '-'):>8}")
    print(
        f"\n(LiteRT {first.litert_version}, {first.num_threads} thread, {first.delegate}, batch 1, "
        f"{first.runs} runs in {args.rounds} interleaved rounds after {first.warmup} warm-up, one "
        f"isolated process pinned to cpu {first.cpu}; random weights + random BN statistics, "
        f"{args.calibration} calibration images; load average before measuring: {load:.2f})"
    )


if __name__ == "__main__":
    main()
