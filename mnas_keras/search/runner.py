"""The search loop: controller -> space -> evaluator -> reward, journaled and resumable.

:class:`Search` imports no TensorFlow; the evaluator does the heavy work. An evaluator is
any object with ``evaluate(blocks, artifact_dir=None) -> dict`` returning ``status``
(``"ok"`` or ``"failed"``), ``accuracy``, ``latency_ms`` and, for failures, ``reason``; it
may also offer ``config()`` (stored in ``config.json``), ``saves_artifacts`` (True when it
writes ``model.keras``/``model.tflite`` into ``artifact_dir``) and ``export(entries,
folder)`` (models and a latency report for the exported architectures).

Resuming: re-running the same search on the same directory loads the controller
checkpoint and walks forward from it. A step whose result is already in the journal is not
evaluated again: its journaled reward is told to the controller (which, being seeded and
restored exactly, proposes the same architecture). A step that was being evaluated when the
process died is evaluated again; a finished one never is.

Example:
    >>> import tempfile
    >>> from mnas_keras.search.space import mnasnet_space
    >>> from mnas_keras.search.synthetic import SyntheticEvaluator
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
import math
import os
import shutil
import time
from typing import Any, Callable

from mnas_keras.search.controllers import Controller, controller_from_state, make_controller
from mnas_keras.search.errors import SearchConfigError
from mnas_keras.search.executors import Executor, call_evaluator
from mnas_keras.search.journal import RunDirectory, atomic_write_json
from mnas_keras.search.report import format_front, pareto_front, plot_search, top_k, write_table
from mnas_keras.search.reward import Reward
from mnas_keras.search.space import SearchSpace, arch_id, arch_key


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


class Search:
    """A resumable platform-aware architecture search.

    Args:
        space: the :class:`SearchSpace`.
        evaluator: see the module docstring (``ProxyEvaluator`` trains and measures).
        run_dir: the run directory (created, or resumed if it holds the same run).
        controller: ``"ppo"`` (MnasNet's LSTM + PPO), ``"reinforce"``, ``"evolution"``,
            ``"random"``, or a :class:`Controller` instance.
        controller_options: options for the controller's constructor.
        seed: the controller's seed.
        reward: ``"soft"``, ``"hard"``, ``"mnasnet"`` or ``"absolute"``.
        target_ms: target latency; ``None`` = the reference network's measured latency
            times ``target_scale`` (the paper set T near MobileNetV2's latency).
        alpha, beta: reward exponents (``None`` = the kind's defaults).
        num_samples: the budget of samples (repeated architectures cost nothing).
        top_k: how many of the best architectures to export besides the Pareto front.
        failure_reward: the reward of a sample that failed (and what it is recorded with).
        evaluate_reference: also evaluate the reference network (always when ``target_ms``
            is None); it is plotted as a star.
        tensorboard: write TensorBoard scalars into ``run_dir/tensorboard``.
        checkpoint_every: steps between controller checkpoints (any value resumes exactly).
        export: export the top-k / Pareto architectures at the end.
        log: a ``print``-like callable for the progress lines, or None.
        overwrite: delete an existing run in ``run_dir`` first.
        executor: None evaluates in this process, one sample at a time; an
            :class:`~mnas_keras.search.executors.Executor` (a process pool, Ray) keeps
            several evaluations in flight (:mod:`mnas_keras.search.parallel`).
    """

    def __init__(self, space: SearchSpace, evaluator, run_dir: str, *, controller: str | Controller = "ppo",
                 controller_options: dict | None = None, seed: int = 0, reward: str = "soft",
                 target_ms: float | None = None, target_scale: float = 1.0, alpha: float | None = None,
                 beta: float | None = None, num_samples: int = 20, top_k: int = 3, failure_reward: float = 0.0,
                 evaluate_reference: bool = True, tensorboard: bool = True, checkpoint_every: int = 1,
                 export: bool = True, log: Callable[[str], Any] | None = print, overwrite: bool = False,
                 executor: Executor | None = None):
        if not isinstance(space, SearchSpace):
            raise SearchConfigError(f"space must be a SearchSpace; received {type(space).__name__}")
        if not hasattr(evaluator, "evaluate"):
            raise SearchConfigError("evaluator must have an evaluate(blocks, artifact_dir=None) method")
        for name, value in (("num_samples", num_samples), ("top_k", top_k), ("checkpoint_every", checkpoint_every)):
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "top_k" else 1):
                raise SearchConfigError(f"{name} must be a positive integer; received {value!r}")
        if target_ms is not None and not target_ms > 0:
            raise SearchConfigError(f"target_ms must be > 0 (or None for the reference's latency); received {target_ms!r}")
        if not target_scale > 0:
            raise SearchConfigError(f"target_scale must be > 0; received {target_scale!r}")
        Reward(reward, target_ms=target_ms or 1.0, alpha=alpha, beta=beta)  # validates
        self.space = space
        self.evaluator = evaluator
        self.run_dir = RunDirectory(run_dir)
        if isinstance(controller, Controller):
            if controller.num_choices != space.num_choices:
                raise SearchConfigError("the controller's decisions do not match the space's")
            self._controller_name = controller.name
            self._controller_options = controller.config()
            self._controller_instance = controller
            seed = controller.seed
        else:
            self._controller_name = controller
            self._controller_options = dict(controller_options or {})
            self._controller_instance = None
            make_controller(controller, space.num_choices, seed=seed, **self._controller_options)  # validates
        self.seed = seed
        self.reward_kind, self.alpha, self.beta = reward, alpha, beta
        self.target_ms, self.target_scale = target_ms, float(target_scale)
        self.num_samples, self.top_k = num_samples, top_k
        self.failure_reward = float(failure_reward)
        self.evaluate_reference = evaluate_reference or target_ms is None
        self.tensorboard, self.checkpoint_every, self.export = tensorboard, checkpoint_every, export
        self.log = log or (lambda *_: None)
        self.overwrite = overwrite
        if executor is not None and not isinstance(executor, Executor):
            raise SearchConfigError(f"executor must be an Executor or None; received {type(executor).__name__}")
        self.executor = executor

    # ------------------------------------------------------------------ config
    def config(self) -> dict:
        """The run's definition, stored in ``config.json`` and checked on resume."""
        evaluator_config = self.evaluator.config() if hasattr(self.evaluator, "config") else {
            "type": type(self.evaluator).__name__}
        return {
            "space": self.space.to_dict(),
            "controller": self._controller_name,
            "controller_options": self._controller_options,
            "seed": self.seed,
            "reward": {"kind": self.reward_kind, "target_ms": self.target_ms, "target_scale": self.target_scale,
                       "alpha": self.alpha, "beta": self.beta},
            "failure_reward": self.failure_reward,
            "evaluate_reference": self.evaluate_reference,
            "evaluator": evaluator_config,
            "num_samples": self.num_samples,
            "top_k": self.top_k,
            "export": self.export,
            "tensorboard": self.tensorboard,
            "checkpoint_every": self.checkpoint_every,
        }

    def _make_controller(self) -> tuple[Controller, int]:
        saved = self.run_dir.load_controller()
        if saved is not None:
            step, state = saved
            return controller_from_state(state), step
        if self._controller_instance is not None:
            return self._controller_instance, self._controller_instance.num_told
        names = [d.name for d in self.space.decisions]
        return make_controller(self._controller_name, self.space.num_choices, seed=self.seed, names=names,
                               **self._controller_options), 0

    # --------------------------------------------------------------- evaluation
    def _artifact_folder(self, blocks: list[str]) -> str | None:
        if getattr(self.evaluator, "saves_artifacts", False):
            return self.run_dir.artifact_dir(arch_id(arch_key(blocks)))
        return None

    def _evaluate(self, blocks: list[str], step: int | None) -> dict:
        return self._make_record(blocks, step, call_evaluator(self.evaluator, blocks, self._artifact_folder(blocks)))

    def _make_record(self, blocks: list[str], step: int | None, result: dict) -> dict:
        """The journal record of an evaluator's result (checked; no NaN/inf)."""
        key = arch_key(blocks)
        ident = arch_id(key)
        result = dict(result)
        if result.get("status") == "ok":
            for field in ("accuracy", "latency_ms"):
                value = result.get(field)
                if not isinstance(value, (int, float)) or value != value or (field == "latency_ms" and value <= 0):
                    result = {**result, "status": "failed", "reason": f"evaluator returned {field}={value!r}"}
                    break
        else:
            result["status"] = "failed"
            result.setdefault("reason", "unknown")
        # JSON has no NaN/inf: keep such values out of the journal (the reason says what happened).
        result = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in result.items()}
        return {"key": key, "arch_id": ident, "blocks": list(blocks), **result, "step": step}

    def _reward(self, record: dict, reward_fn: Reward) -> float:
        if record["status"] != "ok":
            return self.failure_reward
        return reward_fn(record["accuracy"], record["latency_ms"])

    # --------------------------------------------------------------------- run
    def run(self) -> SearchResult:
        """Runs (or resumes) the search up to ``num_samples`` and writes the outputs."""
        from mnas_keras.search import parallel

        if self.executor is not None or (not self.overwrite and parallel.is_parallel_run(self.run_dir)):
            from mnas_keras.search.executors import InlineExecutor

            return parallel.run_parallel(self, self.executor or InlineExecutor())
        resumed = self.run_dir.prepare(self.config(), overwrite=self.overwrite)
        journal = self.run_dir.journal
        try:
            return self._loop(journal, resumed)
        finally:
            self.run_dir.close()

    def _loop(self, journal, resumed) -> SearchResult:
        controller, step = self._make_controller()
        results = journal.results()
        cache = journal.cache()
        if resumed:
            self.log(f"resuming {self.run_dir.path}: checkpoint at step {step}, "
                     f"{len(results)} results journaled, {len(cache)} distinct evaluations")
        else:
            self.log(self.space.describe())
        # Reference network (and the target latency it defines).
        reference = next(iter(journal.events("reference")), None)
        if self.evaluate_reference and reference is None:
            blocks = self.space.reference_blocks()
            self.log(f"evaluating the reference network: {' '.join(blocks)}")
            reference = {"event": "reference", **self._evaluate(blocks, None)}
            journal.append(reference)
        if reference is not None and reference["status"] == "ok":
            cache.setdefault(reference["key"], reference)
        target_ms = self.target_ms
        if target_ms is None:
            if reference is None or reference["status"] != "ok":
                raise SearchConfigError(
                    f"the reference network could not be evaluated ({(reference or {}).get('reason')}); "
                    "give target_ms explicitly"
                )
            target_ms = reference["latency_ms"] * self.target_scale
        reward_fn = Reward(self.reward_kind, target_ms=target_ms, alpha=self.alpha, beta=self.beta)
        if reference is not None:
            reference = {**reference, "reward": self._reward(reference, reward_fn)}
            if reference["status"] == "ok":
                self.log(f"reference: accuracy {reference['accuracy']:.4f}, latency {reference['latency_ms']:.4f} ms"
                         f"; target latency {target_ms:.4f} ms")

        writer = None
        if self.tensorboard:
            from mnas_keras.search.summaries import ScalarWriter

            writer = ScalarWriter(self.run_dir.tensorboard_path)
        best = max((r["reward"] for r in results.values()), default=None)
        try:
            while step < self.num_samples:
                decisions = controller.ask()
                blocks = self.space.decode(decisions)
                key = arch_key(blocks)
                record = results.get(step)
                if record is not None:  # journaled before the last checkpoint: replay
                    if record["key"] != key:
                        raise SearchConfigError(
                            f"journal step {step} holds {record['key']!r} but the restored controller proposed "
                            f"{key!r}; the controller checkpoint does not belong to this journal"
                        )
                else:
                    journal.append({"event": "sample", "step": step, "decisions": decisions, "key": key,
                                    "time": time.time()})
                    if key in cache:
                        source = cache[key]
                        record = {k: v for k, v in source.items() if k not in ("event", "step", "time")}
                        record.update(cached=True, cached_from=source.get("step"), eval_seconds=0.0)
                    else:
                        record = self._evaluate(blocks, step)
                        record["cached"] = False
                    record.update(event="result", step=step, decisions=decisions, time=time.time())
                    record["reward"] = self._reward(record, reward_fn)
                    journal.append(record)
                    if not record["cached"]:
                        cache[key] = record
                    results[step] = record
                    best = record["reward"] if best is None else max(best, record["reward"])
                    self._progress(step, record, best)
                    if writer is not None:
                        self._summaries(writer, step, record, best, controller)
                controller.tell(decisions, record["reward"])
                step += 1
                if step % self.checkpoint_every == 0 or step == self.num_samples:
                    self.run_dir.save_controller(step, controller.state_dict())
                if not record.get("cached") and record["status"] == "ok":
                    self._prune_artifacts(results)
        finally:
            if writer is not None:
                writer.close()
        return self._finish(results, reference, target_ms)

    # ----------------------------------------------------------------- outputs
    def _progress(self, step: int, record: dict, best: float) -> None:
        width = len(str(self.num_samples))
        if record["status"] == "ok":
            metrics = f"acc {record['accuracy']:.4f}  lat {record['latency_ms']:.4f} ms"
        else:
            metrics = f"FAILED ({record.get('reason', '')[:80]})"
        how = "cached" if record["cached"] else f"{record.get('eval_seconds', 0.0):.1f}s"
        self.log(f"[{step + 1:>{width}}/{self.num_samples}] reward {record['reward']:.4f}  {metrics}  "
                 f"best {best:.4f}  ({how})  {record['arch_id']}")

    def _summaries(self, writer, step: int, record: dict, best: float, controller: Controller) -> None:
        values = {"search/reward": record["reward"], "search/best_reward": best}
        if record["status"] == "ok":
            values["search/accuracy"] = record["accuracy"]
            values["search/latency_ms"] = record["latency_ms"]
        values["search/failed"] = float(record["status"] != "ok")
        for name, value in controller.stats().items():
            values[f"controller/{name}"] = value
        for decision, probs in zip(self.space.decisions, controller.probabilities()):
            for label, p in zip(decision.labels, probs):
                values[f"probability/{decision.name}/{label}"] = p
        writer.scalars(step + 1, values)

    def _keep(self, records: list[dict]) -> list[dict]:
        chosen = {r["key"]: r for r in top_k(records, self.top_k)}
        for r in pareto_front(records):
            chosen.setdefault(r["key"], r)
        return sorted(chosen.values(), key=lambda r: (-r["reward"], r["latency_ms"]))

    @staticmethod
    def _distinct(results: dict) -> list[dict]:
        """The first result of each architecture, in step order (cached hits of the reference
        evaluation count as the search's own)."""
        seen: dict[str, dict] = {}
        for step in sorted(results):
            seen.setdefault(results[step]["key"], results[step])
        return list(seen.values())

    def _prune_artifacts(self, results: dict) -> None:
        folder = self.run_dir.artifacts_path
        if not os.path.isdir(folder):
            return
        keep = {r["arch_id"] for r in self._keep(self._distinct(results))}
        for name in os.listdir(folder):
            if name not in keep:
                shutil.rmtree(os.path.join(folder, name), ignore_errors=True)

    def _finish(self, results: dict, reference: dict | None, target_ms: float) -> SearchResult:
        records = self._distinct(results)
        if getattr(self.evaluator, "latency_mode", "measured") == "predicted_then_measured":
            from mnas_keras.search.latency_modes import measure_front

            reward_fn = Reward(self.reward_kind, target_ms=target_ms, alpha=self.alpha, beta=self.beta)
            measure_front(records, self.run_dir.journal, self.evaluator.latency_table, self.evaluator.measure_latency,
                          lambda record: self._reward(record, reward_fn), log=self.log)
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
            files["export"] = self._export(self._keep(records), front, best, target_ms)
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
            name = f"{rank:02d}_{record['arch_id']}"
            entry_dir = os.path.join(folder, name)
            os.makedirs(entry_dir)
            info = {k: record.get(k) for k in ("arch_id", "blocks", "reward", "accuracy", "latency_ms", "step",
                                                "params", "madds")}
            info.update(rank=rank, pareto=record["key"] in front_keys, top_k=record["key"] in top_keys,
                        target_ms=target_ms, stem_filters=self.space.stem_filters)
            atomic_write_json(os.path.join(entry_dir, "blocks.json"), info, indent=2)
            entries.append({"name": name, "dir": entry_dir, "record": record, "info": info,
                            "artifact_dir": self.run_dir.artifact_dir(record["arch_id"])})
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
