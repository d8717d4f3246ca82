"""Random search: every decision drawn uniformly (the baseline every controller must beat)."""

from __future__ import annotations

from mnas_keras.search.controllers.base import Controller


class RandomSearch(Controller):
    """Uniform random samples; ``tell`` only counts.

    Example:
        >>> RandomSearch([2, 2, 3], seed=0).ask()
        Trial(id=0, decisions=(1, 1, 1))
    """

    name = "random"

    def _propose(self) -> list[int]:
        return self._uniform_sample()

    def _tell(self, trial_id, decisions, reward):
        pass
