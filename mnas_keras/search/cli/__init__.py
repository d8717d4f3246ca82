"""The search's commands: ``mnas-search`` (:mod:`~mnas_keras.search.cli.search`),
``mnas-latency-table`` (:mod:`~mnas_keras.search.cli.latency_table`) and ``mnas-ablation``
(:mod:`~mnas_keras.search.cli.ablation`).

``python -m mnas_keras.search.cli`` is ``mnas-search``. Flags are defined when a command
runs, not on import.
"""

from mnas_keras.search.cli.search import main, run

__all__ = ["main", "run"]
