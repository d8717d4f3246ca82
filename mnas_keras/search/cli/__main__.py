"""``python -m mnas_keras.search.cli``: ``mnas-search``."""

from mnas_keras.search.cli.search import run

run()
