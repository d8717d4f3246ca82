"""Latency lookup table: build cost, accuracy on held-out networks, search evaluations/hour.

Phases (each resumable; files under --work_dir):

* ``convert`` (CPU heavy, no timing: run under ``flock -s``): converts every part of the
  space (``--parts=space``) or only those of the networks used here (``--parts=needed``),
  the calibration networks and the held-out networks.
* ``time`` (timing: run under ``flock`` exclusive): times parts and networks, builds the
  table (parts + overhead fit on the calibration networks only), predicts the held-out
  networks and writes ``report.md``, ``scatter.png``, ``table.json``.
* ``validate`` (timing; ``--convert_only`` first under ``flock -s``): a fresh held-out set
  drawn with ``--holdout_seed`` against the saved table, refitted with the current model.
* ``evals`` (timing): ``ProxyEvaluator`` on the same sampled networks with measured and
  with table latency, interleaved; evaluations per hour.

    flock -s /tmp/mnas_timing.lock python benchmarks/search_latency_table.py --phase=convert
    flock /tmp/mnas_timing.lock python benchmarks/search_latency_table.py --phase=time
    flock /tmp/mnas_timing.lock python benchmarks/search_latency_table.py --phase=evals
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mnas_keras.search.latency.table import LatencyTable, network_parts, space_parts  # noqa: E402
from mnas_keras.search.space import mnasnet_space  # noqa: E402


def _name(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()[:20] + ".tflite"


def predict_microseconds(table, networks, repeats: int = 100) -> float:
    """Mean time of one ``table.predict`` over ``networks``, in microseconds."""
    t0 = time.perf_counter()
    for _ in range(repeats):
        for blocks in networks:
            table.predict(blocks)
    return (time.perf_counter() - t0) / (repeats * len(networks)) * 1e6


def networks(args):
    space = mnasnet_space()
    rng = random.Random(args.seed)
    seen, out = set(), []
    while len(out) < args.calibration + args.holdout:
        blocks = space.decode(space.sample(rng))
        if "|".join(blocks) not in seen:
            seen.add("|".join(blocks))
            out.append(blocks)
    return space, out[:args.calibration], out[args.calibration:]


def phase_convert(args):
    from mnas_keras.search.latency import build as latency_build

    space, calibration, holdout = networks(args)
    table = LatencyTable.create(args.size, objective=args.objective)
    if args.parts == "space":
        keys = space_parts(space, args.size)
    else:
        keys = list(dict.fromkeys(k for b in calibration + holdout for k in network_parts(b, args.size)))
    folder = os.path.join(args.work_dir, "parts")
    os.makedirs(folder, exist_ok=True)
    todo = [k for k in keys if not os.path.exists(os.path.join(folder, _name(k)))]
    stats_path = os.path.join(args.work_dir, "convert.json")
    stats = json.load(open(stats_path)) if os.path.exists(stats_path) else {"parts_seconds": 0.0, "parts": 0}
    print(f"{len(keys)} parts, {len(todo)} to convert", flush=True)
    for start in range(0, len(todo), 256):
        chunk = todo[start:start + 256]
        t0 = time.perf_counter()
        for key, data in latency_build.convert_parts(chunk, table.settings).items():
            with open(os.path.join(folder, _name(key)), "wb") as f:
                f.write(data)
        stats["parts_seconds"] += time.perf_counter() - t0
        stats["parts"] += len(chunk)
        json.dump(stats, open(stats_path, "w"))
        print(f"  {start + len(chunk)}/{len(todo)} parts, {stats['parts_seconds']:.0f} s", flush=True)
    folder = os.path.join(args.work_dir, "nets")
    os.makedirs(folder, exist_ok=True)
    t0, count = time.perf_counter(), 0
    for blocks in calibration + holdout:
        path = os.path.join(folder, _name("|".join(blocks)))
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(latency_build.convert_network(blocks, table.settings))
            count += 1
    if count:
        stats["network_seconds_each"] = (time.perf_counter() - t0) / count
    stats["space_parts"] = len(space_parts(space, args.size))
    json.dump(stats, open(stats_path, "w"))
    print(stats)


def phase_time(args):
    from mnas_keras.search.latency import build as latency_build
    from mnas_keras.search.latency.report import write_report

    space, calibration, holdout = networks(args)
    stats = json.load(open(os.path.join(args.work_dir, "convert.json")))
    table = LatencyTable.create(args.size, runs=args.runs, warmup=args.warmup, objective=args.objective,
                                anchor=None if args.no_anchor else "mnasnet_a1")
    parts_dir, nets_dir = os.path.join(args.work_dir, "parts"), os.path.join(args.work_dir, "nets")
    keys = [k for k in (space_parts(space, args.size) if args.parts == "space" else
            dict.fromkeys(k for b in calibration + holdout for k in network_parts(b, args.size)))
            if os.path.exists(os.path.join(parts_dir, _name(k)))]
    t0 = time.perf_counter()
    times = table.time_tflites({k: os.path.join(parts_dir, _name(k)) for k in keys})
    parts_timing = time.perf_counter() - t0
    table.update_parts(times)
    t0 = time.perf_counter()
    nets = {f"n{i}": os.path.join(nets_dir, _name("|".join(b))) for i, b in enumerate(calibration + holdout)}
    measured = table.time_tflites(nets, group=16)
    nets_timing = time.perf_counter() - t0
    for i, blocks in enumerate(calibration):
        table.add_measurement(blocks, measured[f"n{i}"], source="calibration", refit=False)
    table.refit()
    per_net_timing = nets_timing / len(nets)
    table.build_seconds = (stats["parts_seconds"] * len(keys) / max(1, stats["parts"]) + parts_timing
                           + len(calibration) * (stats.get("network_seconds_each", 0) + per_net_timing))
    if os.path.exists(os.path.join(args.work_dir, "table.json")):
        os.remove(os.path.join(args.work_dir, "table.json"))  # a new table, not merged with the old one
    table.save(os.path.join(args.work_dir, "table.json"))
    pred = [table.predict(b) for b in holdout]
    meas = [measured[f"n{i + len(calibration)}"] for i in range(len(holdout))]
    predict_us = predict_microseconds(table, holdout)
    extra = {
        "parts measured": len(keys), "parts in the space": stats["space_parts"],
        "part conversion s (all measured parts)": round(stats["parts_seconds"] * len(keys) / max(1, stats["parts"]), 1),
        "part timing s": round(parts_timing, 1),
        "calibration networks": len(calibration), "held-out networks": len(holdout),
        "table build s (conversion + timing + calibration)": round(table.build_seconds, 1),
        "whole network: conversion s": round(stats.get("network_seconds_each", 0), 2),
        "whole network: timing s": round(per_net_timing, 2),
        "predict() us per network": round(predict_us, 1),
        "fit": {k: round(v, 4) if isinstance(v, float) else v for k, v in table.fit.items()},
        "drift correction": f"anchor MnasNet-A1, {table.settings['anchor_ms']:.3f} ms" if table.drift_corrected else "none",
        "load average": [round(v, 2) for v in os.getloadavg()],
    }
    report = write_report(pred, meas, args.work_dir, extra=extra, labels=["|".join(b) for b in holdout],
                          title=f"LatencyTable vs LiteRT, {len(holdout)} held-out MnasNet-space networks, "
                                f"{args.size}px, 1 thread, {args.objective}")
    print(report)


def phase_evals(args):
    from mnas_keras.search.evaluation.proxy import ProxyEvaluator

    space, calibration, holdout = networks(args)
    table = LatencyTable.load(os.path.join(args.work_dir, "table.json"))
    kwargs = dict(image_size=32, epochs=2, latency_input_size=args.size)
    modes = {"measured": ProxyEvaluator(**kwargs),
             "predicted": ProxyEvaluator(**kwargs, latency_mode="predicted", latency_table=table)}
    sample = holdout[:args.evals]
    seconds = {m: [] for m in modes}
    latency_seconds = {m: [] for m in modes}
    for blocks in sample:
        for mode, evaluator in modes.items():
            result = evaluator.evaluate(blocks)
            assert result["status"] == "ok", result
            seconds[mode].append(result["eval_seconds"])
            latency_seconds[mode].append(result.get("latency_seconds", 0.0) if mode == "predicted" else
                                         result["convert_seconds"])
            print(mode, round(result["eval_seconds"], 2), round(result["latency_ms"], 3), flush=True)
    rows = {}
    for mode in modes:
        mean = sum(seconds[mode]) / len(seconds[mode])
        rows[mode] = {"evaluations": len(seconds[mode]), "mean_eval_s": round(mean, 2), "per_hour": round(3600 / mean, 1)}
    out = {"rows": rows, "speedup": round(rows["measured"]["mean_eval_s"] / rows["predicted"]["mean_eval_s"], 2),
           "load_average": [round(v, 2) for v in os.getloadavg()]}
    json.dump(out, open(os.path.join(args.work_dir, "evals.json"), "w"), indent=1)
    print(json.dumps(out, indent=1))


def phase_validate(args):
    """A fresh held-out set (``--holdout_seed``) against the saved table, refitted with the
    current correction model: networks that played no part in building or designing it."""
    from mnas_keras.search.latency import build as latency_build
    from mnas_keras.search.latency.report import write_report

    table = LatencyTable.load(os.path.join(args.work_dir, "table.json"))
    table.refit()
    space = mnasnet_space()
    rng = random.Random(args.holdout_seed)
    known = set(table.measured) | {n["blocks"] for n in json.load(open(os.path.join(args.work_dir, "report.json")))["networks"]}
    holdout = []
    while len(holdout) < args.holdout:
        blocks = space.decode(space.sample(rng))
        if "|".join(blocks) not in known:
            known.add("|".join(blocks))
            holdout.append(blocks)
    folder = os.path.join(args.work_dir, "nets")
    for blocks in holdout:
        path = os.path.join(folder, _name("|".join(blocks)))
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(latency_build.convert_network(blocks, table.settings))
    if args.convert_only:
        return
    nets = {f"n{i}": os.path.join(folder, _name("|".join(b))) for i, b in enumerate(holdout)}
    measured = table.time_tflites(nets, group=16)
    pred = [table.predict(b) for b in holdout]
    meas = [measured[f"n{i}"] for i in range(len(holdout))]
    predict_us = predict_microseconds(table, holdout)
    extra = {"machine speed vs the table's (anchor ms then / now)":
             round(table.settings["anchor_ms"] / table.last_anchor_ms, 3) if table.drift_corrected else "n/a",
             "fit": {"intercept_ms": round(table.fit["intercept_ms"], 4),
                     "scale": {k: round(v, 4) for k, v in table.fit["scale"].items()}, "models": table.fit["models"]},
             "predict() us per network": round(predict_us, 1),
             "load average": [round(v, 2) for v in os.getloadavg()]}
    out = os.path.join(args.work_dir, f"validate_{args.holdout_seed}")
    print(write_report(pred, meas, out, extra=extra, labels=["|".join(b) for b in holdout],
                       title=f"LatencyTable (per-kind scales) vs LiteRT, {len(holdout)} fresh held-out networks "
                             f"(seed {args.holdout_seed}), {args.size}px, 1 thread, {table.settings['objective']}"))


def phase_noise(args):
    """The ground truth's own repeatability: the held-out networks timed twice, back to back,
    raw and drift-corrected (anchor in every group), pass 1 against pass 2."""
    from mnas_keras.search.latency.report import accuracy

    table = LatencyTable.load(os.path.join(args.work_dir, "table.json"))
    rows = json.load(open(os.path.join(args.work_dir, f"validate_{args.holdout_seed}", "report.json")))["networks"]
    nets = {f"n{i}": os.path.join(args.work_dir, "nets", _name(r["blocks"])) for i, r in enumerate(rows)}
    raw, corrected = [], []
    for _ in range(2):
        values = table.time_tflites(nets, group=16)
        corrected.append([values[k] for k in nets])
        raw.append([table.last_timing.latencies[k] for k in nets])
    out = {}
    for label, (one, two) in (("raw", raw), ("drift-corrected", corrected)):
        stats = accuracy(two, one)
        out[label] = {k: round(v, 4) for k, v in stats.items() if k not in ("errors", "worst_index")}
    out["load_average"] = [round(v, 2) for v in os.getloadavg()]
    json.dump(out, open(os.path.join(args.work_dir, f"noise_{args.holdout_seed}.json"), "w"), indent=1)
    print(json.dumps(out, indent=1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", choices=["convert", "time", "validate", "noise", "evals"], required=True)
    parser.add_argument("--no_anchor", action="store_true", help="build the table without drift correction")
    parser.add_argument("--objective", choices=["fp32", "int8"], default="fp32")
    parser.add_argument("--holdout_seed", type=int, default=7)
    parser.add_argument("--convert_only", action="store_true")
    parser.add_argument("--work_dir", default="runs/bench_latency_table")
    parser.add_argument("--parts", choices=["space", "needed"], default="space")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--calibration", type=int, default=12)
    parser.add_argument("--holdout", type=int, default=60)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--evals", type=int, default=4)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    {"convert": phase_convert, "time": phase_time, "validate": phase_validate, "noise": phase_noise,
     "evals": phase_evals}[args.phase](args)


if __name__ == "__main__":
    main()
