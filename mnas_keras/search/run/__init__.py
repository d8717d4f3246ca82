"""A search run: :class:`~mnas_keras.search.run.search.Search` (configuration, validation,
run directory, outputs), :class:`~mnas_keras.search.run.loop.SearchLoop` (the one loop:
ask, evaluate on an executor, tell), :mod:`~mnas_keras.search.run.journal` (run
directory, journal, checkpoints; plain JSON) and :mod:`~mnas_keras.search.run.summaries`
(TensorBoard scalars without TensorFlow)."""
