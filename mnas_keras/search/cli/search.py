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

Every flag maps onto a :class:`~mnas_keras.search.config.SearchConfig` field
(:func:`config_from_flags`); ``--overrides`` then sets dotted keys of it (repeatable) and
``--print_config`` prints the resolved config as JSON and exits::

    mnas-search --evaluator=synthetic --overrides=reward.kind=absolute --overrides=budget.num_samples=50
    mnas-search --print_config --overrides=latency.runs=20

Flags are defined when the command runs, not on import.
"""

from __future__ import annotations

import functools
import json
import sys
import time
import types

from absl import app, flags

FLAGS = flags.FLAGS


def _define_flags(flag_values: flags.FlagValues | None = None) -> None:
    """Defines ``mnas-search``'s flags in ``flag_values`` (absl's global ``FLAGS`` by default)."""
    fv = FLAGS if flag_values is None else flag_values
    if "num_samples" in fv:
        return
    d = types.SimpleNamespace(**{name: functools.partial(getattr(flags, name), flag_values=fv)
                                 for name in dir(flags) if name.startswith("DEFINE_")})
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
    # issue 17: the flags above map onto a SearchConfig (mnas_keras.search.config); these change it
    d.DEFINE_multi_string("overrides", [], "Dotted SearchConfig overrides applied after the flags, e.g. "
                          "--overrides=reward.kind=absolute --overrides=latency.runs=20 (repeatable).")
    d.DEFINE_bool("print_config", False, "Print the resolved SearchConfig as JSON and exit.")


def _log(message: str) -> None:
    print(message, flush=True)


def _given(f, name: str) -> bool:
    """Whether the flag ``name`` was given (an object without flag records: always)."""
    try:
        return bool(f[name].present) if name in f else True
    except TypeError:  # not absl's FlagValues (e.g. mnas-ablation's namespace of values)
        return True


def config_from_flags(values=None):
    """The :class:`~mnas_keras.search.config.SearchConfig` the flags describe (before
    ``--overrides``).

    Args:
        values: ``absl.flags.FLAGS`` (default) or any object with the flags as attributes.

    Raises:
        SearchConfigError: a bad ``--controller_options`` or ``--final_*`` value, naming the flag.
    """
    import mnas_keras.search.config as C
    from mnas_keras.search.errors import SearchConfigError
    from mnas_keras.search.run.final import check_final_options

    f = values or FLAGS

    def get(name, default):
        return getattr(f, name, default)

    try:
        options = json.loads(f.controller_options)
    except json.JSONDecodeError as err:
        raise SearchConfigError(f"--controller_options must be a JSON object; {err}") from None
    if not isinstance(options, dict):
        raise SearchConfigError(f"--controller_options must be a JSON object; received {f.controller_options!r}")
    final_epochs, final_top_k, final_seeds = check_final_options(
        get("final_epochs", 4), get("final_top_k", 1), get("final_seeds", ["0"]))
    return C.SearchConfig(
        run_dir=f.run_dir, overwrite=bool(get("overwrite", False)),
        space=C.SpaceConfig(name=f.space),
        controller=C.ControllerConfig(name=f.controller, options=options, seed=f.seed),
        reward=C.RewardConfig(kind=f.reward, target_ms=f.target_ms, target_scale=f.target_scale, alpha=f.alpha,
                              beta=f.beta, failure_reward=f.failure_reward),
        budget=C.BudgetConfig(num_samples=f.num_samples, top_k=f.top_k, checkpoint_every=f.checkpoint_every,
                              tensorboard=f.tensorboard, export=f.export),
        proxy=C.ProxyConfig(evaluator=f.evaluator, dataset=get("dataset", "digits"), image_size=f.image_size,
                            epochs=f.epochs, batch_size=f.batch_size, learning_rate=f.learning_rate,
                            train_mode=f.train_mode, train_subset=f.train_subset, val_subset=f.val_subset,
                            timeout_s=f.timeout_s),
        latency=C.LatencyConfig(size=f.latency_size if _given(f, "latency_size") else None,
                                num_threads=f.num_threads, runs=f.runs, warmup=f.warmup, isolate=f.isolate_latency,
                                int8=f.int8, objective=f.latency_objective, mode=get("latency_mode", "measured"),
                                table=get("latency_table", None)),
        execution=C.ExecutionConfig(
            executor=get("executor", "inline"), max_in_flight=get("max_in_flight", None),
            max_retries=get("max_retries", 1), ray_address=get("ray_address", None),
            ray_num_cpus=get("ray_num_cpus", None), ray_cpus_per_worker=get("ray_cpus_per_worker", 1.0),
            latency_resource=get("latency_resource", None), ray_dashboard=get("ray_dashboard", False)),
        final=C.FinalConfig(epochs=final_epochs, top_k=final_top_k, seeds=final_seeds),
    )


def _check_fixed_size_space(space, config) -> None:
    """``--space=nasnet|nasrl``: only measured latency, at the training resolution."""
    from mnas_keras.search.errors import SearchConfigError

    mode = config.latency.mode
    if mode != "measured":
        raise SearchConfigError(f"--space={space.name} has no latency-table parts: only measured latency applies; "
                                f"use --latency_mode=measured (received --latency_mode={mode})")
    size, image_size = config.latency.size, config.proxy.image_size
    if size is not None and size != image_size:
        raise SearchConfigError(f"--space={space.name} builds networks at a fixed size: latency is measured at "
                                f"--image_size={image_size}; received --latency_size={size}")


def build_search(values=None):
    """The :class:`~mnas_keras.search.run.search.Search` a :class:`~mnas_keras.search.config.SearchConfig`
    describes (``values``), or the flags (``absl.flags.FLAGS`` by default, or an object with
    the flags as attributes)."""
    from mnas_keras.search.config import SearchConfig
    from mnas_keras.search.errors import SearchConfigError
    from mnas_keras.search.run.search import Search
    from mnas_keras.search.spaces import get_space

    config = values if isinstance(values, SearchConfig) else config_from_flags(values)
    proxy, latency = config.proxy, config.latency
    space = get_space(config.space.name)
    fixed_size = getattr(space, "network", "mnasnet") != "mnasnet"  # NASNet cells, NAS-RL macro
    if fixed_size:
        _check_fixed_size_space(space, config)
    latency_size = latency.size or (proxy.image_size if fixed_size else 224)
    seed = config.controller.seed
    if proxy.evaluator == "synthetic":
        from mnas_keras.search.evaluation.synthetic import SyntheticEvaluator

        evaluator = SyntheticEvaluator(space, seed=seed, input_size=latency.size or 224)  # as --latency_size did
    else:
        from mnas_keras.search.evaluation.proxy import ProxyEvaluator

        if fixed_size:
            from mnas_keras.search.evaluation.networks import SpaceProxyEvaluator

            ProxyEvaluator = functools.partial(SpaceProxyEvaluator, space)  # noqa: N806
        table = None
        if latency.mode != "measured":
            from mnas_keras.search.latency.modes import default_table_path, prepare_table

            if latency.int8:
                raise SearchConfigError(f"--latency_mode={latency.mode} predicts one latency (--latency_objective); "
                                        "--int8 (measure fp32 and int8) needs --latency_mode=measured")

            path = latency.table or default_table_path(config.run_dir, latency_size, latency.num_threads,
                                                       latency.objective)
            table = prepare_table(path, space, input_size=latency_size, num_threads=latency.num_threads,
                                  stem_filters=space.stem_filters, classes=10, objective=latency.objective,
                                  runs=latency.runs, warmup=latency.warmup,
                                  seed=seed, log=_log)
        data = None
        if proxy.dataset == "shapes_classification":
            from mnas_keras.training.data.shapes_classification import load_shapes_classification

            data = load_shapes_classification(size=proxy.image_size, num_train=2000, num_test=500, seed=0)
        evaluator = ProxyEvaluator(
            data=data, image_size=proxy.image_size, epochs=proxy.epochs, batch_size=proxy.batch_size,
            learning_rate=proxy.learning_rate, train_mode=proxy.train_mode, train_subset=proxy.train_subset,
            val_subset=proxy.val_subset, stem_filters=space.stem_filters, latency_input_size=latency_size,
            num_threads=latency.num_threads, warmup=latency.warmup, runs=latency.runs,
            isolate_latency=latency.isolate, int8=latency.int8, latency_objective=latency.objective,
            timeout_s=proxy.timeout_s, seed=seed,
            **({"latency_mode": latency.mode, "latency_table": table} if table is not None else {}),
        )
    executor = None
    run = config.execution
    ray_options = (run.ray_address, run.ray_dashboard, run.ray_num_cpus, run.ray_cpus_per_worker != 1.0)
    if run.executor not in ("inline", "local") or run.max_in_flight not in (None, 1) or run.latency_resource \
            or any(ray_options):  # make_executor refuses what the executor would ignore
        from mnas_keras.search.execution import make_executor

        executor = make_executor(run.executor, max_in_flight=run.max_in_flight, max_retries=run.max_retries,
                                 ray_address=run.ray_address, latency_resource=run.latency_resource,
                                 cpus_per_worker=run.ray_cpus_per_worker, dashboard=run.ray_dashboard,
                                 num_cpus=run.ray_num_cpus)
    return Search(space, evaluator, config=config, log=_log, executor=executor)


def main(argv) -> int:
    from mnas_keras._config import ConfigError, override, to_json
    from mnas_keras.search.errors import SearchConfigError, SearchError

    from mnas_keras import _cli

    if len(argv) > 1:  # one line and exit 2 (absl's UsageError printed its usage text and exited 1)
        print(f"mnas-search: error: unexpected arguments {argv[1:]}; every option is a --flag", file=sys.stderr)
        return 2
    try:
        config = override(config_from_flags(FLAGS), FLAGS.overrides)
        if FLAGS.print_config:
            print(to_json(config))
            return 0
        if FLAGS.describe_space:
            from mnas_keras.search.spaces import get_space

            print(get_space(config.space.name).describe())
            return 0
        from mnas_keras.search.run.final import check_final_options, run_final

        final_options = check_final_options(config.final.epochs, config.final.top_k, list(config.final.seeds))
        if config.latency.table is not None and config.latency.mode == "measured":  # it would be ignored
            raise SearchConfigError(f"--latency_table={config.latency.table} is read by the table modes only; add "
                                    "--latency_mode=predicted or --latency_mode=predicted_then_measured (received "
                                    "--latency_mode=measured)")
        if config.proxy.evaluator != "synthetic":
            _cli.import_tensorflow(sys.argv)  # without its start-up lines unless --verbosity
        search = build_search(config)
        started = time.perf_counter()
        result = search.run()
        search_s, final_s = time.perf_counter() - started, None
        final = None
        if config.proxy.evaluator == "proxy":
            started = time.perf_counter()
            final = run_final(search, result, epochs=final_options[0], top_k=final_options[1],
                              seeds=final_options[2], log=_log)
            final_s = time.perf_counter() - started if final else None
    except (SearchError, ConfigError) as err:
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
    # guard: any other bad input (a dataset's DataError, an unreadable file) is one line too
    app.run(lambda argv: _cli.stop_on_interrupt("mnas-search", _cli.guard, "mnas-search", main, argv),
            flags_parser=flags_parser("mnas-search"))


if __name__ == "__main__":
    run()
