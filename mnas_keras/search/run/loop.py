"""The search loop: ask the controller, evaluate on an executor, tell the controller.

:class:`SearchLoop` is the one loop of :class:`~mnas_keras.search.run.search.Search` (which
keeps the configuration, the run directory and the outputs, as KerasTuner's ``BaseTuner``
does). It keeps up to ``executor.max_in_flight`` proposals outstanding and updates the
controller as each result arrives, in arrival order; new proposals come from the
controller's current state. With the default in-process executor
(:class:`~mnas_keras.search.execution.InlineExecutor`) that is one evaluation at a time, in
step order. An architecture that is already being evaluated is not submitted twice: the
later step waits for the same evaluation and is recorded as ``cached``; one evaluated
before is not evaluated again (``cached``, ``cached_from`` its first step).

Journal: every ``ask`` is journaled at once as a ``sample`` event (the "started" entry,
with its step id) and every ``tell`` as a ``result`` event (the "finished" entry), so the
journal holds the exact sequence of the controller's calls. The controller is told results by trial id, the step
(``ask(step)``, ``tell(step, reward)``). The controller checkpoint (``controller.json``,
after at least ``checkpoint_every`` results once the controller says its state is worth
writing, :attr:`~mnas_keras.search.controllers.Controller.checkpoint_due`, and at the end)
holds the controller's state,
the number of results told (``step``), of proposals asked (``asked``) and how far into the
journal it is (``journal_position``). A checkpoint of the releases before the one loop
(``{"step", "controller"}``, written after ``step`` asks and tells in step order) is
read too.

What resuming guarantees (after ``kill -9`` of the driver, or a lost cluster):

* no finished evaluation is lost or repeated: each step has exactly one ``result``;
* the controller is restored from its checkpoint, then the journal's ``sample`` and
  ``result`` events after ``journal_position`` are replayed in journal order (asks are
  checked against the journaled proposals), which reproduces its state at the crash;
* a journal that lost lines the checkpoint counted (an older backup restored) is reported
  as a damaged run directory, never resumed to fewer results;
* the steps that were in flight (a ``sample`` without ``result``) are evaluated again, at
  most ``max_in_flight`` repeated evaluations per crash, before new proposals are made.

Results arrive in an order that depends on timing, so two runs with several evaluations
in flight and the same seed differ; in process the search is reproduced exactly. A run
may be resumed with another executor.

Example:
    >>> import tempfile
    >>> from mnas_keras.search.run.search import Search
    >>> from mnas_keras.search.space import mnasnet_space
    >>> from mnas_keras.search.evaluation.synthetic import SyntheticEvaluator
    >>> space = mnasnet_space()
    >>> search = Search(space, SyntheticEvaluator(space), tempfile.mkdtemp(), controller="evolution",
    ...                 num_samples=6, tensorboard=False, export=False, log=None)
    >>> len(search.run().records) <= 6
    True
"""

from __future__ import annotations

import math
import os
import shutil
import time

from mnas_keras.search.controllers import Controller, controller_from_state, make_controller
from mnas_keras.search.errors import SearchConfigError
from mnas_keras.search.execution import Executor, Job
from mnas_keras.search.run.journal import atomic_write_json, check_records, read_json
from mnas_keras.search.pareto import distinct_records, kept_records
from mnas_keras.search.reward import Reward
from mnas_keras.search.space import arch_id, arch_key

#: ``version`` of the ``controller.json`` this loop writes.
CHECKPOINT_VERSION = 2


def _in_flight(records) -> dict[int, list[int]]:
    """``{step: decisions}`` of the samples without a result in ``records``, in step order
    (the proposals outstanding at a checkpoint: a controller state saved before trials had
    ids gets their ids, the steps, from here)."""
    samples = {r["step"]: r["decisions"] for r in records if r.get("event") == "sample"}
    for r in records:
        if r.get("event") == "result":
            samples.pop(r["step"], None)
    return dict(sorted(samples.items()))


class SearchLoop:
    """Runs (or resumes) one search on an executor; see the module docstring.

    Args:
        search: the :class:`~mnas_keras.search.run.search.Search` (its settings, evaluator
            and prepared run directory).
        executor: a started :class:`~mnas_keras.search.execution.Executor`.
    """

    def __init__(self, search, executor: Executor):
        if not isinstance(executor, Executor):
            raise SearchConfigError(f"executor must be an Executor; received {type(executor).__name__}")
        self.search = search
        self.executor = executor
        self.run_dir = search.run_dir
        self.journal = search.run_dir.journal
        self.log = search.log

    # ----------------------------------------------------------------- restore
    def _new_controller(self) -> Controller:
        search = self.search
        if search.controller_instance is not None:
            return search.controller_instance
        names = [d.name for d in search.space.decisions]
        return make_controller(search.controller_name, search.space.num_choices, seed=search.seed, names=names,
                               **search.controller_options)

    def _restore(self):
        """The controller at the crash: checkpoint + replay of the journal after it."""
        search, records = self.search, self.journal.records
        check_records(records, self.journal.path)
        if os.path.exists(self.run_dir.controller_path):
            saved = read_json(self.run_dir.controller_path)
            told = int(saved["step"])
            if "journal_position" in saved:
                asked, position = int(saved["asked"]), int(saved["journal_position"])
            else:  # the old releases' checkpoint: `step` asks and tells, results in step order
                asked, position, seen = told, 0, 0
                while seen < told and position < len(records):
                    seen += records[position].get("event") == "result"
                    position += 1
                if seen < told:
                    position = len(records) + 1  # ahead of the journal: reported below
            journaled = sum(r.get("event") == "result" for r in records[:position])
            if position > len(records) or journaled != told:
                held = sum(r.get("event") == "result" for r in records)
                raise SearchConfigError(
                    f"{self.run_dir.controller_path} was saved after {told} results but {self.journal.path} "
                    f"holds {held} (the journal lost lines, e.g. restored from an older backup); the run "
                    "directory is damaged: restore the journal that belongs to this checkpoint, or start "
                    "again with overwrite=True (--overwrite)")
            controller = controller_from_state(saved["controller"], _in_flight(records[:position]))
        else:
            controller = self._new_controller()
            told, asked, position = controller.num_told, 0, 0
        samples = {}
        for record in records[:position]:
            if record.get("event") == "sample":
                samples.setdefault(record["step"], record)
        for record in records[position:]:
            event = record.get("event")
            if event == "sample":
                step = record["step"]
                if step < asked:
                    continue  # the old releases journaled a re-evaluated step's sample again
                if step != asked:
                    raise SearchConfigError(f"journal sample for step {step} follows step {asked - 1}; "
                                            "the journal is damaged")
                trial = controller.ask(step)
                key = arch_key(search.space.decode(trial.decisions))
                if key != record["key"]:
                    raise SearchConfigError(
                        f"journal step {step} holds {record['key']!r} but the restored controller proposed "
                        f"{key!r}; the controller checkpoint does not belong to this journal")
                samples[step] = record
                asked += 1
            elif event == "result":
                controller.tell(record["step"], record["reward"])
                told += 1
        return controller, samples, asked, told

    # --------------------------------------------------------------------- run
    def run(self, resumed: bool) -> tuple[dict, dict | None, float]:
        """Runs the loop to ``num_samples`` results; returns ``(results by step, the
        reference record or None, the target latency in ms)``."""
        search = self.search
        controller, samples, asked, told = self._restore()
        results = self.journal.results()
        cache = self.journal.cache()
        in_flight = sorted(s for s in samples if s not in results)
        if resumed:
            self.log(f"resuming {self.run_dir.path}: {told} results told, {asked} proposals asked, "
                     f"{len(in_flight)} evaluations to redo ({self.executor.describe()})")
        else:
            self.log(search.space.describe())
            self.log(f"evaluations run on {self.executor.describe()}")
        reference, target_ms = self._reference(cache)
        self.reward_fn = Reward(search.reward_kind, target_ms=target_ms, alpha=search.alpha, beta=search.beta)
        if reference is not None:
            reference = {**reference, "reward": self.reward(reference)}
        self.controller, self.results, self.cache = controller, results, cache
        self.told, self.asked = told, asked
        self.checkpointed = told
        self.best = max((r["reward"] for r in results.values()), default=None)
        self.waiting: dict[str, list[int]] = {}  # key being evaluated -> its steps, in order
        self.samples = samples
        self.writer = None
        if search.tensorboard:
            from mnas_keras.search.run.summaries import ScalarWriter

            self.writer = ScalarWriter(self.run_dir.tensorboard_path)
        try:
            for step in in_flight:  # the evaluations a crash interrupted
                record = samples[step]
                self._start(step, record["decisions"], search.space.decode(record["decisions"]), record["key"])
            self._loop()
        finally:
            if self.writer is not None:
                self.writer.close()
        return results, reference, target_ms

    def _reference(self, cache):
        search = self.search
        reference = next(iter(self.journal.events("reference")), None)
        if search.evaluate_reference and reference is None:
            blocks = search.space.reference_blocks()
            self.log(f"evaluating the reference network: {' '.join(blocks)}")
            self.executor.submit(Job(-1, list(blocks), self._artifact_folder(blocks)))
            (job, raw), = self.executor.wait()
            reference = {"event": "reference", **self._make_record(blocks, None, raw)}
            self.journal.append(reference)
        if reference is not None and reference["status"] == "ok":
            cache.setdefault(reference["key"], reference)
        target_ms = search.target_ms
        if target_ms is None:
            if reference is None or reference["status"] != "ok":
                raise SearchConfigError(
                    f"the reference network could not be evaluated ({(reference or {}).get('reason')}); "
                    "give target_ms explicitly")
            target_ms = reference["latency_ms"] * search.target_scale
        if reference is not None and reference["status"] == "ok":
            self.log(f"reference: accuracy {reference['accuracy']:.4f}, latency {reference['latency_ms']:.4f} ms"
                     f"; target latency {target_ms:.4f} ms")
        return reference, target_ms

    def _outstanding(self) -> int:
        return sum(len(steps) for steps in self.waiting.values())

    def _loop(self) -> None:
        search = self.search
        while True:
            while self.asked < search.num_samples and self._outstanding() < self.executor.max_in_flight:
                step = self.asked
                decisions = list(self.controller.ask(step).decisions)
                blocks = search.space.decode(decisions)
                key = arch_key(blocks)
                sample = {"event": "sample", "step": step, "decisions": decisions, "key": key, "time": time.time()}
                self.journal.append(sample)
                self.samples[step] = sample
                self.asked += 1
                self._start(step, decisions, blocks, key)
            if not self.waiting:
                break
            for job, raw in self.executor.wait():
                self._finished(job, raw)

    def _start(self, step: int, decisions, blocks, key: str) -> None:
        if key in self.cache:  # evaluated before: the result is known now
            source = self.cache[key]
            record = {k: v for k, v in source.items() if k not in ("event", "step", "time")}
            record.update(cached=True, cached_from=source.get("step"), eval_seconds=0.0)
            self._record(step, decisions, record)
        elif key in self.waiting:  # being evaluated for an earlier step
            self.waiting[key].append(step)
        else:
            self.waiting[key] = [step]
            self.executor.submit(Job(step, list(blocks), self._artifact_folder(blocks)))

    def _finished(self, job: Job, raw: dict) -> None:
        record = self._make_record(job.blocks, job.job_id, raw)
        steps = self.waiting.pop(record["key"])
        first = steps[0]
        record.update(step=first, cached=False)
        self._record(first, self.samples[first]["decisions"], record)
        for step in steps[1:]:
            copy = {k: v for k, v in record.items() if k not in ("event", "step", "time")}
            copy.update(cached=True, cached_from=first, eval_seconds=0.0)
            self._record(step, self.samples[step]["decisions"], copy)
        if record["status"] == "ok":
            self._prune_artifacts()

    def _record(self, step: int, decisions, record: dict) -> None:
        search = self.search
        record.update(event="result", step=step, decisions=list(decisions), time=time.time())
        record["reward"] = self.reward(record)
        self.journal.append(record)
        if not record["cached"]:
            self.cache[record["key"]] = record
        self.results[step] = record
        self.best = record["reward"] if self.best is None else max(self.best, record["reward"])
        self._progress(step, record)
        if self.writer is not None:
            self._summaries(step, record)
        self.controller.tell(step, record["reward"])
        self.told += 1
        done = self.asked >= search.num_samples and self._outstanding() == 0
        if done or (self.told - self.checkpointed >= search.checkpoint_every and self.controller.checkpoint_due):
            self._checkpoint()

    def _checkpoint(self) -> None:
        self.checkpointed = self.told
        atomic_write_json(self.run_dir.controller_path, {
            "version": CHECKPOINT_VERSION, "step": self.told, "asked": self.asked,
            "journal_position": len(self.journal.records), "controller": self.controller.state_dict()})

    # ---------------------------------------------------------------- records
    def _artifact_folder(self, blocks) -> str | None:
        if getattr(self.search.evaluator, "saves_artifacts", False):
            return self.run_dir.artifact_dir(arch_id(arch_key(blocks)))
        return None

    @staticmethod
    def _make_record(blocks, step: int | None, result: dict) -> dict:
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

    def reward(self, record: dict) -> float:
        """The record's reward (``failure_reward`` for a failed evaluation)."""
        if record["status"] != "ok":
            return self.search.failure_reward
        return self.reward_fn(record["accuracy"], record["latency_ms"])

    def _progress(self, step: int, record: dict) -> None:
        width = len(str(self.search.num_samples))
        if record["status"] == "ok":
            metrics = f"acc {record['accuracy']:.4f}  lat {record['latency_ms']:.4f} ms"
        else:
            metrics = f"FAILED ({record.get('reason', '')[:80]})"
        how = "cached" if record["cached"] else f"{record.get('eval_seconds', 0.0):.1f}s"
        self.log(f"[{step + 1:>{width}}/{self.search.num_samples}] reward {record['reward']:.4f}  {metrics}  "
                 f"best {self.best:.4f}  ({how})  {record['arch_id']}")

    def _summaries(self, step: int, record: dict) -> None:
        values = {"search/reward": record["reward"], "search/best_reward": self.best}
        if record["status"] == "ok":
            values["search/accuracy"] = record["accuracy"]
            values["search/latency_ms"] = record["latency_ms"]
        values["search/failed"] = float(record["status"] != "ok")
        for name, value in self.controller.stats().items():
            values[f"controller/{name}"] = value
        for decision, probs in zip(self.search.space.decisions, self.controller.probabilities()):
            for label, p in zip(decision.labels, probs):
                values[f"probability/{decision.name}/{label}"] = p
        self.writer.scalars(step + 1, values)

    def _prune_artifacts(self) -> None:
        """Deletes the artifacts of architectures that will not be exported, sparing the
        evaluations still running."""
        folder = self.run_dir.artifacts_path
        if not os.path.isdir(folder):
            return
        keep = {r["arch_id"] for r in kept_records(distinct_records(self.results), self.search.top_k)}
        keep |= {arch_id(key) for key in self.waiting}
        for name in os.listdir(folder):
            if name not in keep:
                shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
