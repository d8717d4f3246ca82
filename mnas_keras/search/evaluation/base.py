"""The evaluator interface: what the search calls for each architecture, and at the end.

:class:`Evaluator` is a :class:`typing.Protocol`: any object with its methods is an
evaluator (no base class needed). Only :meth:`Evaluator.evaluate` is required; the search
uses the others when an evaluator has them.

Example:
    >>> class Constant:
    ...     def evaluate(self, blocks, artifact_dir=None):
    ...         return {"status": "ok", "accuracy": 0.5, "latency_ms": 1.0}
    >>> isinstance(Constant(), Evaluator)
    True
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence, runtime_checkable


@runtime_checkable
class Evaluator(Protocol):
    """Evaluates architectures for the search.

    Optional members, used when present:

    * ``config() -> dict``: what defines the evaluator, stored in ``config.json`` and
      checked on resume (default: its class name).
    * ``saves_artifacts: bool``: True when :meth:`evaluate` writes ``model.keras`` /
      ``model.tflite`` into ``artifact_dir`` (the search then gives it one).
    * ``export(entries, folder) -> dict``: models and a latency report for the exported
      architectures (``{entry name: extra index fields}``).
    * ``finalize(records, journal, rescore, log)``: called once after the loop with the
      distinct records (step order); may change records in place (for example measure the
      Pareto front's predicted latencies), journal what it did and rescore changed records
      with ``rescore(record) -> reward``.
    * ``with_latency_runner(runner) -> evaluator``: a copy whose latency measurements run
      through ``runner(fn, *args, **kwargs)`` (the Ray executor's ``latency_resource``
      passes one that runs them on a latency device's node).
    """

    def evaluate(self, blocks: Sequence[str], artifact_dir: str | None = None) -> dict[str, Any]:
        """One architecture's result: ``status`` (``"ok"``/``"failed"``), ``accuracy`` (0-1),
        ``latency_ms`` (> 0, milliseconds), ``reason`` for failures, and any other
        JSON-able fields (journaled as they are)."""


#: ``finalize``'s ``rescore`` argument: a record -> its reward.
Rescore = Callable[[dict], float]
