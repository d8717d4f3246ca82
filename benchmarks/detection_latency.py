"""SSDLite on LiteRT at 320x320: ours (with TFLite_Detection_PostProcess) vs the stock converter.

For SSDLite on MobileNetV3-Large / -Small (reduced tail) and MnasNet-A1, float32 and int8:

- ``ours``: ``mnas_keras.tflite.convert_detector`` (network + sigmoid + the built-in
  ``TFLite_Detection_PostProcess``: boxes, classes, scores, count out);
- ``stock``: ``tf.lite.TFLiteConverter.from_keras_model`` of the same Keras model (raw box
  encodings and logits, no decoding or NMS: the stock path cannot add the operator).

Both measured in one interleaved run (1 thread, XNNPACK, ``mnas_keras.tflite.benchmark_many``);
weights random with trained-looking BN statistics (``randomize_batch_norm``), int8 calibrated
on random images. Multiply-adds from ``mnas_keras.profile`` next to the papers' (MnasNet
Table 6 / MobileNetV3 Table 6: MnasNet-A1 SSDLite 0.84B, MobileNetV3-Large 0.62B, with the
halved tail 0.51B).

Usage: python benchmarks/detection_latency.py [--runs=30] [--rounds=3] [--models=large,small,mnasnet]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

PAPER_MADDS = {"large": "0.62B (halved tail 0.51B)", "small": "-", "mnasnet": "0.84B"}


def build(kind):
    from mnas_keras.heads import SSDLiteMnasNetA1, SSDLiteMobileNetV3Large, SSDLiteMobileNetV3Small

    constructor = {"large": SSDLiteMobileNetV3Large, "small": SSDLiteMobileNetV3Small, "mnasnet": SSDLiteMnasNetA1}[kind]
    return constructor(num_classes=90)


def stock(model, quantization, data):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantization == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x[None]] for x in data)
    return converter.convert()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="large,small,mnasnet")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calibration", type=int, default=16)
    args = parser.parse_args()
    from mnas_keras import profile
    from mnas_keras.tflite import benchmark_many, convert_detector, list_operators, randomize_batch_norm

    data = np.random.default_rng(0).uniform(0, 255, (args.calibration, 320, 320, 3)).astype("float32")
    rows = []
    for kind in args.models.split(","):
        model = build(kind)
        randomize_batch_norm(model)
        madds = profile(model).madds
        tflites = {}
        for q in (None, "int8"):
            label = q or "fp32"
            tflites[f"ours_{label}"] = convert_detector(model, q, data if q else None, score_threshold=0.01)
            tflites[f"stock_{label}"] = stock(model, q, data)
        assert all("TFLite_Detection_PostProcess" in list_operators(tflites[f"ours_{q}"]) for q in ("fp32", "int8"))
        results = benchmark_many(tflites, runs=args.runs, rounds=args.rounds, num_threads=1)
        for q in ("fp32", "int8"):
            ours, base = results[f"ours_{q}"].median_ms, results[f"stock_{q}"].median_ms
            rows.append({"model": kind, "quantization": q, "ours_ms": round(ours, 2), "stock_ms": round(base, 2),
                         "ratio": round(ours / base, 3), "madds_B": round(madds / 1e9, 3), "paper_madds": PAPER_MADDS[kind]})
        print(json.dumps(rows[-2:]), flush=True)
    print("| model | quant | ours incl. post-processing (ms) | stock, raw outputs (ms) | ratio | MAdds (ours) | MAdds (paper) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| SSDLite {r['model']} | {r['quantization']} | {r['ours_ms']} | {r['stock_ms']} | {r['ratio']} | "
              f"{r['madds_B']}B | {r['paper_madds']} |")


if __name__ == "__main__":
    main()
