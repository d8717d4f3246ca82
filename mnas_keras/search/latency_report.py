"""Accuracy of a latency table on networks it was not built from, and the table command.

:func:`accuracy` gives nn-Meter's measure (the share of networks predicted within +-10%,
and +-5%), the root-mean-square percentage error and the worst case; :func:`write_report`
writes them as a markdown table plus a predicted-vs-measured scatter plot.

Example:
    >>> stats = accuracy([10.5, 9.0, 20.0], [10.0, 10.0, 20.0])
    >>> stats["within_10"], stats["within_5"], round(stats["worst_error"], 3)
    (1.0, 0.6666666666666666, -0.1)

Command line::

    python -m mnas_keras.search.latency_report --table=lut.json --space=mnasnet \\
        --calibration=12 --holdout=50 --report_dir=runs/lut_report
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Sequence


def accuracy(predicted: Sequence[float], measured: Sequence[float]) -> dict:
    """Relative errors ``(predicted - measured) / measured`` summarized."""
    if len(predicted) != len(measured) or not predicted:
        raise ValueError(f"need equally many predicted and measured latencies; received {len(predicted)} "
                         f"and {len(measured)}")
    errors = [(p - m) / m for p, m in zip(predicted, measured)]
    n = len(errors)
    worst = max(errors, key=abs)
    return {"n": n, "within_10": sum(abs(e) <= 0.10 for e in errors) / n,
            "within_5": sum(abs(e) <= 0.05 for e in errors) / n,
            "rmspe": math.sqrt(sum(e * e for e in errors) / n), "mean_error": sum(errors) / n,
            "worst_error": worst, "worst_index": errors.index(worst), "errors": errors}


def markdown(stats: dict, extra: dict | None = None, title: str = "") -> str:
    """The accuracy (and any extra facts) as a markdown table."""
    lines = [f"**{title}**", ""] if title else []
    lines += ["| metric | value |", "|---|---:|",
              f"| networks | {stats['n']} |",
              f"| within +-10% | {100 * stats['within_10']:.1f}% |",
              f"| within +-5% | {100 * stats['within_5']:.1f}% |",
              f"| RMSPE | {100 * stats['rmspe']:.2f}% |",
              f"| mean error (bias) | {100 * stats['mean_error']:+.2f}% |",
              f"| worst error | {100 * stats['worst_error']:+.2f}% |"]
    for key, value in (extra or {}).items():
        lines.append(f"| {key} | {value} |")
    return "\n".join(lines)


def scatter(predicted, measured, path: str, title: str = "") -> str:
    """Predicted vs measured latency, with the +-10% band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    low, high = 0.9 * min(min(predicted), min(measured)), 1.1 * max(max(predicted), max(measured))
    line = [low, high]
    ax.plot(line, line, "k-", lw=1, label="predicted = measured")
    ax.fill_between(line, [v * 0.9 for v in line], [v * 1.1 for v in line], color="0.85", label="+-10%")
    ax.scatter(measured, predicted, s=14, c="tab:blue", zorder=3)
    ax.set_xlabel("measured LiteRT latency (ms)")
    ax.set_ylabel("table prediction (ms)")
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(predicted, measured, folder: str, extra: dict | None = None, labels=None, title: str = "") -> str:
    """Writes ``report.md``, ``report.json`` and ``scatter.png`` into ``folder``; returns the markdown."""
    os.makedirs(folder, exist_ok=True)
    stats = accuracy(predicted, measured)
    text = markdown(stats, extra, title)
    with open(os.path.join(folder, "report.md"), "w") as f:
        f.write(text + "\n")
    rows = [{"predicted_ms": p, "measured_ms": m, "error": e, **({"blocks": labels[i]} if labels else {})}
            for i, (p, m, e) in enumerate(zip(predicted, measured, stats["errors"]))]
    with open(os.path.join(folder, "report.json"), "w") as f:
        json.dump({"stats": {k: v for k, v in stats.items() if k != "errors"}, "extra": extra or {},
                   "networks": rows}, f, indent=1)
    try:
        scatter(predicted, measured, os.path.join(folder, "scatter.png"), title)
    except ImportError:  # matplotlib missing: the numbers are still written
        pass
    return text


# ------------------------------------------------------------------------------- command
def _define_flags():
    from absl import flags

    if "holdout" in flags.FLAGS:
        return
    flags.DEFINE_string("table", "latency_table.json", "Table JSON to build or extend.")
    flags.DEFINE_string("space", "mnasnet", "'mnasnet' or a space .json.")
    flags.DEFINE_integer("latency_size", 224, "Input resolution.")
    flags.DEFINE_integer("num_threads", 1, "LiteRT threads.")
    flags.DEFINE_integer("stem_filters", None, "Stem filters (default: the space's).")
    flags.DEFINE_integer("classes", 10, "Classifier classes of the measured networks.")
    flags.DEFINE_enum("objective", "fp32", ["fp32", "int8"], "Latency of a new table: float32 or full-integer int8.")
    flags.DEFINE_bool("all_parts", False, "Measure every part the space can produce (thousands for mnasnet).")
    flags.DEFINE_integer("calibration", 12, "Networks measured whole to fit the correction.")
    flags.DEFINE_integer("holdout", 0, "Held-out networks for the accuracy report (0: no report).")
    flags.DEFINE_string("report_dir", None, "Where report.md / scatter.png go (default: next to the table).")
    flags.DEFINE_integer("runs", 50, "Timed runs per model.")
    flags.DEFINE_integer("warmup", 10, "Warm-up runs per model.")
    flags.DEFINE_integer("seed", 0, "Seed of the sampled networks.")
    flags.DEFINE_string("anchor", "mnasnet_a1", "Drift-correction anchor of a new table: an architecture name, "
                        "'none', or block strings separated by ','.")


def main(argv) -> int:
    import random

    from absl import flags

    from mnas_keras.search.errors import SearchError
    from mnas_keras.search.latency_table import LatencyTable, space_parts
    from mnas_keras.search.space import get_space

    f = flags.FLAGS
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        space = get_space(f.space)
        stem = f.stem_filters or space.stem_filters
        if os.path.exists(f.table):
            table = LatencyTable.load(f.table, expected={"input_size": f.latency_size, "num_threads": f.num_threads,
                                                         "objective": f.objective})
        else:
            from mnas_keras.codec import ARCHITECTURES

            anchor = (None if f.anchor.lower() == "none" else f.anchor if f.anchor in ARCHITECTURES
                      else f.anchor.split(","))
            table = LatencyTable.create(f.latency_size, f.num_threads, f.objective, stem_filters=stem, classes=f.classes,
                                        runs=f.runs, warmup=f.warmup, anchor=anchor)
            table.path = f.table
        rng = random.Random(f.seed)
        nets = [space.decode(space.sample(rng)) for _ in range(f.calibration + f.holdout)]
        calibration, holdout = nets[:f.calibration], nets[f.calibration:]
        if f.all_parts:
            table.measure_parts(space_parts(space, f.latency_size), log=print)
            table.save()
        table.measure_missing(calibration + holdout, log=print)
        table.save()
        if calibration:
            table.calibrate(calibration, log=print)
            table.save()
        print(f"{table!r}; fit {table.fit}; saved {table.path}")
        if holdout:
            measured = table.measure_networks(holdout, log=print)
            predicted = [table.predict(b) for b in holdout]
            folder = f.report_dir or os.path.join(os.path.dirname(os.path.abspath(table.path)), "latency_report")
            extra = {"drift correction": "anchor network" if table.drift_corrected else "none"}
            if table.drift_corrected:
                extra["machine speed vs the table's (anchor ms then / now)"] = \
                    f"{table.settings['anchor_ms'] / table.last_anchor_ms:.3f}"
            print(write_report(predicted, measured, folder, extra=extra, labels=["|".join(b) for b in holdout],
                               title=f"{len(holdout)} held-out networks, {f.latency_size}px, "
                                     f"{table.settings['objective']}"))
            print(f"report: {folder}")
    except SearchError as err:
        print(f"latency table: error: {err}", file=sys.stderr)
        return 2
    return 0


def run() -> None:
    """Entry point: ``python -m mnas_keras.search.latency_report``."""
    from absl import app

    _define_flags()
    app.run(main)


if __name__ == "__main__":
    run()
