"""``mnas-latency-table``: build or extend a latency table and write its accuracy report.

Command line::

    mnas-latency-table --table=latency_table.json --space=mnasnet --calibration=12 --holdout=50 \\
        --report_dir=runs/latency_report

(also ``python -m mnas_keras.search.cli.latency_table``). A bad flag, table file or setting
prints one ``mnas-latency-table: error: ...`` line and exits 2.
"""

from __future__ import annotations

import os
import sys

from mnas_keras.search.latency.report import write_report

def _define_flags():
    from absl import flags

    if "holdout" in flags.FLAGS:
        return
    flags.DEFINE_string("table", "latency_table.json", "Table JSON to build or extend.")
    flags.DEFINE_string("space", "mnasnet", "'mnasnet', 'uib' (MobileNetV4 fine-stage UIB space) or a space .json.")
    flags.DEFINE_integer("latency_size", 224, "Input resolution (>= 32).", lower_bound=32)
    flags.DEFINE_integer("num_threads", 1, "LiteRT threads.", lower_bound=1)
    flags.DEFINE_integer("stem_filters", None, "Stem filters (default: the space's).", lower_bound=1)
    flags.DEFINE_integer("classes", 10, "Classifier classes of the measured networks.", lower_bound=1)
    flags.DEFINE_enum("objective", "fp32", ["fp32", "int8"], "Latency of a new table: float32 or full-integer int8.")
    flags.DEFINE_bool("all_parts", False, "Measure every part the space can produce (thousands for mnasnet).")
    flags.DEFINE_integer("calibration", 12, "Networks measured whole to fit the correction.", lower_bound=0)
    flags.DEFINE_integer("holdout", 0, "Held-out networks for the accuracy report (0: no report).",
                         lower_bound=0)
    flags.DEFINE_string("report_dir", None, "Where report.md / scatter.png go (default: next to the table).")
    flags.DEFINE_integer("runs", 50, "Timed runs per model (>= 1).", lower_bound=1)
    flags.DEFINE_integer("warmup", 10, "Warm-up runs per model.", lower_bound=0)
    flags.DEFINE_integer("seed", 0, "Seed of the sampled networks.")
    flags.DEFINE_string("anchor", "mnasnet_a1", "Drift-correction anchor of a new table: an architecture name, "
                        "'none', or block strings separated by ','.")


def _check_files_and_anchor(f) -> None:
    """Refuses, before any measurement, an anchor that is no architecture or block strings, a
    table whose folder cannot be written and (with ``--holdout``) an unwritable report folder:
    the table is saved only after minutes of timing."""
    from mnas_keras import _cli
    from mnas_keras.codec import ARCHITECTURES, BlockStringError, decode

    if f.anchor.lower() != "none" and f.anchor not in ARCHITECTURES:
        try:
            decode(f.anchor.split(","))
        except BlockStringError as err:
            raise _cli.UsageError(f"--anchor {f.anchor!r}: expected 'none', an architecture name "
                                  f"({', '.join(sorted(ARCHITECTURES))}) or block strings separated by ','; "
                                  f"{err}") from None
    if os.path.isdir(f.table):
        raise _cli.UsageError(f"--table {f.table!r} is a directory; expected a .json file")
    _cli.check_writable_dir(os.path.dirname(os.path.abspath(f.table)), f"--table {f.table!r}: its folder")
    if f.holdout:
        folder = f.report_dir or os.path.join(os.path.dirname(os.path.abspath(f.table)), "latency_report")
        _cli.check_writable_dir(folder, "--report_dir")


def main(argv) -> int:
    import random

    from absl import flags

    from mnas_keras.search.errors import SearchConfigError, SearchError
    from mnas_keras.search.latency import build as latency_build
    from mnas_keras.search.latency.table import LatencyTable, space_parts
    from mnas_keras.search.space import get_space
    from mnas_keras.tflite.errors import TFLiteError

    from mnas_keras import _cli

    f = flags.FLAGS
    if len(argv) > 1:
        print(f"mnas-latency-table: error: unexpected arguments {argv[1:]}; every option is a --flag", file=sys.stderr)
        return 2
    try:
        if f.space in ("nasnet", "nasrl"):  # mnas_keras.search.spaces: no table parts
            raise SearchConfigError(f"--space={f.space} has no latency-table parts: only measured latency applies "
                                    "(mnas-search --latency_mode=measured)")
        space = get_space(f.space)
        _check_files_and_anchor(f)
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
        _cli.import_tensorflow(sys.argv)  # without its start-up lines unless --verbosity
        rng = random.Random(f.seed)
        nets = [space.decode(space.sample(rng)) for _ in range(f.calibration + f.holdout)]
        calibration, holdout = nets[:f.calibration], nets[f.calibration:]
        # saved after every benchmark group: an interrupted build resumes with what it measured
        save_every = latency_build.MAX_PARTS_PER_BENCHMARK
        if f.all_parts:
            table.measure_parts(space_parts(space, f.latency_size), log=print, save_every=save_every)
            table.save()
        table.measure_missing(calibration + holdout, log=print, save_every=save_every)
        table.save()
        # Calibration and held-out networks are timed together, shuffled, in one interleaved
        # group with the anchor: both see the same machine speed (timed apart, they drifted
        # ~13% apart under load in the UIB run of issue 20).
        everything = calibration + holdout
        order = list(range(len(everything)))
        rng.shuffle(order)
        values = table.measure_networks_table_ms([everything[i] for i in order], log=print,
                                                 group=max(1, len(everything))) if everything else []
        latency = dict(zip(order, values))
        for i, blocks in enumerate(calibration):
            table.add_measurement(blocks, latency[i], source="calibration", refit=False)
        if calibration:
            table.refit()
            table.save()
        print(f"{table!r}; fit {table.fit}; saved {table.path}")
        if holdout:
            measured = [latency[len(calibration) + i] for i in range(len(holdout))]
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
    except (SearchError, TFLiteError, _cli.UsageError) as err:
        print(f"mnas-latency-table: error: {_cli.one_line(err)}", file=sys.stderr)
        return 2
    return 0


def run() -> None:
    """Console-script entry point (``mnas-latency-table``)."""
    from absl import app

    from mnas_keras.search.cli.common import flags_parser

    from mnas_keras import _cli

    _cli.quiet_logs(sys.argv)  # TensorFlow's C++ log to errors, absl's to warnings (unless --verbosity)
    _define_flags()
    app.run(lambda argv: _cli.stop_on_interrupt("mnas-latency-table", _cli.guard, "mnas-latency-table", main, argv),
            flags_parser=flags_parser("mnas-latency-table"))


if __name__ == "__main__":
    run()
