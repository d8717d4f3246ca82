"""REINFORCE over independent per-decision logits (TuNAS, Bender et al. 2020)."""

from __future__ import annotations

import numpy as np

from mnas_keras.search.controllers.base import (
    Adam, Controller, MovingAverageBaseline, _entropy, softmax, to_json,
)
from mnas_keras.search.errors import SearchConfigError


class Reinforce(Controller):
    """One logit vector per decision, trained by REINFORCE.

    Policy: each decision is an independent categorical over its choices. Update per
    ``batch_size`` samples: the gradient of ``(R - b) * log p(sample)`` (with ``b`` an
    exponential moving average of rewards, momentum ``baseline_decay``), applied by Adam
    with ``beta1 = 0`` as in TuNAS. TuNAS used ``lr = 3e-4`` over tens of thousands of
    steps of a weight-sharing supernet; with one fully evaluated model per step a larger
    rate (the default) is needed.

    Parallel evaluation: ``tell`` uses the told trial's own decisions (nothing else is kept
    from ``ask``), so several trials may be outstanding; a trial told after an update
    contributes its score function under the current logits (the usual asynchronous,
    slightly stale, policy gradient).

    Args:
        lr: Adam learning rate.
        baseline_decay: momentum of the moving-average baseline (0.95).
        beta1, beta2: Adam betas (TuNAS: 0 and 0.999).
        batch_size: samples per update.
        entropy_weight: optional entropy bonus (0 in TuNAS).

    Example:
        >>> c = Reinforce([2, 2], seed=0, lr=0.5)
        >>> for _ in range(30):
        ...     t = c.ask(); c.tell(t.id, float(t.decisions == (1, 0)))
        >>> [round(p[i], 1) > 0.5 for p, i in zip(c.probabilities(), [1, 0])]
        [True, True]
    """

    name = "reinforce"

    def __init__(self, num_choices, seed=0, names=None, lr: float = 0.05, baseline_decay: float = 0.95,
                 beta1: float = 0.0, beta2: float = 0.999, batch_size: int = 1, entropy_weight: float = 0.0):
        super().__init__(num_choices, seed, names)
        if batch_size < 1:
            raise SearchConfigError(f"batch_size must be >= 1; received {batch_size}")
        self.batch_size = int(batch_size)
        self.entropy_weight = float(entropy_weight)
        self.logits = [np.zeros(n) for n in self.num_choices]
        self.optimizer = Adam([(n,) for n in self.num_choices], lr=lr, beta1=beta1, beta2=beta2)
        self.baseline = MovingAverageBaseline(baseline_decay)
        self.buffer: list[tuple[list[int], float]] = []

    def config(self):
        o = self.optimizer
        return {"lr": o.lr, "baseline_decay": self.baseline.decay, "beta1": o.beta1, "beta2": o.beta2,
                "batch_size": self.batch_size, "entropy_weight": self.entropy_weight}

    def _propose(self) -> list[int]:
        return [self._categorical(softmax(l)) for l in self.logits]

    def _tell(self, trial_id, decisions, reward):
        self.buffer.append((decisions, self.baseline.advantage(reward)))
        if len(self.buffer) >= self.batch_size:
            self._update()

    def _update(self):
        grads = [np.zeros(n) for n in self.num_choices]
        for decisions, advantage in self.buffer:
            for g, l, a in zip(grads, self.logits, decisions):
                p = softmax(l)
                g -= advantage * p
                g[a] += advantage
        if self.entropy_weight:
            for g, l in zip(grads, self.logits):
                p = softmax(l)
                h = _entropy(p)
                g += self.entropy_weight * len(self.buffer) * (-p * (np.log(p) + h))
        grads = [g / len(self.buffer) for g in grads]
        self.optimizer.step(self.logits, grads)
        self.buffer = []

    def probabilities(self):
        return [softmax(l).tolist() for l in self.logits]

    def stats(self):
        out = super().stats()
        if self.baseline.value is not None:
            out["baseline"] = self.baseline.value
        return out

    def _state(self):
        return {"logits": to_json(self.logits), "adam": self.optimizer.state(),
                "baseline": self.baseline.value, "buffer": [[d, a] for d, a in self.buffer]}

    def _load(self, state):
        self.logits = [np.asarray(l, dtype=np.float64) for l in state["logits"]]
        self.optimizer.load(state["adam"])
        self.baseline.value = None if state["baseline"] is None else float(state["baseline"])
        self.buffer = [(list(map(int, d)), float(a)) for d, a in state["buffer"]]
