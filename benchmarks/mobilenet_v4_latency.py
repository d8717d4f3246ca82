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

Peers at equal multiply-adds (``--matched``, default on): MobileNetV3-Large, MobileNetV3-Small
and MnasNet-A1 are each also run at the input resolution that gives them the multiply-adds of
each MobileNetV4 model (15 more models). Resolution, not width, is scaled: at a multiple of 32
every feature map divides evenly, so a network's multiply-adds are exactly
``S * (r / 224)**2 + C`` (``S``: the layers with a spatial output at 224, ``C``: those after
global pooling, SE's 1x1 convs and the classifier), and the closest multiple of 32 is chosen
from one profile at 224 (then checked by profiling the model built at that size; the
multiply-add ratio to the target is reported). int8 models of these peers are calibrated on 2
images (latency does not depend on the calibration ranges' precision).

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


PEERS = ("mobilenet_v3_large", "mobilenet_v3_small", "mnasnet_a1")


def split_madds(profile) -> tuple[int, int]:
    """``(spatial, constant)`` multiply-adds of a profile: layers with an output feature map
    larger than 1x1, and the rest (after global pooling: SE's 1x1 convs, head, classifier)."""
    spatial = sum(r.madds for r in profile.layers  # output_shape: (H, W, C) or (units,)
                  if len(r.output_shape) == 3 and tuple(r.output_shape[:2]) != (1, 1))
    if not spatial:
        raise ValueError(f"no layer of {profile.model_name} has a spatial output: cannot scale its resolution")
    return spatial, profile.madds - spatial


def matched_resolution(spatial: int, constant: int, target: float, base: int = 224) -> int:
    """The multiple of 32 whose multiply-adds ``spatial * (r / base)**2 + constant`` are
    closest to ``target``.

    Example:
        >>> matched_resolution(200, 10, 4 * 200 + 10)
        448
    """
    return min(range(32, 8193, 32), key=lambda r: abs(spatial * (r / base) ** 2 + constant - target))


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
    parser.add_argument("--convert_only", action="store_true", help="convert (cached in --work), do not time")
    parser.add_argument("--peers", default=",".join(PEERS), help="peers to scale to equal multiply-adds")
    parser.add_argument("--time_only", action="store_true",
                        help="convert nothing more: time what --work holds (missing matched peers are skipped)")
    parser.add_argument("--no_matched", action="store_true", help="skip the peers at equal multiply-adds")
    args = parser.parse_args()

    from mnas_keras.models.profiler import profile
    from mnas_keras.tflite import benchmark_many, convert, delegation
    from mnas_keras.tflite.latency import litert_version

    os.makedirs(args.work, exist_ok=True)
    names = [n for n in args.models.split(",") if n]
    bad_peers = [p for p in args.peers.split(",") if p and p not in PEERS]
    if bad_peers:
        parser.error(f"unknown peer(s) {bad_peers}; expected some of {list(PEERS)}")
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
    matched = []  # (key, peer, size, target name)
    if not args.no_matched:
        for peer in [p for p in args.peers.split(",") if p]:
            base_path = os.path.join(args.work, f"{peer}_split224.json")
            if not os.path.exists(base_path):
                split = split_madds(profile(build(peer, 224)))
                with open(base_path, "w") as f:
                    json.dump(split, f)
            with open(base_path) as f:
                spatial, constant = json.load(f)
            for target in [n for n in names if n.startswith("mobilenet_v4")]:
                size = matched_resolution(spatial, constant, info[target]["madds"])
                key = f"{peer}@{size}"
                meta_path = os.path.join(args.work, f"{key}.json")
                paths = {q: os.path.join(args.work, f"{key}_{q}.tflite") for q in ("fp32", "int8")}
                if args.time_only and not os.path.exists(meta_path):
                    print(f"not converted, skipped: {key} (for {target})")
                    continue
                matched.append((key, peer, size, target))
                if not (os.path.exists(meta_path) and all(os.path.exists(p) for p in paths.values())):
                    t0 = time.time()
                    model = build(peer, size)
                    p = profile(model)
                    data = np.random.default_rng(1).uniform(0, 255, (2, size, size, 3)).astype("float32")
                    convert(model, batch_size=1, path=paths["fp32"])
                    convert(model, "int8", data, calibration_steps=2, batch_size=1, path=paths["int8"])
                    meta = {"label": f"{MODELS[peer][0]} @{size}", "size": size, "paper_gmacs": None,
                            "params": p.params, "trainable_params": p.trainable_params, "madds": p.madds,
                            "matches": target, "predicted_madds": spatial * (size / 224) ** 2 + constant}
                    for q, path in paths.items():
                        meta[f"{q}_partitions"] = delegation(path).partitions
                    with open(meta_path + ".tmp", "w") as f:
                        json.dump(meta, f)
                    os.replace(meta_path + ".tmp", meta_path)
                    del model
                    import keras

                    keras.backend.clear_session(free_memory=True)
                    print(f"converted {key} (for {target}) in {time.time() - t0:.0f} s", flush=True)
                with open(meta_path) as f:
                    info[key] = json.load(f)
                for q, path in paths.items():
                    flatbuffers[f"{key}:{q}"] = path
    if args.convert_only:
        return
    # one interleaved run over every flatbuffer, in a shuffled order
    order = list(flatbuffers)
    np.random.default_rng(0).shuffle(order)
    load_before = os.getloadavg()
    flatbuffers = {k: flatbuffers[k] for k in order}
    results = benchmark_many(flatbuffers, warmup=args.warmup, runs=args.runs, rounds=args.rounds,
                             isolate=True, timeout=7200)
    load_after = os.getloadavg()
    rows = []
    for name in names + [m[0] for m in matched]:
        row = dict(info[name], name=name)
        for q in ("fp32", "int8"):
            r = results[f"{name}:{q}"]
            row[f"{q}_ms"] = r.median_ms
            row[f"{q}_p90_ms"] = r.p90_ms
        rows.append(row)
    first = results[next(iter(results))]
    out = {"litert": litert_version(), "runs": first.runs, "rounds": args.rounds, "threads": 1, "rows": rows,
           "load_average_before": load_before, "load_average_after": load_after}
    with open(args.json + ".tmp", "w") as f:
        json.dump(out, f, indent=1)
    os.replace(args.json + ".tmp", args.json)

    print(f"\nLiteRT {out['litert']}, 1 thread, XNNPACK, batch 1, medians of {first.runs} runs in "
          f"{args.rounds} interleaved rounds")
    print(f"load average before / after: {load_before} / {load_after}")
    print("| model | input | params | MAdds (ours) | MAdds (paper) | fp32 ms | int8 ms | int8/fp32 | "
          "int8 partitions |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows[:len(names)]:
        paper = f"{r['paper_gmacs']:.3g}G" if r["paper_gmacs"] else ""
        print(f"| {r['label']} | {r['size']} | {r['params'] / 1e6:.2f}M | {r['madds'] / 1e9:.3f}G | {paper} | "
              f"{r['fp32_ms']:.2f} | {r['int8_ms']:.2f} | {r['int8_ms'] / r['fp32_ms']:.2f} | "
              f"{r['int8_partitions']} |")
    by_name = {r["name"]: r for r in rows}
    if matched:
        print("\nAt equal multiply-adds (peer resolution scaled; latency ratio = peer / MobileNetV4):")
        print("| MobileNetV4 model | peer @ input | peer MAdds / MNv4's | fp32 ms (peer) | fp32 ratio | "
              "int8 ms (peer) | int8 ratio |")
        print("|---|---|---|---|---|---|---|")
        for key, peer, size, target in matched:
            r, t = by_name[key], by_name[target]
            print(f"| {t['label']} | {MODELS[peer][0]} @{size} | {r['madds'] / t['madds']:.3f} | {r['fp32_ms']:.2f} | "
                  f"{r['fp32_ms'] / t['fp32_ms']:.2f} | {r['int8_ms']:.2f} | {r['int8_ms'] / t['int8_ms']:.2f} |")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4.5))
        families = {"MobileNetV4": lambda r: r["name"].startswith("mobilenet_v4")}
        families.update({MODELS[p][0]: (lambda r, p=p: r["name"].split("@")[0] == p) for p in PEERS})
        for (family, member), color in zip(families.items(), ("C0", "C1", "C2", "C3")):
            group = sorted((r for r in rows if member(r)), key=lambda r: r["madds"])
            for q, marker, style in (("fp32", "o", "-"), ("int8", "s", "--")):
                xs = [r["madds"] / 1e9 for r in group]
                ys = [r[f"{q}_ms"] for r in group]
                ax.plot(xs, ys, style, marker=marker, color=color, label=f"{family} {q}", markersize=4)
                if family == "MobileNetV4" and q == "fp32":
                    for r, x, y in zip(group, xs, ys):
                        ax.annotate(r["label"], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("multiply-adds (G, mnas_keras.models.profile)")
        ax.set_ylabel("LiteRT latency, 1 thread (ms, median)")
        ax.set_title("MobileNetV4 vs MobileNetV3 / MnasNet-A1 (peers resolution-scaled)", fontsize=9)
        ax.legend(fontsize=6, ncol=2)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
