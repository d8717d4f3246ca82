"""A search: configuration, validation, run directory and outputs around the search loop.

:class:`Search` holds what defines a run (checked on resume against ``config.json``), runs
:class:`~mnas_keras.search.run.loop.SearchLoop` (controller -> space -> evaluator -> reward,
journaled and resumable) on an executor (in process by default) and writes the outputs:
the Pareto table and plot, the top-k and the export. It imports no TensorFlow; the
evaluator does the heavy work: any object with ``evaluate(blocks, artifact_dir=None)``
(:class:`~mnas_keras.search.evaluation.base.Evaluator` lists it and the optional
``config``, ``saves_artifacts``, ``export`` and ``finalize``).

Resuming: re-running the same search on the same directory restores the controller from its
checkpoint and the journal after it (:mod:`mnas_keras.search.run.loop`). A step that was being
evaluated when the process died is evaluated again; a finished one never is.

Example:
    >>> import tempfile
    >>> from mnas_keras.search.space import mnasnet_space
    >>> from mnas_keras.search.evaluation.synthetic import SyntheticEvaluator
    >>> space = mnasnet_space()
    >>> search = Search(space, SyntheticEvaluator(space), tempfile.mkdtemp(), controller="reinforce",
    ...                 num_samples=8, tensorboard=False, export=False, log=None)
    >>> result = search.run()
    >>> len(result.records) <= 8, result.best["reward"] >= result.records[0]["reward"]
    (True, True)
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from typing import Any, Callable

from mnas_keras.search.config import SearchConfig, resume_conflicts, run_definition
from mnas_keras.search.controllers import Controller, make_controller
from mnas_keras.search.errors import SearchConfigError
from mnas_keras.search.execution import Executor
from mnas_keras.search.run.journal import RunDirectory, atomic_write_json
from mnas_keras.search.pareto import (
    distinct_records,
    format_front,
    kept_records,
    pareto_front,
    plot_search,
    top_k,
    write_table,
)
from mnas_keras.search.reward import Reward
from mnas_keras.search.space import SearchSpace
from mnas_keras.search.spaces import Space


@dataclasses.dataclass
class SearchResult:
    """What a finished search produced.

    Attributes:
        records: the first result of every distinct sampled architecture, in step order.
        front: the accuracy/latency Pareto front (by latency).
        top: the ``top_k`` records by reward.
        best: the best record by reward (``None`` if every sample failed).
        target_ms: the target latency the reward used.
        reference: the reference network's record, if it was evaluated.
        run_dir: the run directory.
        files: output paths (``pareto_json``, ``pareto_csv``, ``plot``, ``export``...).
    """

    records: list
    front: list
    top: list
    best: dict | None
    target_ms: float
    reference: dict | None
    run_dir: str
    files: dict


_UNSET: Any = object()  # a keyword argument not given: the config's value holds

#: ``Search`` keyword argument -> its dotted :class:`SearchConfig` key.
_KEYWORDS = {
    "controller_options": "controller.options", "seed": "controller.seed", "reward": "reward.kind",
    "target_ms": "reward.target_ms", "target_scale": "reward.target_scale", "alpha": "reward.alpha",
    "beta": "reward.beta", "failure_reward": "reward.failure_reward",
    "evaluate_reference": "reward.evaluate_reference", "num_samples": "budget.num_samples",
    "top_k": "budget.top_k", "checkpoint_every": "budget.checkpoint_every",
    "tensorboard": "budget.tensorboard", "export": "budget.export", "overwrite": "overwrite",
}


def _replace(config, key: str, value):
    head, _, rest = key.partition(".")
    if not rest:
        return dataclasses.replace(config, **{head: value})
    return dataclasses.replace(config, **{head: _replace(getattr(config, head), rest, value)})


class Search:
    """A resumable platform-aware architecture search.

    What defines the run is a :class:`~mnas_keras.search.config.SearchConfig` (its
    ``controller``, ``reward`` and ``budget`` sections; the other sections are
    ``mnas-search``'s). The keyword arguments below set single fields of it (over
    ``config``, or over ``SearchConfig()``'s defaults, which are the defaults named here).

    Args:
        space: the :class:`SearchSpace`.
        evaluator: see the module docstring (``ProxyEvaluator`` trains and measures).
        run_dir: the run directory (created, or resumed if it holds the same run);
            ``None`` takes ``config.run_dir``.
        config: a :class:`~mnas_keras.search.config.SearchConfig`.
        controller: ``"ppo"`` (MnasNet's LSTM + PPO), ``"reinforce"``, ``"evolution"``,
            ``"random"``, or a :class:`Controller` instance (``controller.name``).
        controller_options: options for the controller's constructor (``controller.options``).
        seed: the controller's seed (``controller.seed``, default 0).
        reward: ``"soft"`` (default), ``"hard"``, ``"mnasnet"`` or ``"absolute"`` (``reward.kind``).
        target_ms: target latency; ``None`` (default) = the reference network's measured
            latency times ``target_scale`` (default 1; the paper set T near MobileNetV2's latency).
        alpha, beta: reward exponents (``None`` = the kind's defaults).
        num_samples: the budget of samples (default 20; repeated architectures cost nothing).
        top_k: how many of the best architectures to export besides the Pareto front (default 3).
        failure_reward: the reward of a sample that failed (and what it is recorded with; 0).
        evaluate_reference: also evaluate the reference network (default True; always when
            ``target_ms`` is None); it is plotted as a star.
        tensorboard: write TensorBoard scalars into ``run_dir/tensorboard`` (default True).
        checkpoint_every: steps between controller checkpoints (default 1; any value resumes exactly).
        export: export the top-k / Pareto architectures at the end (default True).
        log: a ``print``-like callable for the progress lines, or None.
        overwrite: delete an existing run in ``run_dir`` first (default False).
        executor: None evaluates in this process, one sample at a time; an
            :class:`~mnas_keras.search.execution.Executor` (a process pool, Ray) keeps
            several evaluations in flight (:mod:`mnas_keras.search.run.loop`).

    Raises:
        SearchConfigError: a bad option, naming it.
    """

    def __init__(self, space: SearchSpace, evaluator, run_dir: str | None = None, config: SearchConfig | None = None,
                 *, controller: str | Controller = _UNSET, controller_options: dict | None = _UNSET, seed: int = _UNSET,
                 reward: str = _UNSET, target_ms: float | None = _UNSET, target_scale: float = _UNSET,
                 alpha: float | None = _UNSET, beta: float | None = _UNSET, num_samples: int = _UNSET,
                 top_k: int = _UNSET, failure_reward: float = _UNSET, evaluate_reference: bool = _UNSET,
                 tensorboard: bool = _UNSET, checkpoint_every: int = _UNSET, export: bool = _UNSET,
                 log: Callable[[str], Any] | None = print, overwrite: bool = _UNSET,
                 executor: Executor | None = None):
        if not isinstance(space, (SearchSpace, Space)):  # Space: the protocol of mnas_keras.search.spaces
            raise SearchConfigError(f"space must be a SearchSpace or a Space; received {type(space).__name__}")
        if not hasattr(evaluator, "evaluate"):
            raise SearchConfigError("evaluator must have an evaluate(blocks, artifact_dir=None) method")
        if config is None:
            config = SearchConfig()
        elif not isinstance(config, SearchConfig):
            raise SearchConfigError(f"config must be a SearchConfig; received {type(config).__name__}")
        given = dict(controller_options=controller_options, seed=seed, reward=reward, target_ms=target_ms,
                     target_scale=target_scale, alpha=alpha, beta=beta, num_samples=num_samples, top_k=top_k,
                     failure_reward=failure_reward, evaluate_reference=evaluate_reference, tensorboard=tensorboard,
                     checkpoint_every=checkpoint_every, export=export, overwrite=overwrite)
        if controller_options is None:
            given["controller_options"] = {}
        instance = controller if isinstance(controller, Controller) else None
        if instance is not None:
            given.update(controller_options=instance.config(), seed=instance.seed)
        elif controller is not _UNSET:
            given["controller"] = controller
        try:
            for name, value in given.items():
                if value is not _UNSET:
                    config = _replace(config, _KEYWORDS.get(name, "controller.name"), value)
            if instance is not None:
                config = _replace(config, "controller.name", instance.name)
        except SearchConfigError:
            raise
        except (TypeError, ValueError) as err:
            raise SearchConfigError(str(err)) from None
        budget, rewards = config.budget, config.reward
        Reward(rewards.kind, target_ms=rewards.target_ms or 1.0, alpha=rewards.alpha, beta=rewards.beta)  # validates
        if instance is not None:
            if instance.num_choices != space.num_choices:
                raise SearchConfigError("the controller's decisions do not match the space's")
        else:
            make_controller(config.controller.name, space.num_choices, seed=config.controller.seed,
                            **config.controller.options)  # validates
        if not rewards.evaluate_reference and rewards.target_ms is None:
            config = _replace(config, "reward.evaluate_reference", True)
        if run_dir is not None:
            config = dataclasses.replace(config, run_dir=os.fspath(run_dir))
        #: The resolved :class:`~mnas_keras.search.config.SearchConfig`.
        self.search_config = config
        self.space = space
        self.evaluator = evaluator
        self.run_dir = RunDirectory(config.run_dir)
        self.controller_name = config.controller.name
        self.controller_options = dict(config.controller.options)
        self.controller_instance = instance
        self.seed = config.controller.seed
        self.reward_kind, self.alpha, self.beta = rewards.kind, rewards.alpha, rewards.beta
        self.target_ms, self.target_scale = rewards.target_ms, float(rewards.target_scale)
        self.num_samples, self.top_k = budget.num_samples, budget.top_k
        self.failure_reward = float(rewards.failure_reward)
        self.evaluate_reference = config.reward.evaluate_reference
        self.tensorboard, self.checkpoint_every, self.export = budget.tensorboard, budget.checkpoint_every, budget.export
        self.log = log or (lambda *_: None)
        self.overwrite = config.overwrite
        if executor is not None and not isinstance(executor, Executor):
            raise SearchConfigError(f"executor must be an Executor or None; received {type(executor).__name__}")
        self.executor = executor

    # ------------------------------------------------------------------ config
    def config(self) -> dict:
        """The run's definition, stored in ``config.json`` and checked on resume: the
        ``controller``, ``reward`` and ``budget`` sections of :attr:`search_config` with the
        space's and the evaluator's configs (:func:`~mnas_keras.search.config.run_definition`)."""
        evaluator_config = self.evaluator.config() if hasattr(self.evaluator, "config") else {
            "type": type(self.evaluator).__name__}
        return run_definition(self.search_config, self.space.to_dict(), evaluator_config)

    # --------------------------------------------------------------------- run
    def run(self) -> SearchResult:
        """Runs (or resumes) the search up to ``num_samples`` and writes the outputs."""
        from mnas_keras.search.execution import InlineExecutor
        from mnas_keras.search.run.loop import SearchLoop

        executor = self.executor or InlineExecutor()
        resumed = self.run_dir.prepare(self.config(), overwrite=self.overwrite, conflicts=resume_conflicts)
        try:
            executor.start(self.evaluator)
            try:
                results, reference, target_ms = SearchLoop(self, executor).run(resumed)
            finally:
                executor.close()
            return self._finish(results, reference, target_ms)
        finally:
            self.run_dir.close()

    # ----------------------------------------------------------------- outputs
    def _reward(self, record: dict, reward_fn: Reward) -> float:
        if record["status"] != "ok":
            return self.failure_reward
        return reward_fn(record["accuracy"], record["latency_ms"])

    def _finish(self, results: dict, reference: dict | None, target_ms: float) -> SearchResult:
        records = distinct_records(results)
        finalize = getattr(self.evaluator, "finalize", None)  # optional (see evaluation.base.Evaluator)
        if finalize is not None:
            reward_fn = Reward(self.reward_kind, target_ms=target_ms, alpha=self.alpha, beta=self.beta)
            finalize(records, self.run_dir.journal, lambda record: self._reward(record, reward_fn), log=self.log)
        front = pareto_front(records)
        top = top_k(records, self.top_k)
        best = top[0] if top else None
        files = {
            "pareto_json": os.path.join(self.run_dir.path, "pareto.json"),
            "pareto_csv": os.path.join(self.run_dir.path, "pareto.csv"),
            "plot": os.path.join(self.run_dir.path, "pareto.png"),
            "journal": self.run_dir.journal_path,
        }
        extra = {"target_ms": target_ms, "reward": self.reward_kind, "num_samples": self.num_samples,
                 "distinct_evaluations": len(records),
                 "failed": sum(r["status"] != "ok" for r in records)}
        write_table(front, files["pareto_json"], files["pareto_csv"], extra=extra)
        try:
            plot_search(records, front, files["plot"], target_ms=target_ms, reference=reference,
                        title=f"{self.space.name} search: {len(records)} architectures")
        except ImportError as err:  # matplotlib missing: everything else still works
            self.log(f"no plot ({err}); pip install matplotlib")
            files.pop("plot")
        if front:
            self.log("Pareto front (accuracy vs latency):\n" + format_front(front))
        if best is not None:
            self.log(f"best reward {best['reward']:.4f}: accuracy {best['accuracy']:.4f}, "
                     f"latency {best['latency_ms']:.4f} ms (target {target_ms:.4f} ms)\n  " + "\n  ".join(best["blocks"]))
        if self.export and records:
            files["export"] = self._export(kept_records(records, self.top_k), front, best, target_ms)
        return SearchResult(records=records, front=front, top=top, best=best, target_ms=target_ms,
                            reference=reference, run_dir=self.run_dir.path, files=files)

    def _export(self, chosen: list[dict], front: list[dict], best: dict | None, target_ms: float) -> str:
        folder = self.run_dir.export_path
        if os.path.isdir(folder):
            shutil.rmtree(folder)
        os.makedirs(folder)
        front_keys = {r["key"] for r in front}
        top_keys = {r["key"] for r in top_k(chosen, self.top_k)}
        entries = []
        for rank, record in enumerate(chosen, start=1):
            artifact_dir = self.run_dir.artifact_dir(record["arch_id"])  # checks the id: it becomes a folder name
            name = f"{rank:02d}_{record['arch_id']}"
            entry_dir = os.path.join(folder, name)
            os.makedirs(entry_dir)
            info = {k: record.get(k) for k in ("arch_id", "blocks", "reward", "accuracy", "latency_ms", "step",
                                                "params", "madds")}
            info.update(rank=rank, pareto=record["key"] in front_keys, top_k=record["key"] in top_keys,
                        target_ms=target_ms, stem_filters=self.space.stem_filters)
            atomic_write_json(os.path.join(entry_dir, "blocks.json"), info, indent=2)
            entries.append({"name": name, "dir": entry_dir, "record": record, "info": info,
                            "artifact_dir": artifact_dir})
        report = {}
        if hasattr(self.evaluator, "export"):
            report = self.evaluator.export(entries, folder) or {}
        index = {"target_ms": target_ms, "best": entries[0]["name"] if entries else None,
                 "models": [{**e["info"], "name": e["name"], **report.get(e["name"], {})} for e in entries]}
        atomic_write_json(os.path.join(folder, "index.json"), index, indent=2)
        if best is not None:
            atomic_write_json(os.path.join(folder, "best_blocks.json"), best["blocks"], indent=2)
        self.log(f"exported {len(entries)} architectures to {folder}")
        return folder


def load_records(run_dir: str) -> list[dict]:
    """The distinct evaluations journaled in a run directory (step order)."""
    path = RunDirectory(run_dir).journal_path
    if not os.path.exists(path):
        raise SearchConfigError(f"no journal in {run_dir}")
    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [r for r in records if r.get("event") == "result" and not r.get("cached")]
