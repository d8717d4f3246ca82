"""Search outputs: the accuracy/latency Pareto front (JSON, CSV), top-k, and the plot.

No TensorFlow; the plot uses matplotlib's Agg backend, imported on use.

Example:
    >>> points = [{"key": "a", "accuracy": 0.9, "latency_ms": 2.0},
    ...           {"key": "b", "accuracy": 0.8, "latency_ms": 1.0},
    ...           {"key": "c", "accuracy": 0.7, "latency_ms": 1.5}]
    >>> [p["key"] for p in pareto_front(points)]
    ['b', 'a']
"""

from __future__ import annotations

import csv
import json
import os
from typing import Iterable, Sequence

CSV_FIELDS = ("rank", "arch_id", "reward", "accuracy", "latency_ms", "step", "blocks")


def pareto_front(records: Iterable[dict]) -> list[dict]:
    """The records no other record beats on both accuracy (higher) and latency (lower),
    sorted by latency. Failed records (no accuracy/latency) are ignored; of exact
    duplicates the first is kept."""
    points = [r for r in records if r.get("status", "ok") == "ok"
              and r.get("accuracy") is not None and r.get("latency_ms") is not None]
    points.sort(key=lambda r: (r["latency_ms"], -r["accuracy"]))
    front, best_acc = [], float("-inf")
    for r in points:
        if r["accuracy"] > best_acc:
            front.append(r)
            best_acc = r["accuracy"]
    return front


def top_k(records: Iterable[dict], k: int) -> list[dict]:
    """The ``k`` best successful records by reward (ties: lower latency first)."""
    ok = [r for r in records if r.get("status", "ok") == "ok"]
    return sorted(ok, key=lambda r: (-r["reward"], r["latency_ms"]))[:k]


def distinct_records(results: dict) -> list[dict]:
    """The first result of each architecture (by ``key``) from results by step, in step order.

    Example:
        >>> [r["step"] for r in distinct_records({2: {"key": "a", "step": 2}, 0: {"key": "a", "step": 0},
        ...                                       1: {"key": "b", "step": 1}})]
        [0, 1]
    """
    seen: dict[str, dict] = {}
    for step in sorted(results):
        seen.setdefault(results[step]["key"], results[step])
    return list(seen.values())


def kept_records(records: Iterable[dict], k: int) -> list[dict]:
    """The records a search keeps (exports, and keeps artifacts of): the top ``k`` by reward
    and the Pareto front, by reward (ties: lower latency first)."""
    records = list(records)
    chosen = {r["key"]: r for r in top_k(records, k)}
    for r in pareto_front(records):
        chosen.setdefault(r["key"], r)
    return sorted(chosen.values(), key=lambda r: (-r["reward"], r["latency_ms"]))


def _row(rank: int, r: dict) -> dict:
    return {"rank": rank, "arch_id": r.get("arch_id", ""), "reward": r.get("reward"),
            "accuracy": r.get("accuracy"), "latency_ms": r.get("latency_ms"), "step": r.get("step"),
            "blocks": " ".join(r.get("blocks", []))}


def write_table(records: Sequence[dict], json_path: str, csv_path: str, extra: dict | None = None) -> None:
    """Writes records as JSON (with ``extra`` top-level fields) and CSV (:data:`CSV_FIELDS`)."""
    os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
    keep = ("arch_id", "key", "blocks", "reward", "accuracy", "latency_ms", "step", "params", "madds",
            "int8_latency_ms", "latency_source", "predicted_latency_ms")
    with open(json_path, "w") as f:
        json.dump({**(extra or {}), "models": [{k: r[k] for k in keep if k in r} for r in records]},
                  f, indent=2, sort_keys=True)
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for rank, r in enumerate(records, start=1):
            writer.writerow(_row(rank, r))


def format_front(front: Sequence[dict]) -> str:
    """The front as an aligned text table (printed at the end of a search)."""
    lines = [f"{'#':>3} {'latency ms':>10} {'accuracy':>8} {'reward':>8}  architecture"]
    for rank, r in enumerate(front, start=1):
        lines.append(f"{rank:>3} {r['latency_ms']:>10.4f} {r['accuracy']:>8.4f} {r['reward']:>8.4f}  "
                     f"{' '.join(r['blocks'])}")
    return "\n".join(lines)


def plot_search(records: Sequence[dict], front: Sequence[dict], path: str, target_ms: float | None = None,
                reference: dict | None = None, title: str = "MnasNet search") -> str:
    """Saves a PNG: every successful sample, the Pareto front, the target latency and the
    reference network."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    ok = [r for r in records if r.get("status", "ok") == "ok"]
    fig = Figure(figsize=(7, 4.5), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    if ok:
        steps = [r.get("step", 0) for r in ok]
        points = ax.scatter([r["latency_ms"] for r in ok], [r["accuracy"] for r in ok], c=steps, s=16,
                            cmap="viridis", alpha=0.8, label=f"samples ({len(ok)})")
        fig.colorbar(points, ax=ax, label="step")
    if front:
        ax.plot([r["latency_ms"] for r in front], [r["accuracy"] for r in front], "-o", color="crimson",
                markersize=5, linewidth=1.5, label=f"Pareto front ({len(front)})", drawstyle="steps-post")
    if target_ms:
        ax.axvline(target_ms, color="gray", linestyle="--", linewidth=1, label=f"target {target_ms:.3g} ms")
    if reference and reference.get("status", "ok") == "ok":
        ax.scatter([reference["latency_ms"]], [reference["accuracy"]], marker="*", s=160, color="orange",
                   edgecolor="black", zorder=5, label="reference")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("validation accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    return path
