"""int8 against fp32 on LiteRT, and where the int8 time of a hard-swish model goes.

One run, one fresh process pinned to one core, every flatbuffer measured interleaved
(``benchmark_many(..., isolate=True)``): one thread, XNNPACK, 224x224, batch 1, medians.

Models: this package's MobileNetV3Large/Small and MnasNet-A1/B1 (``mnas_keras.tflite.convert``,
int8 with the default ``hard_swish="auto"``, i.e. the folded rewrite, and with
``hard_swish="native"``, the plain conversion); keras.applications MobileNetV3Large/Small and
MobileNetV2 converted with the stock ``TFLiteConverter.from_keras_model``.

Weights: no ImageNet weights can be downloaded here, and freshly initialised BatchNorm
(mean 0, variance 1, identity) gives activation ranges no trained model has; XNNPACK then
declines some int8 operators whose quantization scales fall outside its limits, which
would distort the int8 timings. So every model gets the same random BN statistics (gamma,
variance in [0.5, 1.5], beta, mean ~ N(0, 0.2), seed 0). ``--weights=imagenet`` uses the
real weights where they are in the Keras cache.

Sections printed:

1. per model: fp32 ms, int8 ms, int8/fp32, XNNPACK partitions in the int8 model;
2. the profile of hard-swish in int8: every hard-swish layer of MobileNetV3Large measured
   alone at its own shape (fp32 HARD_SWISH, int8 HARD_SWISH, int8 folded ADD+MUL), summed,
   beside the whole-model difference.

Usage: ``python benchmarks/tflite_int8.py [--runs=100] [--rounds=10] [--weights=none]``
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from mnas_keras.tflite.latency import randomize_batch_norm  # noqa: E402

OURS = {
    "MobileNetV3Large": "mobilenet_v3_large",
    "MobileNetV3Small": "mobilenet_v3_small",
    "MnasNetA1": "mnasnet_a1",
    "MnasNetB1": "mnasnet_b1",
}
PEERS = ["MobileNetV3Large", "MobileNetV3Small", "MobileNetV2"]


def partitions(tflite) -> int:
    """XNNPACK delegate partitions after the interpreter applied the delegate."""
    from mnas_keras.tflite import load_interpreter

    interpreter = load_interpreter(tflite)
    return sum(op["op_name"] == "DELEGATE" for op in interpreter._get_ops_details())


def stock_convert(model, quantization, data):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantization == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x[None]] for x in data)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        return converter.convert()


def hard_swish_profile(model, data):
    """Single-activation flatbuffers at each hard-swish input shape of ``model``."""
    import keras

    from mnas_keras.tflite import convert
    from mnas_keras.tflite.rewrite import is_hard_swish

    # Each activation's input range, from the float model on the calibration images.
    layers = [layer for layer in model.layers if is_hard_swish(layer)]
    probe = keras.Model(model.inputs, [layer.input for layer in layers])
    inputs = probe.predict(data[:8], verbose=0, batch_size=8)
    out = {}
    for layer, x in zip(layers, inputs):
        shape = tuple(x.shape[1:])
        inp = keras.Input(shape)
        y = keras.layers.Activation("hard_swish")(inp)
        # A 1x1 convolution after it gives the folded form a kernel to absorb the 1/6, as in the network.
        y = keras.layers.Conv2D(shape[-1], 1, use_bias=False)(y)
        single = keras.Model(inp, y)
        conv_only = keras.Sequential([keras.Input(shape), keras.layers.Conv2D(shape[-1], 1, use_bias=False)])
        out[layer.name] = {
            "shape": shape,
            "fp32": convert(single),
            "int8_native": convert(single, "int8", representative_data=x, hard_swish="native"),
            "int8_fold": convert(single, "int8", representative_data=x),
            "int8_conv_only": convert(conv_only, "int8", representative_data=x),
        }
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--weights", choices=["none", "imagenet"], default="none")
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()

    import keras

    import mnas_keras
    from mnas_keras.tflite import benchmark_many, conversion_info, convert

    weights = None if args.weights == "none" else "imagenet"
    data = np.random.default_rng(0).uniform(0, 255, (32, 224, 224, 3)).astype("float32")
    tflites, notes = {}, {}
    start = time.perf_counter()
    for label, name in OURS.items():
        model = mnas_keras.create_model(name, input_shape=(224, 224, 3), weights=weights)
        if weights is None:
            randomize_batch_norm(model)
        tflites[f"ours:{label}|fp32"] = convert(model)
        tflites[f"ours:{label}|int8"] = convert(model, "int8", representative_data=data)
        notes[f"ours:{label}"] = conversion_info(tflites[f"ours:{label}|int8"])["hard_swish"]
        if notes[f"ours:{label}"]["mode"] != "native":
            tflites[f"ours:{label}|int8 native"] = convert(
                model, "int8", representative_data=data, hard_swish="native"
            )
        if label == "MobileNetV3Large" and not args.no_profile:
            profile = hard_swish_profile(model, data)
    for label in PEERS:
        model = getattr(keras.applications, label)(input_shape=(224, 224, 3), weights=weights)
        if weights is None:
            randomize_batch_norm(model)
        prep = getattr(keras.applications, {"MobileNetV2": "mobilenet_v2"}.get(label, "mobilenet_v3"))
        calib = prep.preprocess_input(data.copy())
        tflites[f"keras:{label}|fp32"] = stock_convert(model, None, calib)
        tflites[f"keras:{label}|int8"] = stock_convert(model, "int8", calib)
    print(f"converted {len(tflites)} flatbuffers in {time.perf_counter() - start:.0f} s", flush=True)

    measured = dict(tflites)
    if not args.no_profile:
        for layer, entry in profile.items():
            for kind in ("fp32", "int8_native", "int8_fold", "int8_conv_only"):
                measured[f"hs:{layer}|{kind}"] = entry[kind]
    load = os.getloadavg()[0]
    results = benchmark_many(
        measured, warmup=args.warmup, runs=args.runs, rounds=args.rounds, isolate=True, timeout=3600
    )
    med = {k: r.median_ms for k, r in results.items()}
    first = next(iter(results.values()))

    print("\n1. fp32 and int8 (full-integer post-training), medians in ms")
    print(f"{'model':<26}{'fp32':>8}{'int8':>8}{'int8/fp32':>11}{'partitions':>12}  int8 conversion")
    rows = [(k.split("|")[0], k.split("|")[1]) for k in tflites if not k.endswith("|fp32")]
    for model, kind in rows:
        fp, i8 = med[f"{model}|fp32"], med[f"{model}|{kind}"]
        how = "stock converter" if model.startswith("keras:") else (
            "hard_swish=native" if kind.endswith("native") else f"default: {notes[model]}")
        print(f"{model + ' ' + kind[5:]:<26}{fp:>8.2f}{i8:>8.2f}{i8 / fp:>11.2f}"
              f"{partitions(tflites[f'{model}|{kind}']):>12}  {how}")
    for ours, peer in [("MobileNetV3Large", "MobileNetV3Large"), ("MobileNetV3Small", "MobileNetV3Small"),
                       ("MnasNetA1", "MobileNetV2"), ("MnasNetB1", "MobileNetV2")]:
        print(f"ours:{ours} / keras:{peer}: fp32 {med[f'ours:{ours}|fp32'] / med[f'keras:{peer}|fp32']:.2f}, "
              f"int8 {med[f'ours:{ours}|int8'] / med[f'keras:{peer}|int8']:.2f}")

    if not args.no_profile:
        print("\n2. hard-swish of MobileNetV3Large, each layer alone (activation + 1x1 conv), ms")
        print(f"{'layer':<34}{'shape':>16}{'fp32':>8}{'int8 HS':>9}{'int8 fold':>10}{'conv only':>10}")
        total = {"fp32": 0.0, "int8_native": 0.0, "int8_fold": 0.0, "int8_conv_only": 0.0}
        for layer, entry in profile.items():
            vals = {k: med[f"hs:{layer}|{k}"] for k in total}
            for k in total:
                total[k] += vals[k]
            print(f"{layer:<34}{str(entry['shape']):>16}{vals['fp32']:>8.3f}{vals['int8_native']:>9.3f}"
                  f"{vals['int8_fold']:>10.3f}{vals['int8_conv_only']:>10.3f}")
        print(f"{'sum':<50}{total['fp32']:>8.2f}{total['int8_native']:>9.2f}{total['int8_fold']:>10.2f}"
              f"{total['int8_conv_only']:>10.2f}")
        hs_native = total["int8_native"] - total["int8_conv_only"]
        hs_fold = total["int8_fold"] - total["int8_conv_only"]
        whole = med["ours:MobileNetV3Large|int8 native"] - med["ours:MobileNetV3Large|int8"]
        print(f"int8 hard-swish alone (minus the conv): native {hs_native:.2f} ms, folded {hs_fold:.2f} ms; "
              f"difference {hs_native - hs_fold:.2f} ms, whole-model difference {whole:.2f} ms")
    print(
        f"\n(LiteRT {first.litert_version}, {first.num_threads} thread, {first.delegate}, 224x224, "
        f"{first.runs} runs in {args.rounds} interleaved rounds after {first.warmup} warm-up, one "
        f"isolated process pinned to cpu {first.cpu}; weights: {args.weights}"
        f"{' + random BN statistics' if weights is None else ''}; load average before measuring: {load:.2f})"
    )


if __name__ == "__main__":
    main()
