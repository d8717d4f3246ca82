"""Where evaluations run: the executor interface and its three implementations.

* :mod:`~mnas_keras.search.execution.base`: :class:`Executor` (submit jobs, wait for
  finished ones), :class:`Job`, :func:`call_evaluator`, :class:`InlineExecutor` (in process,
  the default; ``--executor=local``) and :class:`LocalPoolExecutor` (spawned processes).
* :mod:`~mnas_keras.search.execution.ray_executor`: :class:`RayExecutor` (Ray actors; Ray
  is imported when it starts).

A new executor subclasses :class:`Executor` and is added to :func:`make_executor`.
"""

from __future__ import annotations

from mnas_keras.search.errors import SearchConfigError
from mnas_keras.search.execution.base import (
    Executor,
    InlineExecutor,
    Job,
    LocalPoolExecutor,
    call_evaluator,
)
from mnas_keras.search.execution.ray_executor import RayExecutor

#: Executor names accepted by :func:`make_executor` (and ``mnas-search --executor``).
#: ``"local"`` is an older name of ``"inline"`` (it was easy to read as "a local pool").
EXECUTORS = ("inline", "pool", "ray", "local")

__all__ = ["EXECUTORS", "Executor", "InlineExecutor", "Job", "LocalPoolExecutor", "RayExecutor", "call_evaluator",
           "make_executor"]


def make_executor(name: str = "inline", *, max_in_flight: int | None = None, max_retries: int = 1,
                  ray_address: str | None = None, latency_resource: str | None = None,
                  cpus_per_worker: float = 1.0, dashboard: bool = False, num_cpus: int | None = None) -> Executor:
    """An executor by name: ``"inline"`` (in process; also ``"local"``), ``"pool"`` or ``"ray"``.

    Args:
        max_in_flight: evaluations at once (pool: default 2; Ray: default the cluster's CPUs
            divided by ``cpus_per_worker``).
        max_retries: reruns of a job whose worker died before it is recorded as failed.
        ray_address: a running Ray cluster (``"auto"``, ``"ray://host:10001"``); None
            starts a local Ray instance with ``num_cpus`` CPUs.
        latency_resource: a Ray custom resource naming the nodes that measure latency.
        cpus_per_worker: CPUs each Ray evaluation worker reserves.
        dashboard: start Ray's dashboard (bound to 127.0.0.1) when starting Ray locally.

    Example:
        >>> make_executor("pool", max_in_flight=2).max_in_flight
        2
        >>> make_executor("dask")
        Traceback (most recent call last):
        ...
        mnas_keras.search.errors.SearchConfigError: unknown executor 'dask'; expected one of ('inline', 'pool', 'ray', 'local')
    """
    if name in ("inline", "local", "pool"):
        ray_only = [f"{key}={value!r}" for key, value, default in (
            ("ray_address", ray_address, None), ("cpus_per_worker", cpus_per_worker, 1.0), ("dashboard", dashboard, False), ("num_cpus", num_cpus, None))
            if value not in (default, "")]
        if ray_only:  # they would be dropped without a word
            raise SearchConfigError(f"{', '.join(ray_only)} apply to the Ray executor only; received executor "
                                    f"{name!r} (use executor 'ray')")
    if name in ("inline", "local"):
        if max_in_flight not in (None, 1):
            raise SearchConfigError(f"the in-process executor ({name!r}) runs one evaluation at a time; received "
                                    f"max_in_flight={max_in_flight} (use executor 'pool' or 'ray')")
        if latency_resource:
            raise SearchConfigError("latency_resource needs the Ray executor")
        return InlineExecutor()
    if name == "pool":
        if latency_resource:
            raise SearchConfigError("latency_resource needs the Ray executor")
        return LocalPoolExecutor(2 if max_in_flight is None else max_in_flight, max_retries=max_retries)
    if name == "ray":
        return RayExecutor(ray_address, max_in_flight, max_retries=max_retries, latency_resource=latency_resource,
                           cpus_per_worker=cpus_per_worker, dashboard=dashboard, num_cpus=num_cpus)
    raise SearchConfigError(f"unknown executor {name!r}; expected one of {EXECUTORS}")
