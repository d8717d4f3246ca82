"""Accuracy of a latency table on networks it was not built from.

:func:`accuracy` gives nn-Meter's measure (the share of networks predicted within +-10%,
and +-5%), the root-mean-square percentage error and the worst case; :func:`write_report`
writes them as a markdown table plus a predicted-vs-measured scatter plot.

Example:
    >>> stats = accuracy([10.5, 9.0, 20.0], [10.0, 10.0, 20.0])
    >>> stats["within_10"], stats["within_5"], round(stats["worst_error"], 3)
    (1.0, 0.6666666666666666, -0.1)

The command that builds a table and writes this report is ``mnas-latency-table``
(:mod:`mnas_keras.search.cli.latency_table`).
"""

from __future__ import annotations

import json
import math
import os
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
