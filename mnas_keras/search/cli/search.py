"""``mnas-search``: platform-aware architecture search from the command line.

With no flags it runs a small complete search offline: MnasNet's space around MobileNetV2,
the paper's LSTM+PPO controller, scikit-learn digits at 32x32 for a 2-epoch proxy training,
LiteRT latency at 224x224 (one thread, pinned), the soft MnasNet reward with the target set
to the reference MobileNetV2's measured latency; 8 samples, then the final stage (the best
found architecture and the reference, 4 epochs each); under 10 minutes on two cores, and the
summary ends with a ``time:`` line (search evaluations: training, conversion, validation and
latency; export; final stage) and the fair comparison.
It prints a line per sample and the Pareto front, and writes ``runs/mnas_search/``:
``pareto.{json,csv,png}``, ``journal.jsonl``, ``tensorboard/`` and ``export/`` (best
``.keras``/``.tflite`` and a latency report). Re-running the same command resumes; a
second command on a run directory in use is refused (``run.lock`` names its pid; exit 2).

After the search, the final training stage (:mod:`mnas_keras.search.run.final`) trains the
``--final_top_k`` best Pareto-front architectures and the reference with one longer budget
(``--final_epochs``) and seed set (``--final_seeds``), measures their fp32 and int8 latency
side by side, writes ``final/final.{json,csv,png}`` (journaled, resumable) and ends the
summary with the fair comparison: whether a found model dominates the reference.
``--final_top_k=0`` skips it. ``--dataset=shapes_classification`` trains the proxy on
generated shapes x textures (20 classes) instead of digits.

Examples::

    mnas-search                                   # the small offline search
    mnas-search --num_samples=200 --controller=reinforce --reward=absolute --target_ms=5
    mnas-search --evaluator=synthetic --num_samples=2000 --run_dir=runs/dry   # no training
    mnas-search --space=my_space.json --describe_space
    mnas-search --space=nasnet --num_samples=20       # NASNet cells (nasrl: NAS-RL macro); measured latency
    mnas-search --latency_mode=predicted_then_measured  # latency lookup table, front measured
    mnas-search --executor=ray --max_in_flight=2          # evaluations as Ray actors (local Ray)
    mnas-search --executor=ray --ray_address=auto --latency_resource=latency_device
    mnas-search --final_top_k=3 --final_epochs=10 --final_seeds=0,1,2   # a longer, fairer final stage

Flags are defined when the command runs, not on import.
"""

from __future__ import annotations

import functools
import json
import sys
import time

from absl import app, flags

FLAGS = flags.FLAGS


def _define_flags() -> None:
    if "num_samples" in FLAGS:
        return
    d = flags
    d.DEFINE_string("run_dir", "runs/mnas_search", "Run directory (re-running resumes it).")
    d.DEFINE_bool("overwrite", False, "Delete an existing run in --run_dir first.")
    d.DEFINE_string("space", "mnasnet", "'mnasnet' (the paper's space around MobileNetV2), 'uib' / 'mobilenetv4' "
                    "(MobileNetV4's fine-stage UIB space around Conv-Small), 'nasnet' (NASNet's normal and "
                    "reduction cells), 'nasrl' (NAS-RL's macro space) or a .json space file.")
    d.DEFINE_bool("describe_space", False, "Print the search space and its size, then exit.")
    d.DEFINE_enum("controller", "ppo", ["ppo", "reinforce", "evolution", "random"], "Search controller.")
    d.DEFINE_string("controller_options", "{}", "JSON dict of controller options, e.g. '{\"lr\": 0.01}'.")
    d.DEFINE_integer("seed", 0, "Seed of the controller and of the proxy training.")
    d.DEFINE_integer("num_samples", 8, "Samples to draw (repeated architectures cost nothing).")
    d.DEFINE_integer("top_k", 3, "Best architectures to export besides the Pareto front.")
    d.DEFINE_enum("reward", "soft", ["soft", "hard", "mnasnet", "absolute"], "Reward function.")
    d.DEFINE_float("target_ms", None, "Target latency in ms (default: the reference network's, measured).")
    d.DEFINE_float("target_scale", 1.0, "Multiplies the reference latency when --target_ms is not given.")
    d.DEFINE_float("alpha", None, "Reward exponent when LAT <= T (default per reward kind).")
    d.DEFINE_float("beta", None, "Reward exponent when LAT > T, or the absolute reward's weight.")
    d.DEFINE_float("failure_reward", 0.0, "Reward recorded for a sample that fails.")
    d.DEFINE_enum("evaluator", "proxy", ["proxy", "synthetic"],
                  "'proxy': train and measure; 'synthetic': a known objective, no TensorFlow (dry runs).")
    d.DEFINE_integer("image_size", 32, "Proxy training resolution (digits are upsampled).")
    d.DEFINE_integer("latency_size", 224, "Resolution the TFLite latency is measured at (>= 32).", lower_bound=32)
    d.DEFINE_integer("epochs", 2, "Proxy training epochs per sample.")
    d.DEFINE_integer("batch_size", 64, "Proxy training batch size.")
    d.DEFINE_float("learning_rate", 2e-3, "Proxy training learning rate (Adam).")
    d.DEFINE_enum("train_mode", "auto", ["auto", "graph", "eager", "fit"], "How the proxy training runs.")
    d.DEFINE_integer("train_subset", None, "Use only this many training images (>= 1).", lower_bound=1)
    d.DEFINE_integer("val_subset", None, "Use only this many validation images (>= 1).", lower_bound=1)
    d.DEFINE_integer("num_threads", 1, "LiteRT threads for the latency measurement.")
    d.DEFINE_integer("runs", 50, "Timed LiteRT runs per sample (>= 1).", lower_bound=1)
    d.DEFINE_integer("warmup", 10, "Warm-up LiteRT runs per sample.")
    d.DEFINE_bool("isolate_latency", True, "Measure latency in a separate process pinned to one core.")
    d.DEFINE_bool("int8", False, "Also measure full-integer int8 latency.")
    d.DEFINE_enum("latency_objective", "fp32", ["fp32", "int8"], "Which latency the reward uses.")
    d.DEFINE_enum("latency_mode", "measured", ["measured", "predicted", "predicted_then_measured"],
                  "'measured': convert and time every sample; 'predicted': a latency lookup table; "
                  "'predicted_then_measured': the table, then the final Pareto front measured.")
    d.DEFINE_string("latency_table", None, "Latency table JSON for the table modes (built on demand if missing; "
                    "default <run_dir's parent>/latency_table_<size>px_<threads>t[_int8].json).")
    d.DEFINE_float("timeout_s", 600.0, "A sample whose training takes longer fails (reason 'timeout').")
    d.DEFINE_bool("tensorboard", True, "Write TensorBoard scalars to <run_dir>/tensorboard.")
    d.DEFINE_bool("export", True, "Export the top-k / Pareto models at the end.")
    d.DEFINE_integer("checkpoint_every", 1, "Samples between controller checkpoints.")
    d.DEFINE_enum("executor", "inline", ["inline", "pool", "ray", "local"],
                  "Where evaluations run: 'inline' (in process, one at a time; 'local' is its older name), "
                  "'pool' (local worker processes) or 'ray' (Ray actors; pip install mnas_keras[ray]).")
    d.DEFINE_integer("max_in_flight", None, "Evaluations running at once (pool: 2; ray: the cluster's CPUs).")
    d.DEFINE_integer("max_retries", 1, "Reruns of an evaluation whose worker died before it is recorded as failed.")
    d.DEFINE_string("ray_address", None, "Ray cluster to use ('auto', 'ray://host:10001'); default: start one here.")
    d.DEFINE_integer("ray_num_cpus", None, "CPUs of a Ray instance started here (default: all).")
    d.DEFINE_float("ray_cpus_per_worker", 1.0, "CPUs each Ray evaluation worker reserves.")
    d.DEFINE_string("latency_resource", None,
                    "Ray custom resource of the nodes that measure latency (e.g. 'latency_device'); "
                    "training runs on the other workers.")
    d.DEFINE_bool("ray_dashboard", False, "Start Ray's dashboard (bound to 127.0.0.1) with a local instance.")
    # issue 21: the proxy dataset and the final training stage (mnas_keras.search.run.final)
    d.DEFINE_enum("dataset", "digits", ["digits", "shapes_classification"],
                  "Proxy dataset: scikit-learn digits (upsampled) or generated shapes x textures (20 classes).")
    d.DEFINE_integer("final_epochs", 4, "Final training epochs of the finalists and the reference.", lower_bound=1)
    d.DEFINE_integer("final_top_k", 1, "Pareto-front architectures trained in the final stage (0 = no final stage).",
                     lower_bound=0)
    d.DEFINE_list("final_seeds", ["0"], "Seeds of the final training (every finalist and the reference, each seed).")


def _log(message: str) -> None:
    print(message, flush=True)


def _check_fixed_size_space(space, f) -> None:
    """``--space=nasnet|nasrl``: only measured latency, at the training resolution."""
    from mnas_keras.search.errors import SearchConfigError

    mode = getattr(f, "latency_mode", "measured")
    if mode != "measured":
        raise SearchConfigError(f"--space={space.name} has no latency-table parts: only measured latency applies; "
                                f"use --latency_mode=measured (received --latency_mode={mode})")
    given = f["latency_size"].present if hasattr(f, "__getitem__") and "latency_size" in f else False
    if given and f.latency_size != f.image_size:
        raise SearchConfigError(f"--space={space.name} builds networks at a fixed size: latency is measured at "
                                f"--image_size={f.image_size}; received --latency_size={f.latency_size}")


def build_search(values=None):
    """The :class:`~mnas_keras.search.run.search.Search` the flags describe."""
    from mnas_keras.search.errors import SearchConfigError
    from mnas_keras.search.run.search import Search
    from mnas_keras.search.spaces import get_space

    f = values or FLAGS
    space = get_space(f.space)
    fixed_size = getattr(space, "network", "mnasnet") != "mnasnet"  # NASNet cells, NAS-RL macro
    if fixed_size:
        _check_fixed_size_space(space, f)
    try:
        options = json.loads(f.controller_options)
    except json.JSONDecodeError as err:
        raise SearchConfigError(f"--controller_options must be a JSON object; {err}") from None
    if not isinstance(options, dict):
        raise SearchConfigError(f"--controller_options must be a JSON object; received {f.controller_options!r}")
    if f.evaluator == "synthetic":
        from mnas_keras.search.evaluation.synthetic import SyntheticEvaluator

        evaluator = SyntheticEvaluator(space, seed=f.seed, input_size=f.latency_size)
    else:
        from mnas_keras.search.evaluation.proxy import ProxyEvaluator

        if fixed_size:
            from mnas_keras.search.evaluation.networks import SpaceProxyEvaluator

            ProxyEvaluator = functools.partial(SpaceProxyEvaluator, space)  # noqa: N806
        table = None
        if getattr(f, "latency_mode", "measured") != "measured":
            from mnas_keras.search.latency.modes import default_table_path, prepare_table

            if f.int8:
                raise SearchConfigError(f"--latency_mode={f.latency_mode} predicts one latency (--latency_objective); "
                                        "--int8 (measure fp32 and int8) needs --latency_mode=measured")

            path = f.latency_table or default_table_path(f.run_dir, f.latency_size, f.num_threads,
                                                         f.latency_objective)
            table = prepare_table(path, space, input_size=f.latency_size, num_threads=f.num_threads,
                                  stem_filters=space.stem_filters, classes=10, objective=f.latency_objective,
                                  runs=f.runs, warmup=f.warmup,
                                  seed=f.seed, log=_log)
        data = None
        if getattr(f, "dataset", "digits") == "shapes_classification":
            from mnas_keras.training.data.shapes_classification import load_shapes_classification

            data = load_shapes_classification(size=f.image_size, num_train=2000, num_test=500, seed=0)
        evaluator = ProxyEvaluator(
            data=data, image_size=f.image_size, epochs=f.epochs, batch_size=f.batch_size, learning_rate=f.learning_rate,
            train_mode=f.train_mode, train_subset=f.train_subset, val_subset=f.val_subset,
            stem_filters=space.stem_filters, latency_input_size=f.image_size if fixed_size else f.latency_size, num_threads=f.num_threads,
            warmup=f.warmup, runs=f.runs, isolate_latency=f.isolate_latency, int8=f.int8,
            latency_objective=f.latency_objective, timeout_s=f.timeout_s, seed=f.seed,
            **({"latency_mode": f.latency_mode, "latency_table": table} if table is not None else {}),
        )
    executor = None
    name = getattr(f, "executor", "inline")
    if name not in ("inline", "local") or getattr(f, "max_in_flight", None) not in (None, 1) or getattr(f, "latency_resource", None):
        from mnas_keras.search.execution import make_executor

        executor = make_executor(name, max_in_flight=f.max_in_flight, max_retries=f.max_retries,
                                 ray_address=f.ray_address, latency_resource=f.latency_resource,
                                 cpus_per_worker=f.ray_cpus_per_worker, dashboard=f.ray_dashboard,
                                 num_cpus=f.ray_num_cpus)
    return Search(
        space, evaluator, f.run_dir, controller=f.controller, controller_options=options, seed=f.seed,
        reward=f.reward, target_ms=f.target_ms, target_scale=f.target_scale, alpha=f.alpha, beta=f.beta,
        num_samples=f.num_samples, top_k=f.top_k, failure_reward=f.failure_reward, tensorboard=f.tensorboard,
        checkpoint_every=f.checkpoint_every, export=f.export, log=_log, overwrite=f.overwrite, executor=executor,
    )


def main(argv) -> int:
    from mnas_keras.search.errors import SearchError

    from mnas_keras import _cli

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; every option is a --flag")
    try:
        if FLAGS.describe_space:
            from mnas_keras.search.spaces import get_space

            print(get_space(FLAGS.space).describe())
            return 0
        from mnas_keras.search.run.final import check_final_options, run_final

        final_options = check_final_options(FLAGS.final_epochs, FLAGS.final_top_k, FLAGS.final_seeds)
        if FLAGS.evaluator != "synthetic":
            _cli.import_tensorflow(sys.argv)  # without its start-up lines unless --verbosity
        search = build_search()
        started = time.perf_counter()
        result = search.run()
        search_s, final_s = time.perf_counter() - started, None
        final = None
        if FLAGS.evaluator == "proxy":
            started = time.perf_counter()
            final = run_final(search, result, epochs=final_options[0], top_k=final_options[1],
                              seeds=final_options[2], log=_log)
            final_s = time.perf_counter() - started if final else None
    except SearchError as err:
        print(f"mnas-search: error: {err}", file=sys.stderr)
        return 2
    files = {**result.files, **(final["files"] if final else {})}
    print(f"\nrun directory: {result.run_dir}")
    for name in ("pareto_json", "pareto_csv", "plot", "export", "final_json", "final_csv", "final_plot"):
        if name in files:
            print(f"  {name:<12} {files[name]}")
    from mnas_keras.search.run.final import time_profile

    print(time_profile(result.records, result.reference, search_s, (final or {}).get("timings"), final_s))
    if final:  # the summary ends with the fair comparison
        print("\nfinal training (test accuracy, mean over seeds; latency measured side by side):")
        print(final["table"])
        print(final["verdict"])
    return 0


def run() -> None:
    """Console-script entry point (``mnas-search``)."""
    from mnas_keras.search.cli.common import flags_parser

    from mnas_keras import _cli

    _cli.quiet_logs(sys.argv)  # TensorFlow's C++ log to errors, absl's to warnings (unless --verbosity)
    _define_flags()
    app.run(main, flags_parser=flags_parser("mnas-search"))


if __name__ == "__main__":
    run()
