"""Where evaluations run: in process (the default), a local process pool, or Ray.

An executor takes evaluation jobs (:meth:`Executor.submit`) and hands back finished ones
(:meth:`Executor.wait`), so the search can keep ``max_in_flight`` evaluations running and
go on as each result arrives (:mod:`mnas_keras.search.run.loop`). Every executor runs the
evaluator through :func:`call_evaluator`, which turns an exception into a failed result.

* :class:`InlineExecutor`: one evaluation at a time, in this process.
* :class:`LocalPoolExecutor`: ``num_workers`` spawned processes, each holding its own copy
  of the evaluator; a worker that dies breaks the pool: the pool is rebuilt and the jobs
  it held are retried (each counts an attempt), up to ``max_retries``. A worker dies with
  its parent (Linux's parent-death signal, :func:`_exit_with_parent`), so a driver killed
  with SIGKILL leaves no worker behind.
* :class:`~mnas_keras.search.execution.ray_executor.RayExecutor`: Ray actors (``pip install
  mnas_keras[ray]``); Ray is imported only when it starts.

A job that runs out of retries comes back as ``{"status": "failed", "reason":
"worker_died: ..."}``. A job retried after a worker death carries ``attempts`` and
``worker_errors`` in its result.

Example:
    >>> from mnas_keras.search.space import mnasnet_space
    >>> from mnas_keras.search.evaluation.synthetic import SyntheticEvaluator
    >>> space = mnasnet_space()
    >>> executor = InlineExecutor()
    >>> executor.start(SyntheticEvaluator(space))
    >>> executor.submit(Job(0, space.reference_blocks()))
    >>> [(job.job_id, result["status"]) for job, result in executor.wait()]
    [(0, 'ok')]
    >>> executor.close()
"""

from __future__ import annotations

import abc
import collections
import dataclasses
import time
from typing import Any, Sequence

from mnas_keras.search.errors import SearchConfigError


def call_evaluator(evaluator, blocks: Sequence[str], artifact_dir: str | None = None) -> dict:
    """``evaluator.evaluate(blocks, artifact_dir=...)`` as a dict; an exception becomes a
    failed result with the exception's first line as ``reason``; ``eval_seconds`` is set."""
    start = time.perf_counter()
    try:
        result = dict(evaluator.evaluate(list(blocks), artifact_dir=artifact_dir))
    except Exception as err:  # the search goes on; the reason is recorded
        message = str(err).strip().splitlines()[0] if str(err).strip() else ""
        result = {"status": "failed", "reason": f"{type(err).__name__}: {message}"[:500]}
    result.setdefault("eval_seconds", time.perf_counter() - start)
    return result


@dataclasses.dataclass
class Job:
    """One evaluation: ``job_id`` is the search step (``-1`` for the reference network)."""

    job_id: int
    blocks: list
    artifact_dir: str | None = None
    attempts: int = 0
    errors: list = dataclasses.field(default_factory=list)

    def outcome(self, result: dict) -> dict:
        """``result`` annotated with the retries this job needed."""
        if self.errors:
            result = {**result, "attempts": self.attempts, "worker_errors": list(self.errors)}
        return result

    def failure(self) -> dict:
        """The result of a job whose every attempt lost its worker."""
        return {"status": "failed", "reason": f"worker_died: {self.errors[-1]}"[:500], "attempts": self.attempts,
                "worker_errors": list(self.errors), "eval_seconds": 0.0}


class Executor(abc.ABC):
    """Runs evaluation jobs; see the module docstring.

    Attributes:
        max_in_flight: how many evaluations the search keeps submitted at once.
    """

    max_in_flight: int = 1

    @abc.abstractmethod
    def start(self, evaluator) -> None:
        """Prepares the workers; each gets its own copy of ``evaluator``."""

    @abc.abstractmethod
    def submit(self, job: Job) -> None:
        """Queues a job (it starts when a worker is free)."""

    @abc.abstractmethod
    def wait(self) -> list[tuple[Job, dict]]:
        """Blocks until at least one job has finished; returns the finished ``(job, result)``."""

    def close(self) -> None:
        """Stops the workers (idempotent)."""

    def describe(self) -> str:
        return type(self).__name__

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class InlineExecutor(Executor):
    """Evaluates in this process, one job at a time (the search's classic behaviour)."""

    max_in_flight = 1

    def __init__(self):
        self._evaluator = None
        self._done: collections.deque = collections.deque()

    def start(self, evaluator) -> None:
        self._evaluator = evaluator

    def submit(self, job: Job) -> None:
        if self._evaluator is None:
            raise RuntimeError("start() the executor first")
        job.attempts += 1
        self._done.append((job, call_evaluator(self._evaluator, job.blocks, job.artifact_dir)))

    def wait(self) -> list[tuple[Job, dict]]:
        if not self._done:
            raise RuntimeError("wait() with no job submitted")
        return [self._done.popleft()]

    def describe(self) -> str:
        return "local (in process)"


# ------------------------------------------------------------------ process pool
_WORKER_EVALUATOR = None
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _exit_with_parent(parent_pid: int) -> None:
    """Makes this process get SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``,
    Linux only; elsewhere nothing), and exits at once if the parent is already gone.

    The kernel sends the signal when the *thread* that started this process ends: the
    pool starts its workers from the thread that submits jobs (the search loop's), which
    lives as long as the pool.
    """
    import ctypes
    import os
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
        return
    if os.getppid() != parent_pid:  # the parent died before prctl
        os._exit(1)


def _exit_quietly_on_interrupt() -> None:
    """Ctrl-C reaches every process of the terminal's group: a worker then exits at once and
    without a traceback, and the search (the parent) reports the interruption, once."""
    import os
    import signal

    signal.signal(signal.SIGINT, lambda signum, frame: os._exit(128 + signum))


def _pool_init(evaluator, parent_pid: int | None = None) -> None:
    global _WORKER_EVALUATOR
    if parent_pid is not None:
        _exit_with_parent(parent_pid)
    _exit_quietly_on_interrupt()
    _WORKER_EVALUATOR = evaluator


def _pool_evaluate(blocks, artifact_dir) -> dict:
    import os

    return {**call_evaluator(_WORKER_EVALUATOR, blocks, artifact_dir), "worker_pid": os.getpid()}


class LocalPoolExecutor(Executor):
    """``num_workers`` spawned processes on this machine (the evaluator is pickled to each).

    Args:
        num_workers: worker processes (= evaluations in flight).
        max_retries: how often a job whose worker died is run again before it is recorded
            as failed.
    """

    def __init__(self, num_workers: int = 2, max_retries: int = 1):
        _check_count("num_workers", num_workers, 1)
        _check_count("max_retries", max_retries, 0)
        self.max_in_flight = int(num_workers)
        self.max_retries = int(max_retries)
        self._evaluator = None
        self._pool = None
        self._queue: collections.deque = collections.deque()
        self._running: dict = {}
        self._generation = 0

    def start(self, evaluator) -> None:
        self._evaluator = evaluator
        self._new_pool()

    def _new_pool(self) -> None:
        import concurrent.futures
        import multiprocessing
        import os

        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = concurrent.futures.ProcessPoolExecutor(
            self.max_in_flight, mp_context=multiprocessing.get_context("spawn"),
            initializer=_pool_init, initargs=(self._evaluator, os.getpid()))
        self._generation += 1

    def submit(self, job: Job) -> None:
        self._queue.append(job)
        self._dispatch()

    def _dispatch(self) -> None:
        from concurrent.futures.process import BrokenProcessPool

        while self._queue and len(self._running) < self.max_in_flight:
            job = self._queue[0]
            try:
                future = self._pool.submit(_pool_evaluate, job.blocks, job.artifact_dir)
            except BrokenProcessPool:  # broke since the last wait(): its jobs fail on their own
                self._new_pool()
                continue
            self._queue.popleft()
            job.attempts += 1
            self._running[future] = (job, self._generation)

    def wait(self) -> list[tuple[Job, dict]]:
        import concurrent.futures
        from concurrent.futures.process import BrokenProcessPool

        if not self._running and not self._queue:
            raise RuntimeError("wait() with no job submitted")
        out = []
        while not out:
            self._dispatch()
            done, _ = concurrent.futures.wait(list(self._running), return_when="FIRST_COMPLETED")
            for future in done:
                job, generation = self._running.pop(future)
                try:
                    out.append((job, job.outcome(future.result())))
                except BrokenProcessPool as err:  # a worker died: every job of that pool is lost
                    job.errors.append(f"{type(err).__name__}: {err}"[:300])
                    if job.attempts > self.max_retries:
                        out.append((job, job.failure()))
                    else:
                        self._queue.appendleft(job)
                    if generation == self._generation:
                        self._new_pool()
        self._dispatch()
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def describe(self) -> str:
        return f"local process pool ({self.max_in_flight} workers)"


def _check_count(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SearchConfigError(f"{name} must be an integer >= {minimum}; received {value!r}")
