"""Frozen dataclass configs of a search, in the package's one config style (:mod:`mnas_keras._config`).

A :class:`SearchConfig` nests one section per concern, cut along ``Search(...)``'s keyword
arguments and ``mnas-search``'s flags:

* ``controller`` (``--controller``, ``--controller_options``, ``--seed``), ``reward``
  (``--reward``, ``--target_ms``, ``--target_scale``, ``--alpha``, ``--beta``,
  ``--failure_reward``) and ``budget`` (``--num_samples``, ``--top_k``,
  ``--checkpoint_every``, ``--tensorboard``, ``--export``): what :class:`~mnas_keras.search.run.search.Search`
  uses and stores in the run's ``config.json``;
* ``space`` (``--space``), ``proxy`` (``--evaluator``, ``--dataset``, ``--image_size``,
  ``--epochs``, ...), ``latency`` (``--latency_size``, ``--num_threads``, ``--runs``,
  ``--latency_mode``, ...), ``execution`` (``--executor``, ``--max_in_flight``, ``--ray_*``)
  and ``final`` (``--final_epochs``, ``--final_top_k``, ``--final_seeds``): what
  ``mnas-search`` builds the space, the evaluator, the executor and the final stage from
  (the evaluator stores its own config beside the run's).

Each field says in its metadata whether it may change when a run resumes
(``mutable_on_resume``: budgets, output switches, where evaluations run); every other field
defines the run: :func:`resume_conflicts` names the ones that differ from a run directory's
stored config. Overrides are dotted keys (``mnas-search --overrides=reward.kind=absolute``).
No TensorFlow here.

Example:
    >>> cfg = override(SearchConfig(), ["reward.kind=absolute", "budget.num_samples=50",
    ...                                 'controller.options={"lr": 0.01}'])
    >>> cfg.reward.kind, cfg.budget.num_samples, cfg.controller.options
    ('absolute', 50, {'lr': 0.01})
    >>> from_dict(SearchConfig, to_dict(cfg)) == cfg
    True
    >>> stored = run_definition(SearchConfig())
    >>> [key for key, _, _ in resume_conflicts(stored, run_definition(cfg))]
    ['controller.options', 'reward.kind']
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from mnas_keras import _config
from mnas_keras._config import ConfigError, field, from_dict, from_json, override, to_dict, to_json  # noqa: F401
from mnas_keras.search.errors import SearchConfigError

CONTROLLER_NAMES = ("ppo", "reinforce", "evolution", "random")
REWARD_KINDS = ("soft", "hard", "mnasnet", "absolute")
EVALUATORS = ("proxy", "synthetic")
DATASETS = ("digits", "shapes_classification")
TRAIN_MODES = ("auto", "graph", "eager", "fit")
LATENCY_OBJECTIVES = ("fp32", "int8")
LATENCY_MODES = ("measured", "predicted", "predicted_then_measured")
EXECUTORS = ("inline", "pool", "ray", "local")


class SearchConfigFieldError(SearchConfigError, ConfigError):
    """A search config field holds a bad value (the message names its dotted key)."""


def _choice(key: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise SearchConfigFieldError(f"{key} must be one of {list(choices)}; received {value!r}")


def _at_least(key: str, value: Any, low: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SearchConfigFieldError(f"{key} must be an integer >= {low}; received {value!r}")


def _positive(key: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value == float("inf"):
        raise SearchConfigFieldError(f"{key} must be > 0; received {value!r}")


def _finite(key: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not abs(value) < float("inf"):
        raise SearchConfigFieldError(f"{key} must be a finite number; received {value!r}")


@dataclasses.dataclass(frozen=True)
class ControllerConfig:
    """The controller (fixed on resume).

    Attributes:
        name: ``"ppo"`` (MnasNet's LSTM + PPO), ``"reinforce"``, ``"evolution"`` or ``"random"``
            (:func:`~mnas_keras.search.controllers.make_controller` checks it).
        options: keyword arguments of the controller's constructor (a JSON object).
        seed: the controller's seed (``mnas-search``: also the proxy training's).
    """

    name: str = "ppo"
    options: dict = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self):
        if not isinstance(self.options, dict):
            raise SearchConfigFieldError(f"controller.options must be a JSON object; received {self.options!r}")


@dataclasses.dataclass(frozen=True)
class RewardConfig:
    """The reward (fixed on resume); see :class:`~mnas_keras.search.reward.Reward`.

    Attributes:
        kind: ``"soft"``, ``"hard"``, ``"mnasnet"`` or ``"absolute"``.
        target_ms: target latency in ms; ``None`` = the reference network's measured
            latency times ``target_scale``.
        target_scale: multiplies the reference latency when ``target_ms`` is None.
        alpha, beta: reward exponents (``None`` = the kind's defaults).
        failure_reward: the reward of a sample that failed.
        evaluate_reference: also evaluate the reference network (always when ``target_ms``
            is None).
    """

    kind: str = "soft"
    target_ms: float | None = None
    target_scale: float = 1.0
    alpha: float | None = None
    beta: float | None = None
    failure_reward: float = 0.0
    evaluate_reference: bool = True

    def __post_init__(self):
        _choice("reward.kind", self.kind, REWARD_KINDS)
        _positive("reward.target_ms", self.target_ms, allow_none=True)
        _positive("reward.target_scale", self.target_scale)
        _finite("reward.alpha", self.alpha, allow_none=True)
        _finite("reward.beta", self.beta, allow_none=True)
        _finite("reward.failure_reward", self.failure_reward)


@dataclasses.dataclass(frozen=True)
class BudgetConfig:
    """How long the search runs and what it writes (each may change on resume).

    Attributes:
        num_samples: samples to draw (repeated architectures cost nothing). ``Search``'s
            default; ``mnas-search``'s ``--num_samples`` defaults to 8.
        top_k: best architectures exported besides the Pareto front.
        checkpoint_every: samples between controller checkpoints (any value resumes exactly).
        tensorboard: write TensorBoard scalars into ``<run_dir>/tensorboard``.
        export: export the top-k / Pareto architectures at the end.
    """

    num_samples: int = field(20, mutable_on_resume=True)
    top_k: int = field(3, mutable_on_resume=True)
    checkpoint_every: int = field(1, mutable_on_resume=True)
    tensorboard: bool = field(True, mutable_on_resume=True)
    export: bool = field(True, mutable_on_resume=True)

    def __post_init__(self):
        _at_least("budget.num_samples", self.num_samples, 1)
        _at_least("budget.top_k", self.top_k, 0)
        _at_least("budget.checkpoint_every", self.checkpoint_every, 1)


@dataclasses.dataclass(frozen=True)
class SpaceConfig:
    """The search space (``mnas-search``).

    Attributes:
        name: ``"mnasnet"``, ``"uib"`` / ``"mobilenetv4"``, ``"nasnet"``, ``"nasrl"`` or a
            ``.json`` space file (see :func:`~mnas_keras.search.spaces.get_space`).
    """

    name: str = "mnasnet"


@dataclasses.dataclass(frozen=True)
class ProxyConfig:
    """The evaluator and its proxy training (``mnas-search``; the evaluator stores its config).

    Attributes:
        evaluator: ``"proxy"`` (train and measure) or ``"synthetic"`` (a known objective, no
            TensorFlow).
        dataset: ``"digits"`` (scikit-learn, upsampled) or ``"shapes_classification"``.
        image_size: proxy training resolution (px).
        epochs, batch_size, learning_rate: the proxy training (Adam).
        train_mode: ``"auto"``, ``"graph"``, ``"eager"`` or ``"fit"``.
        train_subset, val_subset: use only this many training / validation images.
        timeout_s: a sample whose training takes longer fails (reason ``"timeout"``).
    """

    evaluator: str = "proxy"
    dataset: str = "digits"
    image_size: int = 32
    epochs: int = 2
    batch_size: int = 64
    learning_rate: float = 2e-3
    train_mode: str = "auto"
    train_subset: int | None = None
    val_subset: int | None = None
    timeout_s: float = 600.0

    def __post_init__(self):
        _choice("proxy.evaluator", self.evaluator, EVALUATORS)
        _choice("proxy.dataset", self.dataset, DATASETS)
        _choice("proxy.train_mode", self.train_mode, TRAIN_MODES)
        for name in ("image_size", "epochs", "batch_size"):
            _at_least(f"proxy.{name}", getattr(self, name), 1)
        _at_least("proxy.train_subset", self.train_subset, 1, allow_none=True)
        _at_least("proxy.val_subset", self.val_subset, 1, allow_none=True)
        _positive("proxy.learning_rate", self.learning_rate)
        _positive("proxy.timeout_s", self.timeout_s)


@dataclasses.dataclass(frozen=True)
class LatencyConfig:
    """How latency is measured or predicted (``mnas-search``).

    Attributes:
        size: input side (px) the LiteRT latency is measured at; ``None``: 224 for block
            spaces, ``proxy.image_size`` for the fixed-size ones (``nasnet``, ``nasrl``).
        num_threads: LiteRT threads.
        runs, warmup: timed and warm-up LiteRT runs per sample.
        isolate: measure in a separate process pinned to one core.
        int8: also measure full-integer int8 latency.
        objective: which latency the reward uses, ``"fp32"`` or ``"int8"``.
        mode: ``"measured"``, ``"predicted"`` (a lookup table) or ``"predicted_then_measured"``.
        table: the latency table JSON of the table modes (``None``: beside the run directory).
    """

    size: int | None = None
    num_threads: int = 1
    runs: int = 50
    warmup: int = 10
    isolate: bool = True
    int8: bool = False
    objective: str = "fp32"
    mode: str = "measured"
    table: str | None = None

    def __post_init__(self):
        _at_least("latency.size", self.size, 32, allow_none=True)
        _at_least("latency.num_threads", self.num_threads, 1)
        _at_least("latency.runs", self.runs, 1)
        _at_least("latency.warmup", self.warmup, 0)
        _choice("latency.objective", self.objective, LATENCY_OBJECTIVES)
        _choice("latency.mode", self.mode, LATENCY_MODES)


@dataclasses.dataclass(frozen=True)
class ExecutionConfig:
    """Where evaluations run (each may change on resume).

    Attributes:
        executor: ``"inline"`` (in process; ``"local"`` is its older name), ``"pool"``
            (local worker processes) or ``"ray"``.
        max_in_flight: evaluations running at once (pool: 2; ray: the cluster's CPUs).
        max_retries: reruns of an evaluation whose worker died before it counts as failed.
        ray_address: Ray cluster to use (``"auto"``, ``"ray://host:10001"``); ``None`` starts one.
        ray_num_cpus: CPUs of a Ray instance started here (``None``: all).
        ray_cpus_per_worker: CPUs each Ray evaluation worker reserves.
        latency_resource: Ray custom resource of the nodes that measure latency.
        ray_dashboard: start Ray's dashboard (bound to 127.0.0.1) with a local instance.
    """

    executor: str = field("inline", mutable_on_resume=True)
    max_in_flight: int | None = field(None, mutable_on_resume=True)
    max_retries: int = field(1, mutable_on_resume=True)
    ray_address: str | None = field(None, mutable_on_resume=True)
    ray_num_cpus: int | None = field(None, mutable_on_resume=True)
    ray_cpus_per_worker: float = field(1.0, mutable_on_resume=True)
    latency_resource: str | None = field(None, mutable_on_resume=True)
    ray_dashboard: bool = field(False, mutable_on_resume=True)

    def __post_init__(self):
        _choice("execution.executor", self.executor, EXECUTORS)
        _at_least("execution.max_retries", self.max_retries, 0)
        _at_least("execution.max_in_flight", self.max_in_flight, 1, allow_none=True)
        _at_least("execution.ray_num_cpus", self.ray_num_cpus, 1, allow_none=True)
        _positive("execution.ray_cpus_per_worker", self.ray_cpus_per_worker)


@dataclasses.dataclass(frozen=True)
class FinalConfig:
    """The final training stage after the search (:mod:`mnas_keras.search.run.final`).

    Attributes:
        epochs: training epochs of the finalists and the reference.
        top_k: Pareto-front architectures trained (0: no final stage).
        seeds: training seeds (every finalist and the reference, each seed).
    """

    epochs: int = field(4, mutable_on_resume=True)
    top_k: int = field(1, mutable_on_resume=True)
    seeds: tuple = field((0,), mutable_on_resume=True)


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """Everything one search needs; see the module docstring for the sections.

    Attributes:
        run_dir: the run directory (re-running resumes it).
        overwrite: delete an existing run in ``run_dir`` first.
    """

    run_dir: str = field("runs/mnas_search", mutable_on_resume=True)
    overwrite: bool = field(False, mutable_on_resume=True)
    space: SpaceConfig = field(default_factory=SpaceConfig)
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    final: FinalConfig = field(default_factory=FinalConfig)


#: The sections ``Search`` stores in ``config.json`` (beside ``space`` and ``evaluator``).
RUN_SECTIONS = ("controller", "reward", "budget")
#: What a run stores besides its config sections; fixed on resume.
_STORED_OBJECTS = ("space", "evaluator")


def run_definition(config: SearchConfig, space: Mapping | None = None, evaluator: Mapping | None = None) -> dict:
    """What a search stores in ``config.json``: the run sections of ``config`` plus the
    space's and the evaluator's own configs (JSON-ready)."""
    out = {name: to_dict(getattr(config, name)) for name in RUN_SECTIONS}
    out["space"], out["evaluator"] = space, evaluator
    return out


def from_legacy(stored: Mapping) -> dict:
    """A ``config.json`` of the release before these configs (flat keys: ``"controller":
    "ppo"``, ``"controller_options"``, ``"num_samples"``...) in :func:`run_definition`'s layout;
    a current one is returned unchanged."""
    if not isinstance(stored.get("controller"), str):
        return dict(stored)
    reward = dict(stored.get("reward") or {})
    reward.update(failure_reward=stored.get("failure_reward"), evaluate_reference=stored.get("evaluate_reference"))
    return {
        "space": stored.get("space"),
        "evaluator": stored.get("evaluator"),
        "controller": {"name": stored["controller"], "options": stored.get("controller_options"),
                       "seed": stored.get("seed")},
        "reward": reward,
        "budget": {k: stored.get(k) for k in ("num_samples", "top_k", "checkpoint_every", "tensorboard", "export")},
    }


def resume_conflicts(stored: Mapping, current: Mapping) -> list[tuple[str, Any, Any]]:
    """The fields that differ between a stored run definition (either layout) and the
    current one and may not change on resume.

    Returns:
        ``(dotted key, stored value, current value)`` tuples, sorted by key.
    """
    stored = from_legacy(stored)
    keys = [k for k in _STORED_OBJECTS if stored.get(k) != current.get(k)]
    rest = {k: v for k, v in stored.items() if k not in _STORED_OBJECTS}
    keys += _config.resume_conflicts(SearchConfig, rest, {k: v for k, v in current.items() if k not in _STORED_OBJECTS})
    return [(key, _lookup(stored, key), _lookup(current, key)) for key in sorted(keys)]


def _lookup(data: Mapping, key: str) -> Any:
    for part in key.split("."):
        data = data.get(part) if isinstance(data, Mapping) else None
    return data
