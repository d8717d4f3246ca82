"""Evaluators: what the search loop calls for an architecture's accuracy and latency.

An evaluator is any object with ``evaluate(blocks, artifact_dir=None) -> dict`` (``status``
``"ok"`` or ``"failed"``, ``accuracy``, ``latency_ms``, ``reason`` for failures); it may
also offer ``config()`` (stored in ``config.json``), ``saves_artifacts``,
``export(entries, folder)`` and ``finalize(records, journal, rescore, log)`` (after the
loop). :class:`~mnas_keras.search.evaluation.base.Evaluator` is that interface as a
``typing.Protocol``.

* :mod:`~mnas_keras.search.evaluation.proxy`: :class:`ProxyEvaluator` (proxy training in
  TensorFlow, LiteRT latency measured or from a table); TensorFlow is imported on first use.
* :mod:`~mnas_keras.search.evaluation.synthetic`: :class:`SyntheticEvaluator` (a seeded,
  instant stand-in, for tests and dry runs).
* :mod:`~mnas_keras.search.evaluation.export`: models and a latency report for exported
  architectures.
"""
