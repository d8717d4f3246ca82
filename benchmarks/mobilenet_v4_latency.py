"""LiteRT latency of the five MobileNetV4 models beside MobileNetV3-Large/Small and MnasNet-A1.

One run: every model converted with ``mnas_keras.tflite.convert`` (float32, and int8 with
float input/output: full-integer post-training quantization, attention's SOFTMAX /
BATCH_MATMUL and GELU kept in float32, see ``FLOAT_OPS_IN_INT8``), then all sixteen
flatbuffers measured interleaved in one fresh process pinned to one core
(``benchmark_many(..., isolate=True)``): one thread, XNNPACK, batch 1, medians, each model
at its published input size (MobileNetV4: 224 / 256 / 384 / 256 / 384; the others 224).
Multiply-adds and parameters come from ``mnas_keras.models.profile`` at the same sizes.

Outputs are logits (``classifier_activation=None``): a final int8 SOFTMAX is not run by
XNNPACK and would add a second partition to every int8 model alike.

Weights: none can be downloaded; every model gets random trained-looking BatchNorm
statistics (``randomize_batch_norm``, seed 0) and the Hybrid models' layer scales are drawn
from [0.5, 1.5] instead of their 1e-5 init (an untrained 1e-5 branch makes int8 residual
ADD scales XNNPACK declines; trained layer scales are not 1e-5). Latency does not depend on
the weights' values otherwise.

Resumable: converted flatbuffers are kept in ``--work`` and reused; the results are written
to ``--json`` when measured. ``--plot`` writes the latency-vs-multiply-adds figure.

Usage: ``nice python benchmarks/mobilenet_v4_latency.py [--runs=30] [--rounds=5]
[--work=/tmp/mnv4_latency] [--json=benchmarks/mobilenet_v4_latency.json]
[--plot=benchmarks/mobilenet_v4_latency.png]``
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

MODELS = {  # registry name: (label, published input size, paper MACs in G or None)
    "mobilenet_v4_conv_small": ("MNv4-Conv-S", 224, 0.2),
    "mobilenet_v4_conv_medium": ("MNv4-Conv-M", 256, 1.0),
    "mobilenet_v4_hybrid_medium": ("MNv4-Hybrid-M", 256, 1.2),
    "mobilenet_v4_conv_large": ("MNv4-Conv-L", 384, 5.9),
    "mobilenet_v4_hybrid_large": ("MNv4-Hybrid-L", 384, 7.2),
    "mobilenet_v3_large": ("MobileNetV3-Large", 224, 0.219),
    "mobilenet_v3_small": ("MobileNetV3-Small", 224, 0.056),
    "mnasnet_a1": ("MnasNet-A1", 224, 0.312),
}


def build(name, size):
    import mnas_keras
    from mnas_keras.layers import LayerScale
    from mnas_keras.tflite.latency import randomize_batch_norm

    model = mnas_keras.create_model(name, input_shape=(size, size, 3), classifier_activation=None)
    randomize_batch_norm(model, seed=0)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, LayerScale):
            layer.gamma.assign(rng.uniform(0.5, 1.5, layer.gamma.shape).astype("float32"))
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--work", default="/tmp/mnv4_latency")
    parser.add_argument("--json", default="benchmarks/mobilenet_v4_latency.json")
    parser.add_argument("--plot", default="benchmarks/mobilenet_v4_latency.png")
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()

    from mnas_keras.models.profiler import profile
    from mnas_keras.tflite import benchmark_many, convert, delegation
    from mnas_keras.tflite.latency import litert_version

    os.makedirs(args.work, exist_ok=True)
    names = [n for n in args.models.split(",") if n]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; expected some of {list(MODELS)}")
    info, flatbuffers = {}, {}
    for name in names:
        label, size, paper = MODELS[name]
        meta_path = os.path.join(args.work, f"{name}.json")
        paths = {q: os.path.join(args.work, f"{name}_{q}.tflite") for q in ("fp32", "int8")}
        if os.path.exists(meta_path) and all(os.path.exists(p) for p in paths.values()):
            with open(meta_path) as f:
                info[name] = json.load(f)
        else:
            t0 = time.time()
            model = build(name, size)
            p = profile(model)
            data = np.random.default_rng(1).uniform(0, 255, (8, size, size, 3)).astype("float32")
            convert(model, batch_size=1, path=paths["fp32"])
            convert(model, "int8", data, batch_size=1, path=paths["int8"])
            info[name] = {"label": label, "size": size, "paper_gmacs": paper, "params": p.params,
                          "trainable_params": p.trainable_params, "madds": p.madds}
            for q, path in paths.items():
                report = delegation(path)
                info[name][f"{q}_partitions"] = report.partitions
                info[name][f"{q}_undelegated"] = report.undelegated
            with open(meta_path + ".tmp", "w") as f:
                json.dump(info[name], f)
            os.replace(meta_path + ".tmp", meta_path)
            print(f"converted {label} in {time.time() - t0:.0f} s", flush=True)
        for q, path in paths.items():
            flatbuffers[f"{name}:{q}"] = path
    results = benchmark_many(flatbuffers, warmup=args.warmup, runs=args.runs, rounds=args.rounds,
                             isolate=True, timeout=7200)
    rows = []
    for name in names:
        row = dict(info[name], name=name)
        for q in ("fp32", "int8"):
            r = results[f"{name}:{q}"]
            row[f"{q}_ms"] = r.median_ms
            row[f"{q}_p90_ms"] = r.p90_ms
        rows.append(row)
    first = results[next(iter(results))]
    out = {"litert": litert_version(), "runs": first.runs, "rounds": args.rounds, "threads": 1, "rows": rows}
    with open(args.json + ".tmp", "w") as f:
        json.dump(out, f, indent=1)
    os.replace(args.json + ".tmp", args.json)

    print(f"\nLiteRT {out['litert']}, 1 thread, XNNPACK, batch 1, medians of {first.runs} runs in "
          f"{args.rounds} interleaved rounds")
    print("| model | input | params | MAdds (ours) | MAdds (paper) | fp32 ms | int8 ms | int8/fp32 | "
          "int8 partitions |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        paper = f"{r['paper_gmacs']:.3g}G" if r["paper_gmacs"] else ""
        print(f"| {r['label']} | {r['size']} | {r['params'] / 1e6:.2f}M | {r['madds'] / 1e9:.3f}G | {paper} | "
              f"{r['fp32_ms']:.2f} | {r['int8_ms']:.2f} | {r['int8_ms'] / r['fp32_ms']:.2f} | "
              f"{r['int8_partitions']} |")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4.5))
        for q, marker in (("fp32", "o"), ("int8", "s")):
            xs = [r["madds"] / 1e9 for r in rows]
            ys = [r[f"{q}_ms"] for r in rows]
            ax.scatter(xs, ys, marker=marker, label=q)
            for r, x, y in zip(rows, xs, ys):
                if q == "fp32":
                    ax.annotate(r["label"], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("multiply-adds (G, mnas_keras.models.profile)")
        ax.set_ylabel("LiteRT latency, 1 thread (ms, median)")
        ax.set_title("MobileNetV4 vs MobileNetV3 / MnasNet-A1 at published input sizes")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
