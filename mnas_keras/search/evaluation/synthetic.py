"""Synthetic objectives with a known optimum, and a synthetic evaluator (no TensorFlow).

:class:`SyntheticObjective` scores a sample of a space as ``floor + (1 - floor) * q``,
where ``q`` in [0, 1] is a weighted sum of per-decision scores: each decision has one best
choice (score 1) and random scores in [0, 1) for the others, and the weights decay
exponentially over a random order of the decisions (a few decisions matter much more than
the rest, as width and depth do in real spaces). ``floor = 0.8`` mimics a real space whose
worst networks reach about 80% of the best one's accuracy (60% against 75% on ImageNet).
The optimum is exactly 1.0 and known, which lets tests and benchmarks count how many
samples each controller needs to reach 99% of it.

:class:`SyntheticEvaluator` follows the evaluator protocol of :mod:`mnas_keras.search.run.search`
(``evaluate(blocks) -> dict``) without training anything: accuracy from the objective and a
latency from a multiply-add estimate. It drives fast dry runs (``mnas-search
--evaluator=synthetic``) and the resume tests.

Example:
    >>> from mnas_keras.search.space import mnasnet_space
    >>> objective = SyntheticObjective(mnasnet_space().num_choices, seed=0)
    >>> objective(objective.optimum_sample())
    1.0
    >>> 0.8 <= objective([0] * 42) < 1.0
    True
"""

from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np

from mnas_keras.codec import decode
from mnas_keras.search.space import SearchSpace, arch_key


class SyntheticObjective:
    """A separable objective over a space's decisions with a known optimum of 1.0.

    Args:
        num_choices: choices per decision.
        seed: seed of the scores, weights and order.
        tau: decay length of the decision weights (``w_k ~ exp(-k / tau)``).
        floor: the value of ``q = 0`` (the worst possible sample).
    """

    def __init__(self, num_choices: Sequence[int], seed: int = 0, tau: float = 5.0, floor: float = 0.8):
        rng = np.random.Generator(np.random.PCG64([int(seed), 7]))
        self.num_choices = list(num_choices)
        self.floor = float(floor)
        weights = np.exp(-np.arange(len(self.num_choices)) / float(tau))
        weights = weights[rng.permutation(len(weights))]
        self.weights = weights / weights.sum()
        self.scores = []
        for n in self.num_choices:
            s = rng.uniform(0.0, 1.0, size=n)
            s[int(rng.integers(n))] = 1.0
            self.scores.append(s)
        scale = 1.0 - self.floor
        self._table = [scale * w * s for w, s in zip(self.weights, self.scores)]

    def __call__(self, decisions: Sequence[int]) -> float:
        return float(min(1.0, self.floor + sum(t[d] for t, d in zip(self._table, decisions))))

    def batch(self, samples: np.ndarray) -> np.ndarray:
        """Vectorized values of an int array of samples (N, decisions)."""
        samples = np.asarray(samples)
        return np.minimum(1.0, self.floor + sum(t[samples[:, i]] for i, t in enumerate(self._table)))

    def optimum_sample(self) -> list[int]:
        return [int(np.argmax(s)) for s in self.scores]

    @property
    def optimum(self) -> float:
        return 1.0


def estimate_madds(blocks: Sequence[str], input_size: int = 224, stem_filters: int = 32,
                   head_filters: int = 1280, classes: int = 1000) -> int:
    """A multiply-add count of a MnasNet-style network from its block strings.

    Counts the convolutions (stem, blocks, 1x1 head, classifier) and SE's 1x1 convs; a
    rough latency proxy for synthetic runs, not the profiler of :mod:`mnas_keras.models`.

    Example:
        >>> from mnas_keras.codec import get_architecture
        >>> round(estimate_madds(get_architecture("mnasnet_a1").blocks) / 1e6)
        312
    """
    size = math.ceil(input_size / 2)
    total = size * size * 3 * 9 * stem_filters
    for spec in decode(blocks):
        for block in spec.expand():
            i, o, k = block.input_filters, block.output_filters, block.kernel
            e = float(block.expansion)
            out = math.ceil(size / block.strides[0])
            mid = int(round(i * e))
            if block.op == "mbconv":
                total += (size * size * i * mid if e != 1 else 0) + out * out * mid * (k * k + o)
            elif block.op == "conv":
                total += out * out * k * k * i * mid + (out * out * mid * o if e != 1 else 0)
            else:  # dsconv
                total += out * out * i * (k * k + o)
            # UIB start / end depthwise convs (the start one takes the stride without a middle one).
            start_size = size if block.kernel else out
            total += start_size * start_size * i * block.start_kernel ** 2 + out * out * o * block.end_kernel ** 2
            if block.se_ratio:
                squeeze = max(1, int(i * block.se_ratio))
                total += 2 * mid * squeeze + out * out * mid
            if block.skip == "pool" and (block.strides != (1, 1) or i != o):
                total += out * out * i * o
            size = out
        last = spec.output_filters
    return int(total + size * size * last * head_filters + head_filters * classes)


class SyntheticEvaluator:
    """Evaluates architectures without training: for dry runs and tests.

    ``accuracy = 0.75 * objective(space.encode(blocks))`` (60% to 75%),
    ``latency_ms = madds / 1e8`` (about 3 ms for MnasNet-A1 at 224). ``delay_s`` sleeps per
    evaluation to imitate cost. Each call's key is appended to ``log_path`` if given (the
    resume tests count evaluations with it).

    Example:
        >>> from mnas_keras.search.space import mnasnet_space
        >>> space = mnasnet_space()
        >>> result = SyntheticEvaluator(space).evaluate(space.reference_blocks())
        >>> result["status"], round(result["latency_ms"], 2)
        ('ok', 3.01)
    """

    def __init__(self, space: SearchSpace, seed: int = 0, delay_s: float = 0.0, log_path: str | None = None,
                 input_size: int = 224):
        self.space = space
        self.seed = int(seed)
        self.objective = SyntheticObjective(space.num_choices, seed=seed)
        self.delay_s = float(delay_s)
        self.log_path = log_path
        self.input_size = input_size

    def config(self) -> dict:
        return {"type": "SyntheticEvaluator", "seed": self.seed, "input_size": self.input_size}

    def evaluate(self, blocks: Sequence[str], artifact_dir: str | None = None) -> dict:
        key = arch_key(blocks)
        if self.log_path:
            with open(self.log_path, "a") as f:
                f.write(key + "\n")
        start = time.perf_counter()
        if self.delay_s:
            time.sleep(self.delay_s)
        quality = self.objective(self.space.encode(blocks))
        if hasattr(self.space, "estimate_madds"):  # the cell and macro spaces (mnas_keras.search.spaces)
            madds = self.space.estimate_madds(blocks, input_size=self.input_size)
        else:
            madds = estimate_madds(blocks, input_size=self.input_size, stem_filters=self.space.stem_filters)
        return {
            "status": "ok",
            "accuracy": 0.75 * quality,
            "latency_ms": madds / 1e8,
            "madds": madds,
            "eval_seconds": time.perf_counter() - start,
        }
