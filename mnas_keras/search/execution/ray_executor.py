"""Evaluations as Ray actors: one actor per worker holds its own evaluator.

:class:`RayExecutor` starts ``max_in_flight`` actors (``num_cpus=cpus_per_worker`` each);
each receives a copy of the evaluator once (the object goes through Ray's object store
before its first use, so it carries no TensorFlow state) and keeps it, so TensorFlow is
imported once per worker rather than once per evaluation. Jobs go to idle actors and come
back as they finish (``ray.wait``).

Routing: with ``latency_resource="latency_device"`` the latency measurement of an
evaluator that supports it (one with ``with_latency_runner(runner)``, such as
``ProxyEvaluator``: the worker passes it a :class:`RemoteLatency` runner, which its
latency source calls for each benchmark) runs as a separate Ray task that requires one unit of that
custom resource and no CPU, i.e. on a node that declares it (``ray start
--resources='{"latency_device": 1}'``); training stays on the CPU workers. A local Ray
instance started here declares one unit itself, which also makes latency measurements
take turns.

A dead worker (``kill -9``, out-of-memory killer, lost node) fails its call with a Ray
error: the actor is replaced and the job runs again, up to ``max_retries`` times; then it
is recorded as failed (``reason`` ``"worker_died: ..."``). Latency tasks are retried by Ray
itself (``max_retries``).

Ray is imported when the executor starts, never on import. ``ray.init`` gets
``include_dashboard=False`` unless ``dashboard=True``, and the dashboard binds to
127.0.0.1; a local instance is started with ``num_cpus`` CPUs and shut down by
:meth:`RayExecutor.close`. An instance that was already initialized is used as it is and
left running.

Loopback only: a local instance (no ``address``) is started, and an instance on a loopback
address (``127.0.0.1:6379``) is reached, inside :func:`loopback_environment`
(``loopback=True``, the default), so that nothing it starts sends traffic off 127.0.0.0/8
(and a driver finds its node there). Without it, Ray (2.60) puts its services (GCS, raylet,
workers) on the machine's outward address, found by a UDP ``connect()`` to 8.8.8.8 that
sends no packet; and the usage-stats module of the dashboard head, which Ray starts even
without the dashboard, asks the cloud metadata service (HTTP to 169.254.169.254, twice)
and DNS (``metadata.google.internal``) which cloud it runs on, before it checks whether
usage stats are enabled. :data:`LOOPBACK_ENV` turns both off with documented environment
variables only: ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (Ray's single-machine mode: the
node address is 127.0.0.1, so every service listens and connects there),
``RAY_USAGE_STATS_ENABLED=0``, and an HTTP(S) proxy at ``127.0.0.1:9`` (nothing listens
there: the probes fail at once, without a DNS lookup) with ``no_proxy`` for the loopback
names, so Ray's own gRPC and HTTP traffic on 127.0.0.1 goes direct. The variables are
inherited by the processes Ray starts (its workers too: an evaluator of a local instance
cannot reach other machines over HTTP) and removed from this process again after
``ray.init``. The node address is read when Ray is imported: if ``ray`` was imported
before the executor started it without the variable, the services stay on the outward
address and :meth:`RayExecutor.start` warns (set ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``
before importing Ray). ``tests/search/test_ray_network.py`` checks the whole process tree
of a local search in a network namespace with loopback only: no connection attempt leaves it.

On a cluster (``address`` given) nothing of this applies: Ray's services listen on the
node's address on all its interfaces, each node probes the metadata service, and a
``ray start`` head reports even a disabled usage-stats setting to Ray's server; see the
README's Ray section for running one air-gapped. For a remote cluster, mnas_keras (and
the evaluator's dependencies) must be installed on its nodes, and a shared filesystem is
needed for the evaluator's artifacts (``model.keras``/``model.tflite``) to reach the run
directory; without one the export step rebuilds them.

Example:
    >>> executor = RayExecutor(max_in_flight=2, latency_resource="latency_device")
    >>> executor.max_in_flight, executor.describe()
    (2, 'Ray (2 workers, latency on resource latency_device)')
"""

from __future__ import annotations

import collections
import contextlib
import ipaddress
import os
import warnings

from mnas_keras.search.errors import SearchConfigError
from mnas_keras.search.execution.base import Executor, Job, _check_count, call_evaluator


#: Environment of a local Ray instance confined to loopback (see the module docstring).
LOOPBACK_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "http_proxy": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
    "no_proxy": "127.0.0.1,localhost,::1", "NO_PROXY": "127.0.0.1,localhost,::1",
}


@contextlib.contextmanager
def loopback_environment():
    """Sets :data:`LOOPBACK_ENV` in ``os.environ`` for the ``with`` block, then restores it.

    Processes started inside the block (a local Ray instance started by ``ray.init``)
    inherit the variables. ``os.environ`` is process-wide: do not start other processes
    from other threads meanwhile.

    Example:
        >>> import os
        >>> before = os.environ.get("RAY_USAGE_STATS_ENABLED")
        >>> with loopback_environment():
        ...     os.environ["RAY_USAGE_STATS_ENABLED"], os.environ["no_proxy"]
        ('0', '127.0.0.1,localhost,::1')
        >>> os.environ.get("RAY_USAGE_STATS_ENABLED") == before
        True
    """
    saved = {name: os.environ.get(name) for name in LOOPBACK_ENV}
    os.environ.update(LOOPBACK_ENV)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _address_host(address: str) -> str:
    """The host of a Ray address (``"ray://host:10001"``, ``"host:6379"``, ``"[::1]:6379"``)."""
    host = address.split("://", 1)[-1].rsplit(":", 1)[0]
    return host.strip("[]")


def _import_ray():
    try:
        import ray
    except ImportError:
        raise SearchConfigError("the Ray executor needs Ray: pip install 'mnas_keras[ray]'") from None
    return ray


def _placement() -> dict:
    import ray

    context = ray.get_runtime_context()
    return {"pid": os.getpid(), "node_id": context.get_node_id(),
            "resources": {k: float(v) for k, v in context.get_assigned_resources().items()}}


def _run_latency(fn, args, kwargs):
    """The body of a latency task: ``fn(*args, **kwargs)`` and where it ran."""
    return fn(*args, **kwargs), _placement()


class RemoteLatency:
    """The runner a Ray worker passes to ``evaluator.with_latency_runner``: runs each latency measurement as a
    task needing one unit of ``resource`` (and ``num_cpus`` CPUs, 0 by default so that
    training workers holding every CPU cannot starve it)."""

    def __init__(self, resource: str, num_cpus: float = 0.0, max_retries: int = 1):
        self.resource, self.num_cpus, self.max_retries = resource, float(num_cpus), int(max_retries)
        self.placements: list[dict] = []

    def __call__(self, fn, *args, **kwargs):
        import ray

        task = ray.remote(_run_latency).options(resources={self.resource: 1}, num_cpus=self.num_cpus,
                                                max_retries=self.max_retries)
        value, placement = ray.get(task.remote(fn, args, kwargs))
        self.placements.append(placement)
        return value


class EvaluationWorker:
    """The actor's class: holds one evaluator, evaluates one architecture at a time."""

    def __init__(self, evaluator, latency: dict | None = None):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        self.evaluator = evaluator
        self.latency = None
        if latency:
            self.latency = RemoteLatency(**latency)
            self.evaluator = evaluator.with_latency_runner(self.latency)

    def ready(self) -> dict:
        return _placement()

    def evaluate(self, blocks, artifact_dir=None) -> dict:
        if self.latency is not None:
            self.latency.placements.clear()
        result = call_evaluator(self.evaluator, blocks, artifact_dir)
        where = _placement()
        result["worker"] = {"pid": where["pid"], "node_id": where["node_id"]}
        if self.latency is not None and self.latency.placements:
            result["latency_worker"] = self.latency.placements[-1]
        return result


class RayExecutor(Executor):
    """Runs evaluations on Ray actors; see the module docstring.

    Args:
        address: a running cluster (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``);
            None starts a local instance (unless Ray is already initialized).
        max_in_flight: evaluation workers (actors); None = the cluster's CPUs divided by
            ``cpus_per_worker``.
        max_retries: reruns of a job whose worker died before it is recorded as failed.
        cpus_per_worker: CPUs each actor reserves.
        latency_resource: custom resource of the nodes that measure latency (None: the
            latency is measured inside the evaluation, on the same worker).
        dashboard: start the dashboard (on 127.0.0.1) when starting Ray here.
        num_cpus: CPUs of a local instance (None: Ray's default, all of them).
        loopback: start a local instance (or reach one on a loopback address) inside
            :func:`loopback_environment`, so that it sends nothing off 127.0.0.0/8 (see the
            module docstring); False: Ray's defaults.
        init_options: more ``ray.init`` keyword arguments.
    """

    def __init__(self, address: str | None = None, max_in_flight: int | None = None, *, max_retries: int = 1,
                 cpus_per_worker: float = 1.0, latency_resource: str | None = None, dashboard: bool = False,
                 num_cpus: int | None = None, loopback: bool = True, init_options: dict | None = None):
        if max_in_flight is not None:
            _check_count("max_in_flight", max_in_flight, 1)
        _check_count("max_retries", max_retries, 0)
        if not cpus_per_worker > 0:
            raise SearchConfigError(f"cpus_per_worker must be > 0; received {cpus_per_worker!r}")
        if latency_resource is not None and (not isinstance(latency_resource, str) or not latency_resource
                                             or latency_resource == "CPU" or latency_resource == "GPU"):
            raise SearchConfigError(f"latency_resource must name a custom Ray resource; received {latency_resource!r}")
        self.address = address
        self.max_in_flight = max_in_flight or 0
        self.max_retries = int(max_retries)
        self.cpus_per_worker = float(cpus_per_worker)
        self.latency_resource = latency_resource
        self.dashboard = bool(dashboard)
        self.num_cpus = num_cpus
        self.loopback = bool(loopback)
        self.init_options = dict(init_options or {})
        self._owns_ray = False
        self._actors: list = []
        self._idle: collections.deque = collections.deque()
        self._queue: collections.deque = collections.deque()
        self._running: dict = {}
        self._worker_class = None
        self._evaluator_ref = None
        self.replaced_workers = 0
        #: ``host:port`` of the dashboard of a Ray instance started here (``None``: none).
        self.dashboard_url: str | None = None

    def describe(self) -> str:
        text = f"Ray ({self.max_in_flight or 'auto'} workers"
        if self.latency_resource:
            text += f", latency on resource {self.latency_resource}"
        if self.dashboard_url:
            text += f", dashboard http://{self.dashboard_url}"
        return text + ")"

    # ------------------------------------------------------------------ start
    def _on_loopback(self) -> bool:
        """Whether Ray is started or reached on this machine's loopback only."""
        return self.loopback and (self.address is None or _is_loopback(_address_host(self.address)))

    def start(self, evaluator) -> None:
        with loopback_environment() if self._on_loopback() else contextlib.nullcontext():
            ray = _import_ray()  # the first import reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER
        if not ray.is_initialized():
            options = {"include_dashboard": self.dashboard, "dashboard_host": "127.0.0.1",
                       "configure_logging": False}
            if self.address is None:
                if self.num_cpus is not None:
                    options["num_cpus"] = self.num_cpus
                if self.latency_resource:
                    options["resources"] = {self.latency_resource: 1}
            else:
                options["address"] = self.address
            options.update(self.init_options)
            local = self._on_loopback()
            try:
                with loopback_environment() if local else contextlib.nullcontext():
                    context = ray.init(**options)
            except Exception as err:  # noqa: BLE001 - Ray raises bare Exceptions here too
                hint = " (the dashboard needs pip install 'ray[default]')" if "dashboard" in str(err) else ""
                raise SearchConfigError(f"cannot start or reach Ray at {self.address or 'a local instance'}: "
                                        f"{_reason(err)}{hint}") from None
            self._owns_ray = True
            url = getattr(context, "dashboard_url", None)
            self.dashboard_url = url or None
            node = ray.util.get_node_ip_address()
            if local and not _is_loopback(node):
                warnings.warn(f"the local Ray instance listens on {node}, not on 127.0.0.1: Ray was imported before "
                              "the executor started it; set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 before importing ray",
                              RuntimeWarning, stacklevel=2)
        try:
            self._start_workers(ray, evaluator)
        except BaseException:
            self.close()
            raise

    def _start_workers(self, ray, evaluator) -> None:
        resources = ray.cluster_resources()
        if self.latency_resource:
            if not resources.get(self.latency_resource):
                raise SearchConfigError(f"no node of the Ray cluster has the resource {self.latency_resource!r} "
                                        f"(its resources: {sorted(resources)})")
            if not callable(getattr(evaluator, "with_latency_runner", None)):
                raise SearchConfigError(f"{type(evaluator).__name__} cannot send its latency measurement elsewhere "
                                        "(it has no with_latency_runner); leave latency_resource unset")
        if not self.max_in_flight:
            self.max_in_flight = max(1, int(resources.get("CPU", 1) // self.cpus_per_worker))
        self._evaluator_ref = ray.put(evaluator)
        self._worker_class = ray.remote(EvaluationWorker)
        self._actors = [self._new_actor() for _ in range(self.max_in_flight)]
        try:
            ray.get([actor.ready.remote() for actor in self._actors])
        except ray.exceptions.RayError as err:
            raise SearchConfigError(f"the Ray evaluation workers failed to start: {_reason(err)}") from None
        self._idle = collections.deque(self._actors)

    def _new_actor(self):
        latency = None
        if self.latency_resource:
            latency = {"resource": self.latency_resource, "max_retries": self.max_retries}
        return self._worker_class.options(num_cpus=self.cpus_per_worker, max_restarts=0, max_concurrency=1).remote(
            self._evaluator_ref, latency)

    # ------------------------------------------------------------------- jobs
    def submit(self, job: Job) -> None:
        if self._worker_class is None:
            raise RuntimeError("start() the executor first")
        self._queue.append(job)
        self._dispatch()

    def _dispatch(self) -> None:
        while self._queue and self._idle:
            actor = self._idle.popleft()
            job = self._queue.popleft()
            job.attempts += 1
            self._running[actor.evaluate.remote(job.blocks, job.artifact_dir)] = (job, actor)

    def wait(self) -> list[tuple[Job, dict]]:
        import ray

        out: list[tuple[Job, dict]] = []
        while not out:
            if not self._running:
                raise RuntimeError("wait() with no job submitted")
            refs = list(self._running)
            ray.wait(refs, num_returns=1)
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
            for ref in ready:
                job, actor = self._running.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as err:
                    job.errors.append(_reason(err))
                    if isinstance(err, (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError)):
                        actor = self._replace(actor)
                    if job.attempts > self.max_retries:
                        out.append((job, job.failure()))
                    else:
                        self._queue.appendleft(job)
                else:
                    out.append((job, job.outcome(result)))
                self._idle.append(actor)
            self._dispatch()
        return out

    def _replace(self, actor):
        import ray

        try:
            ray.kill(actor, no_restart=True)
        except Exception:  # noqa: BLE001 - already gone
            pass
        new = self._new_actor()
        self._actors = [new if a is actor else a for a in self._actors]
        self.replaced_workers += 1
        return new

    def close(self) -> None:
        if self._worker_class is None and not self._owns_ray:
            return
        ray = _import_ray()
        if ray.is_initialized():
            for actor in self._actors:
                try:
                    ray.kill(actor, no_restart=True)
                except Exception:  # noqa: BLE001
                    pass
        self._actors, self._running = [], {}
        self._idle.clear()
        self._queue.clear()
        self._worker_class = None
        self._evaluator_ref = None
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False


def _reason(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"[:300]
