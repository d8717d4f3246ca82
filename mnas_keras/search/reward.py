"""Accuracy/latency rewards of platform-aware search (no TensorFlow).

* MnasNet (Tan et al. 2019): ``ACC * (LAT / T) ** w`` with ``w = alpha`` if ``LAT <= T``
  else ``beta``. Soft constraint: ``alpha = beta = -0.07``; hard: ``alpha = 0, beta = -1``.
* TuNAS absolute (Bender et al. 2020): ``ACC + beta * |LAT / T - 1|`` with ``beta = -0.1``.

Example:
    >>> reward = Reward("soft", target_ms=10.0)
    >>> round(reward(0.75, 20.0), 6) == round(0.75 * 2 ** -0.07, 6)
    True
    >>> Reward("hard", target_ms=10.0)(0.75, 5.0), Reward("absolute", target_ms=10.0)(0.75, 15.0)
    (0.75, 0.7)
"""

from __future__ import annotations

import dataclasses
import math

from mnas_keras.search.errors import SearchConfigError

KINDS = ("soft", "hard", "mnasnet", "absolute")
_DEFAULTS = {
    "soft": (-0.07, -0.07),
    "hard": (0.0, -1.0),
    "mnasnet": (-0.07, -0.07),
    "absolute": (None, -0.1),
}


def _check(accuracy, latency_ms, target_ms):
    for name, value in (("accuracy", accuracy), ("latency_ms", latency_ms), ("target_ms", target_ms)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise SearchConfigError(f"{name} must be a finite number; received {value!r}")
    if latency_ms <= 0:
        raise SearchConfigError(f"latency_ms must be > 0; received {latency_ms!r}")
    if target_ms <= 0:
        raise SearchConfigError(f"target_ms must be > 0; received {target_ms!r}")


def mnasnet_reward(accuracy: float, latency_ms: float, target_ms: float,
                   alpha: float = -0.07, beta: float = -0.07) -> float:
    """MnasNet's multi-objective reward ``ACC * (LAT/T)^w``.

    Example:
        >>> mnasnet_reward(0.8, 5.0, 10.0, alpha=0.0, beta=-1.0)
        0.8
    """
    _check(accuracy, latency_ms, target_ms)
    w = alpha if latency_ms <= target_ms else beta
    return float(accuracy * (latency_ms / target_ms) ** w)


def absolute_reward(accuracy: float, latency_ms: float, target_ms: float, beta: float = -0.1) -> float:
    """TuNAS's absolute reward ``ACC + beta * |LAT/T - 1|``.

    Example:
        >>> absolute_reward(0.8, 5.0, 10.0)
        0.75
    """
    _check(accuracy, latency_ms, target_ms)
    return float(accuracy + beta * abs(latency_ms / target_ms - 1.0))


@dataclasses.dataclass(frozen=True)
class Reward:
    """A reward function with its target latency and exponents.

    Args:
        kind: ``"soft"`` (MnasNet, alpha = beta = -0.07), ``"hard"`` (alpha = 0, beta = -1),
            ``"mnasnet"`` (give alpha and beta) or ``"absolute"`` (TuNAS, beta = -0.1).
        target_ms: the target latency T in milliseconds.
        alpha: exponent when ``LAT <= T`` (MnasNet kinds); ``None`` = the kind's default.
        beta: exponent when ``LAT > T`` (MnasNet kinds) or the absolute penalty's weight.
    """

    kind: str = "soft"
    target_ms: float = 1.0
    alpha: float | None = None
    beta: float | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise SearchConfigError(f"reward kind must be one of {list(KINDS)}; received {self.kind!r}")
        target = self.target_ms
        if isinstance(target, bool) or not isinstance(target, (int, float)) or not target > 0 or not math.isfinite(target):
            raise SearchConfigError(f"target_ms must be a positive number; received {target!r}")
        default_alpha, default_beta = _DEFAULTS[self.kind]
        if self.kind == "absolute" and self.alpha is not None:
            raise SearchConfigError("the absolute reward takes no alpha (only beta, the penalty weight)")
        object.__setattr__(self, "alpha", default_alpha if self.alpha is None else float(self.alpha))
        object.__setattr__(self, "beta", default_beta if self.beta is None else float(self.beta))
        object.__setattr__(self, "target_ms", float(target))

    def __call__(self, accuracy: float, latency_ms: float) -> float:
        if self.kind == "absolute":
            return absolute_reward(accuracy, latency_ms, self.target_ms, beta=self.beta)
        return mnasnet_reward(accuracy, latency_ms, self.target_ms, alpha=self.alpha, beta=self.beta)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Reward":
        return cls(**data)
