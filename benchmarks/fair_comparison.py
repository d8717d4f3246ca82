"""Fair comparison: the search's best architecture vs the reference, MobileNetV3-Small and
MnasNet-small scaled to the same latency, after equal final training (issue 21).

Reads a finished main job (``mnas-search``, its ``<run_dir>/config.json`` and the final
stage's ``<run_dir>/final/final.json``): the best found architecture is the final stage's
``found 1`` (the Pareto-front architecture with the highest reward, reference excluded),
the reference is the space's MobileNetV2-like network. The two hand-designed peers,
``mnas_keras.applications.MobileNetV3Small`` and ``MnasNetSmall`` (``weights=None``,
dropout 0 like the search's networks), are scaled by their width multiplier ``alpha`` to the
found architecture's fp32 latency: a grid of alphas and the found network are converted and
timed side by side in one LiteRT run (the run's own found-model latency is the target, so the
machine's load cancels), the alpha is interpolated linearly between the two grid points
around the target and rounded to 0.05, and clamped (and said so) outside the grid.

Then every model is trained with the same recipe, budget and seeds by the final stage's
machinery (:meth:`mnas_keras.search.run.final.FinalStage.compare`: the search's proxy
recipe, Adam, batch-norm recalibration, the search's data split, ``--epochs`` epochs, each
seed), scored on the held-out test split, and all fp32 and int8 latencies measured
interleaved in one run. Journaled in ``--out`` (resumable: a rerun trains only what is
missing). Prints a Markdown table: test accuracy mean +- sample std over the seeds, fp32
and int8 latency, parameters.

    nice -n 5 python benchmarks/fair_comparison.py --run_dir runs/mnas_search --epochs 8 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PEERS = ("MobileNetV3Small", "MnasNetSmall")
ALPHAS = (1.0, 1.5, 2.0, 2.5, 3.0)


def interpolate_alpha(points, target: float, step: float = 0.05):
    """The width multiplier whose latency is ``target`` on the piecewise-linear curve through
    ``points`` (``[(alpha, ms)]``, latency increasing with alpha), rounded to ``step``;
    returns ``(alpha, clamped)``.

    Example:
        >>> interpolate_alpha([(0.5, 2.0), (1.0, 4.0)], 3.0)
        (0.75, False)
        >>> interpolate_alpha([(0.5, 2.0), (1.0, 4.0)], 9.0)
        (1.0, True)
    """
    points = sorted(points)
    if target <= points[0][1]:
        return points[0][0], target < points[0][1]
    if target >= points[-1][1]:
        return points[-1][0], target > points[-1][1]
    for (a0, t0), (a1, t1) in zip(points, points[1:]):
        if t0 <= target <= t1:
            alpha = a0 + (a1 - a0) * ((target - t0) / (t1 - t0) if t1 > t0 else 0.0)
            return round(round(alpha / step) * step, 2), False
    # latency not monotone in alpha between the bracketing points: the nearest grid point
    return min(points, key=lambda p: abs(p[1] - target))[0], False


def peer_builder(peer: str, alpha: float, classes: int):
    """``build(seed) -> keras.Model``: the application at ``alpha``, untrained, open size."""

    def build(seed: int):
        import keras

        from mnas_keras import applications

        keras.utils.set_random_seed(seed)
        return getattr(applications, peer)(input_shape=None, alpha=alpha, weights=None, classes=classes,
                                           dropout_rate=0.0)

    return build


def load_run(run_dir: str):
    """``(evaluator settings, final.json)`` of a finished main job."""
    paths = [os.path.join(run_dir, "config.json"), os.path.join(run_dir, "final", "final.json")]
    for path in paths:
        if not os.path.exists(path):
            raise SystemExit(f"fair_comparison: error: {path} not found; run mnas-search (with its final stage, "
                             f"--final_top_k >= 1) into --run_dir={run_dir} first")
    with open(paths[0]) as f:
        config = json.load(f)
    with open(paths[1]) as f:
        final = json.load(f)
    return config["evaluator"], final


def make_evaluator(settings: dict, dataset: str):
    from mnas_keras.search.evaluation.proxy import ProxyEvaluator

    data = None
    if dataset == "shapes_classification":  # as mnas-search --dataset=shapes_classification loads it
        from mnas_keras.training.data.shapes_classification import load_shapes_classification

        data = load_shapes_classification(size=settings["image_size"], num_train=2000, num_test=500, seed=0)
    keys = ("image_size", "validation_fraction", "train_subset", "val_subset", "batch_size", "learning_rate",
            "train_mode", "bn_recalibration", "dropout_rate", "stem_filters", "latency_input_size", "num_threads",
            "warmup", "runs", "isolate_latency", "seed")
    return ProxyEvaluator(data=data, **{k: settings[k] for k in keys if k in settings})


def match_alphas(evaluator, found_blocks, classes: int, alphas=ALPHAS, log=print) -> dict:
    """``{peer: {"alpha", "clamped", "grid": [(alpha, ms)], "target_ms"}}``: fp32 latency of
    each peer over ``alphas`` and of the found network, measured interleaved in one run."""
    import keras

    from mnas_keras.tflite import benchmark_many, convert

    size = evaluator.latency_input_size
    shape = (size, size, 3)
    tflites = {"found": convert(evaluator.build(found_blocks), input_shape=shape)}
    for peer in PEERS:
        for alpha in alphas:
            tflites[f"{peer}@{alpha}"] = convert(peer_builder(peer, alpha, classes)(0), input_shape=shape)
            keras.backend.clear_session(free_memory=True)
    log(f"matching widths: {len(tflites)} fp32 models timed side by side at {size}x{size}")
    results = benchmark_many(tflites, num_threads=evaluator.num_threads, warmup=evaluator.warmup,
                             runs=max(50, evaluator.runs), input_shape=shape, isolate=evaluator.isolate_latency)
    target = results["found"].median_ms
    out = {}
    for peer in PEERS:
        grid = [(a, results[f"{peer}@{a}"].median_ms) for a in alphas]
        alpha, clamped = interpolate_alpha(grid, target)
        out[peer] = {"alpha": alpha, "clamped": clamped, "grid": grid, "target_ms": target}
        log(f"  {peer}: " + ", ".join(f"alpha {a}: {ms:.2f} ms" for a, ms in grid)
            + f"; found {target:.2f} ms -> alpha {alpha}" + (" (clamped to the grid)" if clamped else ""))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run_dir", default="runs/mnas_search", help="a finished mnas-search run (with final/)")
    parser.add_argument("--epochs", type=int, default=8, help="final training epochs of every model")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--dataset", default="digits", choices=("digits", "shapes_classification"),
                        help="the dataset the main job ran on")
    parser.add_argument("--out", default=None, help="journal and outputs (default <run_dir>/fair_comparison)")
    parser.add_argument("--step", default="all", choices=("all", "match", "train", "measure", "report"),
                        help="only match the widths, only train (--only, --seeds), or only measure latency: "
                             "parallel processes sharing --out; then 'all' reports from the journal; 'report' "
                             "reports what is journaled and measured so far, training and measuring nothing")
    parser.add_argument("--only", default=None, help="with --step=train: models whose name contains this")
    args = parser.parse_args(argv)
    from mnas_keras.search.run.final import FinalStage

    settings, final = load_run(args.run_dir)
    rows = {r["name"]: r for r in final["models"]}
    if "found 1" not in rows:
        raise SystemExit(f"fair_comparison: error: {args.run_dir}/final/final.json has no found architecture "
                         "(the Pareto front held only the reference)")
    evaluator = make_evaluator(settings, args.dataset)
    classes = evaluator.classes
    out = args.out or os.path.join(args.run_dir, "fair_comparison")
    os.makedirs(out, exist_ok=True)
    entries = [("reference", {"arch_id": rows["reference"]["arch_id"], "blocks": rows["reference"]["blocks"]}),
               ("found 1", {"arch_id": rows["found 1"]["arch_id"], "blocks": rows["found 1"]["blocks"]})]
    stage = FinalStage(evaluator, out, epochs=args.epochs, top_k=0, seeds=[int(s) for s in args.seeds.split(",")],
                       artifacts=lambda ident: os.path.join(args.run_dir, "artifacts", ident))
    if args.step == "train" and args.only and any(args.only in name for name, _ in entries):
        stage.train_missing([e for e in entries if args.only in e[0]])  # no width matching needed
        return
    match_path = os.path.join(out, "alphas.json")
    if os.path.exists(match_path):
        with open(match_path) as f:
            matched = json.load(f)
    else:
        matched = match_alphas(evaluator, rows["found 1"]["blocks"], classes)
        with open(match_path + ".tmp", "w") as f:
            json.dump(matched, f, indent=2)
        os.replace(match_path + ".tmp", match_path)
    if args.step == "match":
        return
    for peer in PEERS:
        alpha = matched[peer]["alpha"]
        entries.append((f"{peer} a{alpha}", {"arch_id": f"{peer}_a{alpha}", "build": peer_builder(peer, alpha, classes)}))
    if args.step == "train":
        stage.train_missing([e for e in entries if args.only is None or args.only in e[0]])
        return
    if args.step == "measure":
        stage.measure({r["arch_id"]: r.get("build") or r["blocks"] for _, r in entries})
        return
    if args.step == "report":
        with open(stage.latency_path) as f:
            latency = json.load(f)["models"]
        result = stage.report(entries, stage._done(), latency)
    else:
        result = stage.compare(entries)
    print(f"\n{args.dataset}, {args.epochs} epochs (the search's proxy recipe), seeds {args.seeds}, test accuracy; "
          f"latency at {evaluator.latency_input_size}x{evaluator.latency_input_size}, "
          f"{evaluator.num_threads} thread, measured side by side\n")
    print("| model | arch_id / alpha | test accuracy (mean +- std) | per seed | fp32 ms | int8 ms | params |")
    print("|---|---|---:|---|---:|---:|---:|")
    for r in result["rows"]:
        acc = "not trained" if r["accuracy"] is None else f"{r['accuracy']:.3f} +- {r['accuracy_std']:.3f}"
        print(f"| {r['name']} | {r['arch_id']} | {acc} | {' '.join(f'{a:.3f}' for a in r['accuracies'])} | "
              f"{r['fp32_ms']:.2f} | {r['int8_ms']:.2f} | {r['params']} |")
    print(f"\nwidth matching (fp32, one run): " + "; ".join(
        f"{p}: target {m['target_ms']:.2f} ms -> alpha {m['alpha']}{' (clamped)' if m['clamped'] else ''}"
        for p, m in matched.items()))
    print(result["verdict"])


if __name__ == "__main__":
    main()
