"""``mnas-netadapt``: refine a trained MnasNet to a latency target with NetAdapt.

With no flags it runs offline: MnasNet-small (width 1.0) trained on scikit-learn digits at
32x32 (``--seed_train_steps`` SGD steps, batch 64, momentum 0.9, learning rate 0.05 decayed
to 0 by a cosine, then the batch-norm statistics recomputed over the training images; saved
as ``trained.keras`` in the run directory, its flags in ``trained.json``: a rerun with other
``--arch``/``--alpha``/``--seed_train_steps`` is refused), then refined to 70% of its float32 LiteRT latency
at 96x96 (``--latency_size``, one thread) under the run's own layer-wise latency table
(``<run_dir>/latency_table.json``, NetAdapt's look-up tables: each block's part measured on
LiteRT the first time a proposal needs it, a network the sum of its parts), proposals
compared after recomputing their batch-norm statistics and the chosen one fine-tuned 40
steps (``--evaluate=adaptive_bn``, EagleEye's ranking); when the table says the target is
met, the network is timed against the seed on LiteRT, and the loop goes on if that misses
it. On one core of the 2-core machine three fresh runs took 8.3-9.1 minutes (2026-11-30):
7-8 steps, the final network at 60-64% of the seed's latency timed directly, digits test
accuracy 95.5% -> 94.2-95.0% (``benchmarks/RESULTS.md``).

``--delta`` defaults to 0.05 of the seed latency per step, not MobileNetV3's 0.01 (the
library's :class:`~mnas_keras.search.netadapt.loop.NetAdaptConfig` default), halved down to
``--min_delta`` (0.0125) when no proposal can cut it: reaching 70% takes at least 30
iterations at 0.01, far beyond the 15 minutes the offline default is meant to take.
``--delta=0.01`` gives the MobileNetV3 setting.

Re-running the same command resumes the run; ``--overwrite`` deletes it first.

Examples::

    mnas-netadapt                                        # the offline default
    mnas-netadapt --model=runs/mnas_search/export/best/model.keras --target_fraction=0.8
    mnas-netadapt --latency=table --table=runs/latency_table_32px_1t.json --delta=0.01
    mnas-netadapt --latency=measured --evaluate=fine_tune --min_delta=0   # NetAdapt as published
    mnas-netadapt --latency=madds --steps=10 --run_dir=runs/dry   # a fast dry run

A bad flag or file is one ``mnas-netadapt: error: ...`` line and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from mnas_keras._cli import UsageError, check_writable_dir, fail, guard, import_tensorflow
from mnas_keras._serialization import check_keras_archive, load_model

TOOL = "mnas-netadapt"
MIN_DELTA = 0.0125  # 5% halved twice: 2.5%, 1.25%


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        fail(TOOL, message)


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog=TOOL, description="NetAdapt: shrink a trained MnasNet layer by layer to a latency target.")
    p.add_argument("--model", default=None, help=".keras file of a trained MnasNet (default: train MnasNet-small "
                   "on digits first).")
    p.add_argument("--arch", default="mnasnet_small", help="Seed architecture when --model is not given.")
    p.add_argument("--alpha", type=float, default=1.0, help="Width multiplier of --arch (0.5 leaves too little "
                   "to cut: its layers are at 8-16 channels, where the time barely follows the width).")
    p.add_argument("--seed_train_steps", type=int, default=400, help="Training steps of the seed (no --model).")
    p.add_argument("--run_dir", default="runs/netadapt", help="Run directory (re-running resumes it).")
    p.add_argument("--image_size", type=int, default=32, help="Digits resolution (train and measure).")
    p.add_argument("--latency", choices=("measured", "table", "madds"), default="table",
                   help="Latency source: a layer-wise lookup table (NetAdapt's; parts measured on LiteRT, the final "
                   "network timed against the seed), LiteRT measured per proposal, or multiply-adds.")
    p.add_argument("--table", default=None, help="Latency table JSON (--latency=table; default: a layer-wise "
                   "table of this run's networks, <run_dir>/latency_table.json, its parts measured as they are "
                   "first needed, as NetAdapt's own look-up tables).")
    p.add_argument("--latency_size", type=int, default=96, help="Input size latency is measured at (the "
                   "network is rebuilt at this size for timing). 96: at 32x32 the whole network runs in "
                   "40-60 us, mostly per-operator overhead, and one layer's cut is below the spread of two "
                   "timings of the same network (0.92-1.16).")
    p.add_argument("--target_fraction", type=float, default=0.7, help="Target latency / seed latency.")
    p.add_argument("--target_ms", type=float, default=None, help="Absolute target latency (ms).")
    p.add_argument("--delta", type=float, default=0.05, help="Latency cut per step / seed latency "
                   "(MobileNetV3: 0.01).")
    p.add_argument("--min_delta", type=float, default=None, help="When no proposal cuts --delta, halve it "
                   f"while it stays >= this fraction of the seed latency (NNI NetAdaptPruner's rule; default "
                   f"{MIN_DELTA}, none when --delta is below it); 0: stop there, as NetAdapt.")
    p.add_argument("--steps", type=int, default=40, help="Short fine-tune steps (T): of the chosen proposal "
                   "with --evaluate=adaptive_bn, of every proposal with --evaluate=fine_tune.")
    p.add_argument("--evaluate", choices=("fine_tune", "adaptive_bn"), default="adaptive_bn",
                   help="fine_tune: each proposal fine-tuned --steps steps before it is compared (NetAdapt); "
                   "adaptive_bn: proposals compared after recomputing their batch-norm statistics, only the "
                   "chosen one fine-tuned (EagleEye).")
    p.add_argument("--final_steps", type=int, default=200, help="Long fine-tune steps at the end.")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--learning_rate", type=float, default=0.005)
    p.add_argument("--criterion", choices=("per_latency", "accuracy"), default="per_latency",
                   help="per_latency: accuracy change per ms saved (MobileNetV3); accuracy: NetAdapt's.")
    p.add_argument("--max_iterations", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no_tflite", action="store_true", help="Do not write final.tflite.")
    p.add_argument("--overwrite", action="store_true", help="Delete an existing run in --run_dir first "
                   "(its trained seed included), as mnas-search --overwrite.")
    return p


def _check(args) -> None:
    if args.model is not None and not os.path.isfile(args.model):
        raise UsageError(f"--model {args.model!r}: no such file; expected a .keras file of an MnasNet")
    if args.model is not None and not args.model.endswith(".keras"):
        raise UsageError(f"--model {args.model!r}: expected a .keras file")
    if args.model is not None:  # the seed's own settings would be ignored
        defaults = parser().parse_args([])
        ignored = [f"--{name}={getattr(args, name)}" for name in ("arch", "alpha", "seed_train_steps")
                   if getattr(args, name) != getattr(defaults, name)]
        if ignored:
            raise UsageError(f"{', '.join(ignored)} describe the seed trained when no --model is given; "
                             f"received --model={args.model}")
    if args.model is not None:
        check_keras_archive(args.model)  # a truncated or garbage file, named (no TensorFlow yet)
    if args.table and args.latency != "table":  # it would be ignored
        raise UsageError(f"--table is read only with --latency=table; received --latency={args.latency}")
    if args.table is not None and not os.path.isfile(args.table):
        raise UsageError(f"--table {args.table!r}: no such file")
    if args.min_delta is not None and not 0 <= args.min_delta <= args.delta:
        raise UsageError(f"--min_delta must be in [0, --delta={args.delta}]; received {args.min_delta}")
    if args.image_size < 32:
        raise UsageError(f"--image_size must be >= 32 (the applications' minimum); received {args.image_size}")
    if args.latency_size < 32:
        raise UsageError(f"--latency_size must be >= 32; received {args.latency_size}")
    if args.seed_train_steps < 0:
        raise UsageError(f"--seed_train_steps must be >= 0; received {args.seed_train_steps}")
    if not 0 < args.alpha <= 4:
        raise UsageError(f"--alpha must be in (0, 4]; received {args.alpha}")
    check_writable_dir(args.run_dir, "--run_dir")  # before the seed's training, not after


def _min_delta(args) -> float | None:
    if args.min_delta is None:
        return MIN_DELTA if MIN_DELTA <= args.delta else None
    return args.min_delta or None


SEED_SETTINGS = "trained.json"  # the flags the run's own seed (trained.keras) was trained with
SEED_FLAGS = ("arch", "alpha", "seed_train_steps")
# what a run writes before its journal: the trained seed, its flags, the run's own latency table
PRE_RUN_FILES = {"trained.keras", SEED_SETTINGS, "latency_table.json", "latency_table.json.lock"}


def _seed_settings(args) -> dict:
    return {name: getattr(args, name) for name in SEED_FLAGS}


def _check_seed(args) -> None:
    """Refuses a rerun whose --arch, --alpha or --seed_train_steps differ from those the run
    directory's trained seed was trained with (it would be reused as it is)."""
    import json

    if args.model is not None or not os.path.exists(os.path.join(args.run_dir, "trained.keras")):
        return
    try:
        with open(os.path.join(args.run_dir, SEED_SETTINGS)) as f:
            stored = json.load(f)
    except (OSError, ValueError):
        return  # a run from before the settings were kept
    if not isinstance(stored, dict):
        return
    ours = _seed_settings(args)
    differing = [f"--{name}={ours[name]}" for name in SEED_FLAGS if name in stored and stored[name] != ours[name]]
    if differing:
        held = ", ".join(f"--{name}={stored[name]}" for name in SEED_FLAGS if name in stored)
        raise UsageError(f"--run_dir {args.run_dir} holds a seed trained with {held}; received {', '.join(differing)} "
                         "(use the same flags, another directory, or --overwrite)")


def _seed_model(args, data):
    """The given model, or --arch trained on the digits (kept in the run directory)."""
    import keras

    if args.model is not None:
        return load_model(args.model)
    path = os.path.join(args.run_dir, "trained.keras")
    if os.path.exists(path):
        return load_model(path)
    from mnas_keras.search.run.journal import atomic_write_json
    from mnas_keras.applications.registry import create_model
    from mnas_keras.search.netadapt.loop import fine_tune, recalibrate_batch_norm

    keras.utils.set_random_seed(args.seed)
    model = create_model(args.arch, input_shape=(args.image_size, args.image_size, 3), alpha=args.alpha,
                         classes=10, weights=None, include_preprocessing=True)
    (x, y), _ = data
    fine_tune(model, x, y, args.seed_train_steps, batch_size=64, learning_rate=0.05, momentum=0.9, seed=args.seed,
              graph=True, cosine=True)
    # The moving averages lag a short lr-0.05 training: without this the seed scores chance
    # in inference mode (11.8% on digits) while its training-mode accuracy is high.
    recalibrate_batch_norm(model, x, batches=2, batch_size=512, seed=args.seed)
    os.makedirs(args.run_dir, exist_ok=True)
    # what the seed was trained with, before the seed itself: a rerun with other flags is refused
    atomic_write_json(os.path.join(args.run_dir, SEED_SETTINGS), _seed_settings(args))
    tmp = path + ".tmp.keras"
    model.save(tmp)
    os.replace(tmp, path)
    return model


def _clear(run_dir: str) -> None:
    """--overwrite: empties a run directory (refused for one holding something else)."""
    from mnas_keras.search.run.journal import RunDirectory

    if not os.path.isdir(run_dir):
        return
    run = RunDirectory(run_dir)
    held = sorted(name for name in os.listdir(run_dir) if name != RunDirectory.LOCK_NAME)
    if held and set(held) <= PRE_RUN_FILES:  # a run stopped after its seed's training, before its journal
        for name in held:
            os.unlink(os.path.join(run_dir, name))
        return
    if held and not RunDirectory.is_search_run(run_dir):
        raise UsageError(f"--overwrite deletes only a run directory; {run_dir} holds {held[:5]} but no "
                         "journal.jsonl")
    run.prepare({}, overwrite=True)  # takes the run's lock, then deletes everything else
    run.close()
    for name in ("config.json", "journal.jsonl"):
        path = os.path.join(run_dir, name)
        if os.path.exists(path):
            os.unlink(path)


def _check_resume(args, config, data) -> None:
    """Refuses a ``--run_dir`` that holds another tool's run, or a NetAdapt run with other
    settings, data or latency source, before anything is written into it (the loop's own
    check comes after the seed is trained and the run's table is created)."""
    import dataclasses
    import json

    from mnas_keras.search.netadapt.loop import data_definition, table_reference

    path = os.path.join(args.run_dir, "config.json")
    try:
        with open(path) as f:
            stored = json.load(f)
    except (OSError, ValueError):
        return  # no run yet, or a damaged one: the loop names it
    if not isinstance(stored, dict) or "netadapt" not in stored:
        raise UsageError(f"--run_dir {args.run_dir} holds another tool's run (its config.json has no NetAdapt "
                         "settings); use another directory, or --overwrite to delete that run")
    latency = {"source": args.latency}
    if args.table is None:  # an external table times at its own size
        latency["input_size"] = args.latency_size
    if args.latency == "table":  # not the run's own table written into a run of another table
        latency["table"] = table_reference(args.table or os.path.join(args.run_dir, "latency_table.json"),
                                           args.run_dir)
    ours = {"netadapt": json.loads(json.dumps(dataclasses.asdict(config))), "data": data_definition(data),
            "latency": latency}
    differing = []
    for section, values in ours.items():
        held = stored.get(section) if isinstance(stored.get(section), dict) else {}
        differing += [(f"{section}.{key}", held.get(key), value) for key, value in values.items()
                      if held.get(key) != value]
    if differing:
        changes = "; ".join(f"{key} was {old!r}, is now {new!r}" for key, old, new in differing)
        sections = sorted({key.split(".")[0] for key, _, _ in differing})
        raise UsageError(f"run directory {args.run_dir} holds a run with different {', '.join(sections)}; {changes}; "
                         "it may not change on resume: use another directory, the same options, or --overwrite")


def _layerwise_table(args, model):
    """The run's own table (``<run_dir>/latency_table.json``): the seed's settings at
    ``--latency_size``, the seed as the drift anchor, no fitted correction (a network is the
    plain sum of its parts, as NetAdapt's layer-wise look-up tables); parts are measured on
    LiteRT when a network first needs them and saved, so a resumed run reuses them."""
    from mnas_keras.search.latency.table import LatencyTable
    from mnas_keras.search.netadapt.surgery import find_backbone

    path = os.path.join(args.run_dir, "latency_table.json")
    if os.path.exists(path):
        return LatencyTable.load(path)
    backbone = find_backbone(model)
    config = backbone.get_config()
    table = LatencyTable.create(input_size=args.latency_size, anchor=list(backbone.blocks),
                                stem_filters=config["stem_filters"], head_filters=config["head_filters"],
                                classes=config["classes"], activation=config["activation"],
                                include_preprocessing=config["include_preprocessing"])
    table.save(path)
    return table


def verify_source(table):
    """The LiteRT source that times the final network against the seed for a table run: at
    the table's own input size and threads (an external ``--table`` times at its own size,
    not ``--latency_size``), so the measured ratio is of the networks the table predicts.

    Example:
        >>> from mnas_keras.search.latency.table import LatencyTable
        >>> source = verify_source(LatencyTable({"input_size": 48, "num_threads": 2}))
        >>> source.input_size, source.num_threads
        (48, 2)
    """
    from mnas_keras.search.netadapt.latency import make_source

    settings = table.settings
    return make_source("measured", input_size=int(settings["input_size"]),
                       num_threads=int(settings.get("num_threads") or 1))


def main(argv=None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    guard(TOOL, _check, args)
    import_tensorflow()
    return guard(TOOL, _run, args)


def _run(args) -> int:
    from mnas_keras.datasets import load_digits
    from mnas_keras.search.latency.table import LatencyTable
    from mnas_keras.search.netadapt.latency import make_source
    from mnas_keras.search.netadapt.loop import NetAdapt, NetAdaptConfig

    config = NetAdaptConfig(target_fraction=args.target_fraction, target_ms=args.target_ms, delta_fraction=args.delta,
                            min_delta_fraction=_min_delta(args), steps=args.steps, evaluate=args.evaluate,
                            final_steps=args.final_steps, batch_size=args.batch_size,
                            learning_rate=args.learning_rate, criterion=args.criterion,
                            max_iterations=args.max_iterations, seed=args.seed)
    data = load_digits(size=args.image_size, seed=args.seed)
    if args.overwrite:
        _clear(args.run_dir)
    else:
        _check_resume(args, config, data)  # before the seed's training or the table write into it
        _check_seed(args)
    model = _seed_model(args, data)
    size = tuple(model.input_shape[1:3]) if isinstance(model.input_shape, tuple) else ()
    if args.model is not None and len(size) == 2 and None not in size and size != (args.image_size,) * 2:
        raise UsageError(f"--model {args.model} takes {size[0]}x{size[1]} images; received --image_size="
                         f"{args.image_size} (the digits are resized to it): use --image_size={size[0]}")
    table, verify = None, None
    if args.latency == "table":
        table = _layerwise_table(args, model) if args.table is None else LatencyTable.load(args.table)
        verify = verify_source(table)  # the final network vs the seed
    source = make_source(args.latency, input_size=args.latency_size, table=table)
    result = NetAdapt(model, data, source, config, args.run_dir, export_tflite=not args.no_tflite,
                      verify=verify).run_loop()
    print(f"{TOOL}: {result.status} after {result.iterations} steps: latency {result.seed_latency_ms:.4g} -> "
          f"{result.latency_ms:.4g} ms (target {result.target_ms:.4g}); test accuracy "
          f"{result.test_accuracy_before:.4f} -> {result.test_accuracy_after:.4f}")
    if result.latency_vs_seed_ms is not None:
        print(f"final network timed against the seed in one interleaved run: {result.latency_vs_seed_ms:.4g} ms "
              f"({result.latency_vs_seed_ms / result.seed_latency_ms:.0%} of the seed)")
    print("blocks: " + " ".join(result.blocks))
    outputs = ["final.keras"] + ([] if args.no_tflite else ["final.tflite"]) + ["blocks.json", "summary.json",
                                                                              "netadapt.png"]
    print(f"outputs in {result.run_dir}: {', '.join(outputs)}")
    return 0


def run() -> None:
    """Console-script entry point."""
    from mnas_keras._cli import stop_on_interrupt

    sys.exit(stop_on_interrupt(TOOL, main))


if __name__ == "__main__":
    run()
