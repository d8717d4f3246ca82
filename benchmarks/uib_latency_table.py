"""Latency table on the UIB space (issue 20): held-out accuracy, robust to a loaded machine.

One run, resumable (every ``.tflite`` and the timings are kept under ``--work_dir``):

1. Every part of ``uib_space()`` at ``--size`` is converted (in batches, as
   ``mnas-latency-table --all_parts``) and timed in one interleaved group with the
   drift-correction anchor (``--anchor``, default the space's reference network,
   MobileNetV4-Conv-Small).
2. ``--calibration + --holdout`` distinct sampled networks are converted, then timed
   *together*, shuffled, in one interleaved group with the anchor (calibration and held-out
   networks see the same machine speed), ``--repeats`` times; every run's time is kept.
3. The report: for the median and for the minimum of each model's runs, drift-corrected
   (ratio to the anchor in the same group) and raw, the table fitted on the calibration
   networks only (per-kind scales, ``mnas_keras.search.latency.parts.KINDS``, and the same
   data with the UIB kinds sharing ``mbconv``'s scale) against the held-out networks; and
   the noise floor (repeat 1 against repeat 2 of the same networks). Load averages are
   recorded at each timing.

    python benchmarks/uib_latency_table.py --size=160 --holdout=28 --repeats=2 --runs=20
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mnas_keras.search.latency import build as latency_build  # noqa: E402
from mnas_keras.search.latency.parts import KINDS, part_kind  # noqa: E402
from mnas_keras.search.latency.report import accuracy  # noqa: E402
from mnas_keras.search.latency.table import LatencyTable, space_parts  # noqa: E402
from mnas_keras.search.space import uib_space  # noqa: E402


def sample_networks(space, count: int, seed: int) -> list[list[str]]:
    rng, seen, out = random.Random(seed), set(), []
    while len(out) < count:
        blocks = space.decode(space.sample(rng))
        if "|".join(blocks) not in seen:
            seen.add("|".join(blocks))
            out.append(blocks)
    return out


def load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def fit_predict(table: LatencyTable, calibration, cal_ms, holdout, merge: dict | None = None) -> list[float]:
    """Fits ``table`` on the calibration networks (kinds merged per ``merge``) and predicts
    the held-out ones."""
    import numpy as np

    merge = merge or {}
    kinds = [k for k in KINDS if k not in merge]

    def row(blocks):
        sums = dict.fromkeys(kinds, 0.0)
        for key, ms in table.breakdown(blocks):
            kind = part_kind(key)
            sums[merge.get(kind, kind)] += ms
        return [sums[k] for k in kinds]

    fresh = LatencyTable(table.settings, table.part_latencies)
    if not merge:
        for blocks, ms in zip(calibration, cal_ms):
            fresh.add_measurement(blocks, ms, refit=False)
        fresh.refit()
        return [fresh.predict(b) for b in holdout]
    # the same ridge fit as LatencyTable.refit, on merged kinds
    x, y = np.asarray([row(b) for b in calibration]), np.asarray(cal_ms)
    design = np.hstack([np.ones((len(y), 1)), x]) / y[:, None]
    prior = np.array([0.0] + [1.0] * x.shape[1])
    penalty = np.sqrt(0.5) * np.eye(len(prior))
    penalty[0, 0] = 0.0
    coef, *_ = np.linalg.lstsq(np.vstack([design, penalty]), np.concatenate([np.ones(len(y)), penalty @ prior]),
                               rcond=None)
    return [float(coef[0] + np.dot(coef[1:], row(b))) for b in holdout]


def stat(times, statistic: str) -> float:
    return min(times) if statistic == "min" else statistics.median(times)


def timed(tflites: dict, table: LatencyTable, log, repeats: int = 1) -> dict:
    """``{"runs": {name: [[ms of every run] per repeat]}, "anchor": [[ms] per repeat], "load": [...]}``:
    all models timed together in one interleaved, shuffled group with the table's anchor."""
    out = {"runs": {n: [] for n in tflites}, "anchor": [], "load": []}
    names = list(tflites)
    for repeat in range(repeats):
        random.Random(repeat).shuffle(names)
        out["load"].append(load())
        timing = latency_build.time_models({n: tflites[n] for n in names}, table.settings,
                                           anchor=table.anchor_tflite, group=len(names), log=log)
        for n in names:
            out["runs"][n].append(list(timing.results[n].times_ms))
        out["anchor"].append(list(timing.anchor_results[0].times_ms))
    return out


def corrected(data: dict, statistic: str, anchor_ms: float) -> dict:
    """``{name: ms}``: per repeat the statistic relative to the anchor's, times ``anchor_ms``;
    the median over repeats."""
    return {n: statistics.median(stat(r, statistic) / stat(a, statistic) * anchor_ms
                                 for r, a in zip(reps, data["anchor"]))
            for n, reps in data["runs"].items()}


def raw(data: dict, statistic: str) -> dict:
    return {n: statistics.median(stat(r, statistic) for r in reps) for n, reps in data["runs"].items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--calibration", type=int, default=12)
    parser.add_argument("--holdout", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--anchor", default="mobilenet_v4_conv_small")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timings of all networks")
    parser.add_argument("--work_dir", default="runs/uib_table")
    args = parser.parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    space = uib_space()
    log = lambda msg: print(f"[{time.strftime('%H:%M:%S')} load {load()}] {msg}", flush=True)  # noqa: E731
    table = LatencyTable.create(args.size, anchor=args.anchor, stem_filters=space.stem_filters,
                                runs=args.runs, warmup=args.warmup)

    def cached(name: str, make) -> bytes:
        path = os.path.join(args.work_dir, "tflite", name + ".tflite")
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path + ".tmp", "wb") as f:
                f.write(make())
            os.replace(path + ".tmp", path)
        with open(path, "rb") as f:
            return f.read()

    keys = space_parts(space, args.size)
    part_names = {k: f"part{i}" for i, k in enumerate(keys)}
    if not all(os.path.exists(os.path.join(args.work_dir, "tflite", n + ".tflite")) for n in part_names.values()):
        for key, data in latency_build.convert_parts(keys, table.settings, log=log).items():
            cached(part_names[key], lambda data=data: data)
    nets = sample_networks(space, args.calibration + args.holdout, args.seed)
    net_names = [f"net{i}" for i in range(len(nets))]
    for name, blocks in zip(net_names, nets):
        cached(name, lambda blocks=blocks: latency_build.convert_network(blocks, table.settings))
        log(f"converted {name}")
    table._anchor_tflite = cached("anchor", lambda: latency_build.convert_network(table.settings["anchor"],
                                                                                  table.settings))
    timing_path = os.path.join(args.work_dir, "timing.json")
    if not os.path.exists(timing_path):
        tfl = lambda n: cached(n, None)  # noqa: E731
        data = {"parts": timed({n: tfl(n) for n in part_names.values()}, table, log),
                "networks": timed({n: tfl(n) for n in net_names}, table, log, args.repeats)}
        with open(timing_path, "w") as f:
            json.dump(data, f)
    with open(timing_path) as f:
        data = json.load(f)

    n_cal = args.calibration
    calibration, holdout = nets[:n_cal], nets[n_cal:]
    lines = [f"UIB space at {args.size}px: {len(keys)} parts, {n_cal} calibration / {len(holdout)} held-out "
             f"networks timed together ({args.repeats} shuffled repeats, {args.runs} runs each), anchor "
             f"{args.anchor}; load average (1/5/15 min) at the parts {data['parts']['load']}, networks "
             f"{data['networks']['load']}", "",
             "| statistic, units | fit | n | within +-10% | within +-5% | RMSPE | bias | worst |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    uib_kinds = {k: "mbconv" for k in KINDS if k not in ("conv", "dsconv", "mbconv", "other")}
    for statistic in ("median", "min"):
        anchor_ms = stat(data["parts"]["anchor"][0], statistic)
        for units in ("drift-corrected", "raw"):
            parts = (corrected if units == "drift-corrected" else raw)(data["parts"], statistic,
                                                                       *([anchor_ms] if units != "raw" else []))
            networks = (corrected if units == "drift-corrected" else raw)(data["networks"], statistic,
                                                                          *([anchor_ms] if units != "raw" else []))
            part_table = LatencyTable(table.settings, {k: parts[n] for k, n in part_names.items()})
            ms = [networks[n] for n in net_names]
            for fit, merge in (("per-kind scales", None), ("UIB share mbconv's", uib_kinds)):
                stats = accuracy(fit_predict(part_table, calibration, ms[:n_cal], holdout, merge), ms[n_cal:])
                lines.append(f"| {statistic}, {units} | {fit} | {stats['n']} | {100 * stats['within_10']:.1f}% | "
                             f"{100 * stats['within_5']:.1f}% | {100 * stats['rmspe']:.2f}% | "
                             f"{100 * stats['mean_error']:+.2f}% | {100 * stats['worst_error']:+.2f}% |")
    # baselines that know nothing of the parts: the skill the table must beat on a space whose
    # networks differ little in latency
    ms = [corrected(data["networks"], "median", stat(data["parts"]["anchor"][0], "median"))[n] for n in net_names]
    constant = statistics.mean(ms[:n_cal])
    stats = accuracy([constant] * len(holdout), ms[n_cal:])
    lines.append(f"| median, drift-corrected | baseline: a constant (calibration mean) | {stats['n']} | "
                 f"{100 * stats['within_10']:.1f}% | {100 * stats['within_5']:.1f}% | {100 * stats['rmspe']:.2f}% | "
                 f"{100 * stats['mean_error']:+.2f}% | {100 * stats['worst_error']:+.2f}% |")
    spread = statistics.pstdev(ms) / statistics.mean(ms)
    lines.append("")
    lines.append(f"Measured network latency (median, drift-corrected, all {len(ms)}): {min(ms):.2f}-{max(ms):.2f} ms, "
                 f"mean {statistics.mean(ms):.2f}, coefficient of variation {100 * spread:.2f}%.")
    lines.append("")
    lines.append("| statistic, units | fit | n | within +-10% | within +-5% | RMSPE | bias | worst |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|")
    # the noise floor: one repeat against another, same statistic, drift-corrected
    if args.repeats >= 2:
        for statistic in ("median", "min"):
            first = [stat(r[0], statistic) / stat(data["networks"]["anchor"][0], statistic)
                     for r in data["networks"]["runs"].values()]
            second = [stat(r[1], statistic) / stat(data["networks"]["anchor"][1], statistic)
                      for r in data["networks"]["runs"].values()]
            stats = accuracy(first, second)
            lines.append(f"| {statistic}, noise floor: repeat 1 vs 2 (drift-corrected) | - | {stats['n']} | "
                         f"{100 * stats['within_10']:.1f}% | {100 * stats['within_5']:.1f}% | "
                         f"{100 * stats['rmspe']:.2f}% | {100 * stats['mean_error']:+.2f}% | "
                         f"{100 * stats['worst_error']:+.2f}% |")
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(args.work_dir, "report.md"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
