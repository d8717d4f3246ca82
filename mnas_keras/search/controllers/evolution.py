"""Regularized (aging) evolution (Real et al. 2019): tournament selection, one-decision
mutation, the oldest member dies."""

from __future__ import annotations

from mnas_keras.search.controllers.base import Controller
from mnas_keras.search.errors import SearchConfigError


class RegularizedEvolution(Controller):
    """Regularized evolution.

    Until ``population_size`` samples have been told, samples are random. Then each
    ``ask`` draws ``sample_size`` members of the population at random, takes the best as
    parent and changes one of its decisions (chosen uniformly, to a different choice).
    Each ``tell`` appends to the population and removes its oldest member beyond
    ``population_size``.

    Args:
        population_size: living population (100 in Real et al.).
        sample_size: tournament size (25 in Real et al.).

    Example:
        >>> evo = RegularizedEvolution([3, 3], seed=0, population_size=2, sample_size=2)
        >>> for _ in range(2):
        ...     t = evo.ask(); evo.tell(t.id, float(sum(t.decisions)))
        >>> child = evo.ask().decisions
        >>> sum(a != b for a, b in zip(child, max(evo.population, key=lambda m: m[1])[0]))
        1
    """

    name = "evolution"

    def __init__(self, num_choices, seed=0, names=None, population_size: int = 100, sample_size: int = 25):
        super().__init__(num_choices, seed, names)
        if population_size < 1 or sample_size < 1 or sample_size > population_size:
            raise SearchConfigError(
                f"need 1 <= sample_size <= population_size; received sample_size={sample_size}, "
                f"population_size={population_size}"
            )
        self.population_size = int(population_size)
        self.sample_size = int(sample_size)
        self.population: list[tuple[list[int], float]] = []
        self._mutable = [i for i, n in enumerate(self.num_choices) if n > 1]

    def config(self):
        return {"population_size": self.population_size, "sample_size": self.sample_size}

    def _propose(self) -> list[int]:
        if len(self.population) < self.population_size or not self._mutable:
            return self._uniform_sample()
        picks = self.rng.choice(len(self.population), size=self.sample_size, replace=False)
        parent = max((self.population[int(i)] for i in picks), key=lambda member: member[1])[0]
        child = list(parent)
        index = self._mutable[int(self.rng.integers(len(self._mutable)))]
        new = int(self.rng.integers(self.num_choices[index] - 1))
        child[index] = new if new < child[index] else new + 1
        return child

    def _tell(self, trial_id, decisions, reward):
        self.population.append((list(decisions), float(reward)))
        if len(self.population) > self.population_size:
            self.population.pop(0)

    def stats(self):
        out = super().stats()
        if self.population:
            rewards = [r for _, r in self.population]
            out["population_best"] = max(rewards)
            out["population_mean"] = sum(rewards) / len(rewards)
        return out

    def probabilities(self):
        """Choice frequencies in the living population (uniform while it is empty)."""
        if not self.population:
            return super().probabilities()
        out = []
        for i, n in enumerate(self.num_choices):
            counts = [0] * n
            for member, _ in self.population:
                counts[member[i]] += 1
            out.append([c / len(self.population) for c in counts])
        return out

    def _state(self):
        return {"population": [[list(d), r] for d, r in self.population]}

    def _load(self, state):
        self.population = [(list(map(int, d)), float(r)) for d, r in state["population"]]
