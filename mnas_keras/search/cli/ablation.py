"""``mnas-ablation``: the MnasNet paper's ablation (section 7) as one command.

Is the gain from the latency-aware reward or from the search space? Four arms, each a
resumable ``mnas-search`` run directory under ``--out_dir`` with one budget and seed:

====================== ========================= ===================================
arm                    space                     reward
====================== ========================= ===================================
``cells_accuracy``     NASNet cells (``nasnet``)  accuracy only (MnasNet form, w = 0)
``cells_soft``         NASNet cells               soft (alpha = beta = -0.07)
``factorized_soft``    MnasNet's (``mnasnet``)    soft
``factorized_hard``    MnasNet's                  hard (alpha = 0, beta = -1)
====================== ========================= ===================================

The two arms of a space sample with the same seed, so they often propose the same
architectures (always the reference and the first samples); within one invocation an
architecture the other arm of its space already evaluated is not trained again (its journal
record says ``shared_from``). Latency is measured at ``--image_size`` in every arm (the cell networks have a fixed size).
The target is ``--target_ms``, or the reference MobileNetV2's latency measured by
``factorized_soft`` (run first) times ``--target_scale``, shared by all arms. Then it writes
``ablation.{json,csv,md}`` (per arm: best reward and its accuracy and latency, the best
accuracy at or under the target, the Pareto hypervolume, samples, wall seconds of this
invocation) and ``ablation.png`` (the four Pareto fronts). Re-running resumes each arm.

Every ``mnas-search`` flag applies to all arms (``--num_samples``, ``--epochs``,
``--controller``, ``--evaluator=synthetic`` for a dry run, ...); ``--space``, ``--reward``,
``--alpha``, ``--beta``, ``--run_dir`` and ``--latency_size`` are set per arm. The defaults
are ``mnas-search``'s except the offline budget in :data:`ABLATION_DEFAULTS` (4 samples per
arm, each trained two traced epochs of the digits training split; 22.5 minutes measured on one
shared core of a 2-core machine). ``--num_samples`` may change between invocations: re-running
with a larger value extends every arm (a budget that grows while time allows). With fewer
samples per arm than the controller's batch (PPO: 10) the controller never updates, so the
two arms of a space evaluate the same networks and differ only in which their reward ranks
first; give more samples (or ``--controller_options='{"batch_size": 2}'``) for the reward to
steer the sampling.

The paper's ImageNet result (MnasNet Table 6 / section 7): cells with an accuracy-only
reward reached 74.0% at 183 ms on a Pixel 1, the factorized space with the latency-aware
reward 75.2% at 78 ms. This command repeats the comparison on a small proxy task; it
measures this package's spaces and rewards, not those numbers.

Example::

    mnas-ablation --out_dir=runs/ablation                     # the offline default budget
    mnas-ablation --out_dir=runs/ablation --num_samples=8     # then extend every arm
    mnas-ablation --out_dir=/tmp/dry --evaluator=synthetic    # seconds: the machinery only
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
import types

from absl import app, flags

FLAGS = flags.FLAGS

#: ``name: (space, reward kind, alpha, beta)``, in the order they run.
ARMS = {
    "factorized_soft": ("mnasnet", "soft", None, None),
    "factorized_hard": ("mnasnet", "hard", None, None),
    "cells_accuracy": ("nasnet", "mnasnet", 0.0, 0.0),
    "cells_soft": ("nasnet", "soft", None, None),
}
ABLATION_ARMS = ARMS

#: ``mnas-ablation``'s defaults where they differ from ``mnas-search``'s: the offline budget on
#: the digits proxy (4 samples per arm plus its reference; two epochs of the whole training
#: split, 72 steps of 32, traced once (``graph``: eager steps of a MobileNetV2-sized network
#: cost as much as the tracing); 10 timed LiteRT runs), meant to finish in under 30 minutes
#: on a quiet 2-core machine (estimated; benchmarks/RESULTS.md has the wall time per arm measured
#: under load). At
#: one epoch of 512 images (16 steps) the factorized space's MobileNetV2 reference reaches
#: only ~34% on digits, the same as keras.applications.MobileNetV2 at that budget; at this
#: budget both reach 84-88% (README, "The ablation on this machine").
ABLATION_DEFAULTS = {"num_samples": 4, "epochs": 2, "batch_size": 32, "train_mode": "graph", "runs": 10,
                     "warmup": 2, "export": False, "tensorboard": False}


def hypervolume(points, target_ms: float, max_ratio: float = 2.0) -> float:
    """Area dominated by ``(latency_ms, accuracy)`` points in the box latency / target in
    ``[0, max_ratio]`` x accuracy in ``[0, 1]`` (lower latency and higher accuracy dominate).

    Example:
        >>> hypervolume([(5.0, 0.6), (10.0, 0.8), (15.0, 0.7)], target_ms=10.0)  # 0.5*0.6 + 1*0.8
        1.1
    """
    pts = sorted((lat / target_ms, acc) for lat, acc in points if lat / target_ms < max_ratio)
    front = []
    for lat, acc in pts:
        if not front or acc > front[-1][1]:
            front.append((lat, acc))
    area = 0.0
    for i, (lat, acc) in enumerate(front):
        right = front[i + 1][0] if i + 1 < len(front) else max_ratio
        area += (right - lat) * acc
    return round(area, 12)


def summarize(name: str, records, target_ms: float, wall_s: float) -> dict:
    """One table row of an arm's distinct records."""
    ok = [r for r in records if r.get("status") == "ok"]
    best = max(ok, key=lambda r: r["reward"]) if ok else None
    under = [r["accuracy"] for r in ok if r["latency_ms"] <= target_ms]
    return {
        "arm": name, "space": ARMS[name][0], "reward": ARMS[name][1] if ARMS[name][2] is None else "accuracy",
        "best_reward": best["reward"] if best else None, "best_accuracy": best["accuracy"] if best else None,
        "best_latency_ms": best["latency_ms"] if best else None,
        "accuracy_at_target": max(under) if under else None,
        "hypervolume": hypervolume([(r["latency_ms"], r["accuracy"]) for r in ok], target_ms),
        "evaluated": len(records), "failed": len(records) - len(ok), "wall_s": round(wall_s, 1),
    }


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def write_outputs(rows, fronts, target_ms: float, out_dir: str) -> dict:
    """``ablation.json``, ``.csv``, ``.md`` and ``ablation.png``; returns their paths."""
    paths = {ext: os.path.join(out_dir, f"ablation.{ext}") for ext in ("json", "csv", "md", "png")}
    with open(paths["json"], "w") as f:
        json.dump({"target_ms": target_ms, "arms": rows}, f, indent=2)
    with open(paths["csv"], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    header = list(rows[0])
    lines = [f"target {target_ms:.4f} ms", "", "| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(f"{row[k]:.1f}" if k == "wall_s" else _fmt(row[k]) for k in header) + " |"
              for row in rows]
    with open(paths["md"], "w") as f:
        f.write("\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, front in fronts.items():
        pts = sorted((r["latency_ms"], r["accuracy"]) for r in front)
        if pts:
            ax.step([p[0] for p in pts], [p[1] for p in pts], where="post", marker="o", label=name)
    ax.axvline(target_ms, color="gray", linestyle="--", label="target")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("proxy accuracy")
    ax.set_title("ablation: Pareto fronts per arm")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(paths["png"], dpi=100)
    plt.close(fig)
    return paths


def ablation_defaults() -> types.SimpleNamespace:
    """Every ``mnas-search`` setting at ``mnas-ablation``'s default (:data:`ABLATION_DEFAULTS`
    over ``mnas-search``'s flag defaults), as attributes.

    Example:
        >>> values = ablation_defaults()
        >>> values.evaluator, values.dataset, values.image_size
        ('proxy', 'digits', 32)
    """
    from mnas_keras.search.cli.search import _define_flags

    search_flags = flags.FlagValues()  # not absl's global FLAGS: other tools define theirs there
    _define_flags(search_flags)
    values = {name: search_flags[name].default for name in search_flags}
    return types.SimpleNamespace(**{**values, **ABLATION_DEFAULTS})


class _SharedEvaluations:
    """An evaluator whose results are shared by the arms of one space (same evaluator
    settings, same seed): an architecture another arm already trained and measured in this
    invocation is not trained again; its result (marked ``shared_from``: that arm) and its
    artifacts are copied. Reruns across invocations evaluate again."""

    def __init__(self, evaluator, memo: dict, arm: str):
        self._evaluator, self._memo, self._arm = evaluator, memo, arm

    def __getattr__(self, name):
        return getattr(self._evaluator, name)

    def evaluate(self, blocks, artifact_dir=None):
        import shutil

        key = "|".join(blocks)
        if key in self._memo:
            result, folder, arm = self._memo[key]
            if artifact_dir is not None and folder is not None and os.path.isdir(folder):
                shutil.copytree(folder, artifact_dir, dirs_exist_ok=True)
            return {**result, "shared_from": arm}
        result = self._evaluator.evaluate(blocks, artifact_dir)
        self._memo[key] = (dict(result), artifact_dir, self._arm)
        return result


#: ``mnas-search`` flags that each arm sets (refused on the ``mnas-ablation`` command line).
ARM_FLAGS = ("space", "reward", "alpha", "beta", "run_dir", "latency_size")


def run_ablation(values=None, out_dir: str = "runs/ablation", log=print, **overrides) -> dict:
    """Runs (or resumes) the four arms (:data:`ARMS`) with one budget and seed.

    Args:
        values: every ``mnas-search`` setting as attributes (the parsed flags); default
            :func:`ablation_defaults`.
        out_dir: folder of the four run directories and the table.
        log: where progress lines go (``None``: nowhere).
        **overrides: settings replacing those of ``values`` (``num_samples=4``,
            ``evaluator="synthetic"``, ...).

    Returns:
        ``{"rows": [one dict per arm], "target_ms": float, "files": {"json", "csv", "md",
        "png": path}}``.

    Raises:
        SearchError: a bad setting (e.g. ``SearchConfigError``), naming it.

    Example::

        out = run_ablation(out_dir="runs/ablation_dry", evaluator="synthetic", num_samples=2)
        [row["arm"] for row in out["rows"]]  # ['factorized_soft', 'factorized_hard', ...]
    """
    from mnas_keras.search.cli.search import build_search

    values = values if values is not None else ablation_defaults()
    values = types.SimpleNamespace(**{**vars(values), **overrides})
    log = log or (lambda line: None)
    os.makedirs(out_dir, exist_ok=True)
    target_ms = values.target_ms
    rows, fronts, shared = [], {}, {}
    for name, (space, reward, alpha, beta) in ARMS.items():
        arm = types.SimpleNamespace(**{**vars(values), "space": space, "reward": reward, "alpha": alpha,
                                       "beta": beta, "run_dir": os.path.join(out_dir, name),
                                       "latency_size": values.image_size, "target_ms": target_ms})
        log(f"--- arm {name}: space {space}, reward {reward} ({time.strftime('%H:%M:%S')})")
        start = time.perf_counter()
        search = build_search(arm)
        search.log = log
        if search.executor is None and hasattr(search.evaluator, "config"):  # in process: share evaluations
            settings = json.dumps([space, search.evaluator.config()], sort_keys=True, default=str)
            search.evaluator = _SharedEvaluations(search.evaluator, shared.setdefault(settings, {}), name)
        result = search.run()
        target_ms = result.target_ms
        rows.append(summarize(name, result.records, target_ms, time.perf_counter() - start))
        log(f"--- arm {name}: done in {rows[-1]['wall_s']:.1f} s ({time.strftime('%H:%M:%S')})")
        fronts[name] = result.front
    files = write_outputs(rows, fronts, target_ms, out_dir)
    return {"rows": rows, "target_ms": target_ms, "files": files}


def main(argv) -> int:
    from mnas_keras import _cli
    from mnas_keras.search.errors import SearchError

    if len(argv) > 1:  # one line and exit 2 (absl's UsageError printed its usage text and exited 1)
        print(f"mnas-ablation: error: unexpected arguments {argv[1:]}; every option is a --flag", file=sys.stderr)
        return 2
    fixed = [f"--{name}" for name in ARM_FLAGS if FLAGS[name].present]
    if fixed:  # each arm sets these; a value given here would be dropped without a word
        print(f"mnas-ablation: error: {', '.join(fixed)} cannot be given: each arm sets the space and reward, "
              "the run directories are <out_dir>/<arm> and latency is measured at --image_size", file=sys.stderr)
        return 2
    try:
        _cli.check_writable_dir(FLAGS.out_dir, "--out_dir")
    except _cli.UsageError as err:
        print(f"mnas-ablation: error: {err}", file=sys.stderr)
        return 2
    values = types.SimpleNamespace(**{name: FLAGS[name].value for name in FLAGS})
    try:
        if FLAGS.evaluator != "synthetic":
            _cli.import_tensorflow(sys.argv)
        out = run_ablation(values, FLAGS.out_dir)
    except SearchError as err:
        print(f"mnas-ablation: error: {err}", file=sys.stderr)
        return 2
    with open(out["files"]["md"]) as f:
        print("\n" + f.read())
    for key, path in out["files"].items():
        print(f"  {key:<5} {path}")
    return 0


def run() -> None:
    """Console-script entry point (``mnas-ablation``)."""
    from mnas_keras import _cli
    from mnas_keras.search.cli.common import flags_parser
    from mnas_keras.search.cli.search import _define_flags

    _cli.quiet_logs(sys.argv)
    _define_flags()
    for name, value in ABLATION_DEFAULTS.items():
        FLAGS.set_default(name, value)
    if "out_dir" not in FLAGS:
        flags.DEFINE_string("out_dir", "runs/ablation", "Folder of the four arms' run directories and the table.")
    app.run(lambda argv: _cli.stop_on_interrupt("mnas-ablation", _cli.guard, "mnas-ablation", main, argv),
            flags_parser=flags_parser("mnas-ablation"))


if __name__ == "__main__":
    run()
