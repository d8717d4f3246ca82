"""The controller interface (ask/tell by trial id, JSON state) and the numpy helpers
controllers share.

A controller proposes samples of a search space as lists of choice indices, one per
decision: :meth:`Controller.ask` returns a :class:`Trial` (an id and the decisions), and
:meth:`Controller.tell` takes the trial's id and its reward, as Ray Tune's searchers
(``suggest(trial_id)`` / ``on_trial_complete(trial_id, result)``) and KerasTuner's oracles
do. Several trials may be outstanding (parallel evaluation); a controller finds what it
kept about a proposal by its id, never by comparing decisions (two trials may propose the
same network under different policies). A sample that no ``ask`` proposed (a known
network) is reported with :meth:`Controller.tell_sample`.

The whole state, random generator and outstanding trials included, round-trips through
JSON exactly (floats are written with ``repr``, large arrays as base64 of their float64
bytes), so a resumed search continues bit for bit.

Example:
    >>> from mnas_keras.search.controllers import RandomSearch
    >>> c = RandomSearch([2, 3], seed=0)
    >>> trial = c.ask(); trial
    Trial(id=0, decisions=(1, 1))
    >>> c.tell(trial.id, 0.5)
    >>> c2 = RandomSearch([2, 3], seed=1); c2.load_state(c.state_dict())
    >>> c2.ask() == c.ask()
    True
"""

from __future__ import annotations

import abc
import base64
import copy
import dataclasses
import math
from typing import Any, Sequence

import numpy as np

from mnas_keras.search.errors import SearchConfigError


@dataclasses.dataclass(frozen=True)
class Trial:
    """One proposal of :meth:`Controller.ask`.

    Attributes:
        id: the trial's id, what :meth:`Controller.tell` takes (the search loop uses its step).
        decisions: one choice index per decision of the space.
    """

    id: int
    decisions: tuple[int, ...]


class Controller(abc.ABC):
    """Base class: proposes trials (``ask``) and learns from their rewards (``tell``).

    Subclasses implement ``_propose()`` (the next decisions) and
    ``_tell(trial_id, decisions, reward)`` (``trial_id`` is None for :meth:`tell_sample`),
    and may keep per-trial data in ``_asked(trial_id, decisions)``.

    Args:
        num_choices: the number of choices of each decision (``SearchSpace.num_choices``).
        seed: seed of the controller's random generator.
        names: optional decision names (for summaries), e.g. ``"stage3/kernel"``.
    """

    #: Registry name (``make_controller``).
    name: str = ""

    def __init__(self, num_choices: Sequence[int], seed: int = 0, names: Sequence[str] | None = None):
        num_choices = list(num_choices)
        if not num_choices:
            raise SearchConfigError("a controller needs at least one decision; the space has none")
        for n in num_choices:
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise SearchConfigError(f"num_choices must be positive integers; received {num_choices!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise SearchConfigError(f"seed must be an integer; received {seed!r}")
        self.num_choices = [int(n) for n in num_choices]
        self.seed = int(seed)
        self.names = list(names) if names is not None else [f"d{i}" for i in range(len(num_choices))]
        if len(self.names) != len(self.num_choices):
            raise SearchConfigError("names must have one entry per decision")
        self.rng = np.random.Generator(np.random.PCG64(self.seed))
        self.num_told = 0
        self.num_asked = 0
        #: ``{trial id: decisions}`` of the trials asked and not told yet, in ask order.
        self.outstanding: dict[int, list[int]] = {}

    # ---------------------------------------------------------------- interface
    def ask(self, trial_id: int | None = None) -> Trial:
        """Proposes the next trial.

        Args:
            trial_id: the id to give it (the search loop passes its step); default: the
                number of trials asked so far.

        Raises:
            SearchConfigError: ``trial_id`` is already outstanding.
        """
        trial_id = self.num_asked if trial_id is None else _trial_id(trial_id)
        if trial_id in self.outstanding:
            raise SearchConfigError(f"trial {trial_id} is already outstanding (asked and not told)")
        decisions = self._check_sample(self._propose())
        self.outstanding[trial_id] = decisions
        self._asked(trial_id, decisions)
        self.num_asked += 1
        return Trial(trial_id, tuple(decisions))

    def tell(self, trial: Trial | int, reward: float) -> None:
        """Reports the reward of an outstanding trial (a :class:`Trial` or its id).

        Raises:
            SearchConfigError: the trial is not outstanding, or the reward is not finite.
        """
        trial_id = _trial_id(trial.id if isinstance(trial, Trial) else trial)
        if trial_id not in self.outstanding:
            raise SearchConfigError(
                f"trial {trial_id} is not outstanding (asked and not told yet; outstanding: "
                f"{sorted(self.outstanding)[:10]}); report a sample ask() did not propose with tell_sample()")
        reward = _finite(reward)
        self._tell(trial_id, self.outstanding.pop(trial_id), reward)
        self.num_told += 1

    def tell_sample(self, decisions: Sequence[int], reward: float) -> None:
        """Reports the reward of a sample that no :meth:`ask` proposed (e.g. a known network)."""
        decisions = self._check_sample(decisions)
        self._tell(None, decisions, _finite(reward))
        self.num_told += 1

    @abc.abstractmethod
    def _propose(self) -> list[int]:
        """The next sample's decisions."""

    def _asked(self, trial_id: int, decisions: list[int]) -> None:
        """Called once per trial after ``_propose`` (what a controller keeps per trial)."""

    @abc.abstractmethod
    def _tell(self, trial_id: int | None, decisions: list[int], reward: float) -> None:
        ...

    @property
    def checkpoint_due(self) -> bool:
        """Whether the state changed enough to be worth writing (a controller whose large
        state changes only at updates, PPO, says False between them; a resumed search
        replays the journal after the last checkpoint, so skipping one loses nothing)."""
        return True

    def config(self) -> dict[str, Any]:
        """Constructor options besides ``num_choices``/``seed``/``names`` (JSON-able)."""
        return {}

    def probabilities(self) -> list[list[float]]:
        """Per-decision choice probabilities (uniform unless the controller learns)."""
        return [[1.0 / n] * n for n in self.num_choices]

    def stats(self) -> dict[str, float]:
        """Scalars for logs and TensorBoard (e.g. baseline, entropy)."""
        probs = self.probabilities()
        return {"entropy": float(sum(_entropy(np.asarray(p)) for p in probs))}

    # ------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """The whole state as JSON-able data (see :meth:`load_state`)."""
        return {
            "controller": self.name,
            "config": self.config(),
            "num_choices": list(self.num_choices),
            "seed": self.seed,
            "names": list(self.names),
            "num_told": self.num_told,
            "num_asked": self.num_asked,
            "outstanding": [[i, list(d)] for i, d in self.outstanding.items()],
            "rng": copy.deepcopy(self.rng.bit_generator.state),
            "state": self._state(),
        }

    def load_state(self, state: dict[str, Any], outstanding: dict[int, Sequence[int]] | None = None) -> None:
        """Restores :meth:`state_dict` output (checked against this controller's shape).

        Args:
            state: the saved state.
            outstanding: only for a state saved before trials had ids (no ``"outstanding"``
                entry): ``{trial id: decisions}`` of the proposals asked and not told when
                it was saved, in ask order (the search loop takes them from its journal).
        """
        if not isinstance(state, dict) or "controller" not in state:
            raise SearchConfigError("controller state must be a dict from state_dict()")
        if state["controller"] != self.name:
            raise SearchConfigError(
                f"controller state is for {state['controller']!r}; this controller is {self.name!r}"
            )
        if list(state["num_choices"]) != self.num_choices:
            raise SearchConfigError(
                f"controller state has decisions {state['num_choices']}; expected {self.num_choices} "
                "(was the search space changed?)"
            )
        config = state.get("config", {})
        if config != self.config():
            raise SearchConfigError(
                f"controller state was saved with options {config}; this controller has {self.config()}"
            )
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
        self.num_told = int(state["num_told"])
        if "outstanding" in state:
            self.outstanding = {int(i): [int(x) for x in d] for i, d in state["outstanding"]}
            self.num_asked = int(state["num_asked"])
        else:  # saved before trials had ids
            self.outstanding = {_trial_id(i): self._check_sample(d) for i, d in (outstanding or {}).items()}
            self.num_asked = self.num_told + len(self.outstanding)
        self._load(state["state"])

    def _state(self) -> dict[str, Any]:
        return {}

    def _load(self, state: dict[str, Any]) -> None:
        pass

    # ----------------------------------------------------------------- helpers
    def _check_sample(self, decisions: Sequence[int]) -> list[int]:
        decisions = [int(d) for d in decisions]
        if len(decisions) != len(self.num_choices):
            raise SearchConfigError(
                f"a sample has {len(self.num_choices)} decisions; received {len(decisions)}"
            )
        for i, (d, n) in enumerate(zip(decisions, self.num_choices)):
            if not 0 <= d < n:
                raise SearchConfigError(f"decision {self.names[i]}: index {d} not in 0..{n - 1}")
        return decisions

    def _uniform_sample(self) -> list[int]:
        return [int(self.rng.integers(n)) for n in self.num_choices]

    def _categorical(self, probs: np.ndarray) -> int:
        """One draw from ``probs`` with this controller's generator (one uniform number)."""
        u = self.rng.random()
        index = int(np.searchsorted(np.cumsum(probs), u * float(np.sum(probs)), side="right"))
        return min(index, len(probs) - 1)


def _trial_id(value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise SearchConfigError(f"a trial id is an integer (Trial.id); received {value!r}")
    return int(value)


def _finite(reward) -> float:
    try:
        value = float(reward)
    except (TypeError, ValueError):
        raise SearchConfigError(f"reward must be a finite number; received {reward!r}") from None
    if not math.isfinite(value):
        raise SearchConfigError(f"reward must be finite; received {reward!r}")
    return value


# ----------------------------------------------------------------------- numpy helpers
def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis."""
    z = logits - np.max(logits, axis=-1, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=-1, keepdims=True)


def _entropy(p: np.ndarray) -> float:
    p = np.asarray(p, dtype=np.float64)
    nz = p[p > 0]
    return float(-np.sum(nz * np.log(nz)))


def to_json(value):
    """numpy arrays (nested in lists/dicts) to lists of Python floats."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def encode_array(array: np.ndarray) -> dict:
    """An exact, compact JSON form of a float64 array: base64 of its little-endian bytes.

    Example:
        >>> a = np.array([[0.1, 1 / 3]])
        >>> bool(np.array_equal(decode_array(encode_array(a)), a))
        True
    """
    array = np.ascontiguousarray(array, dtype="<f8")
    return {"shape": list(array.shape), "float64_b64": base64.b64encode(array.tobytes()).decode("ascii")}


def decode_array(data) -> np.ndarray:
    """Inverse of :func:`encode_array` (plain nested lists are accepted too)."""
    if isinstance(data, dict):
        raw = base64.b64decode(data["float64_b64"])
        return np.frombuffer(raw, dtype="<f8").reshape(data["shape"]).astype(np.float64)
    return np.asarray(data, dtype=np.float64)


class Adam:
    """Adam over a list of numpy arrays (ascent on an objective), JSON state.

    ``beta1 = 0`` gives TuNAS's variant (no momentum).
    """

    def __init__(self, shapes: Sequence[tuple], lr: float, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8):
        if not lr > 0:
            raise SearchConfigError(f"learning rate must be > 0; received {lr!r}")
        if not 0 <= beta1 < 1 or not 0 <= beta2 < 1:
            raise SearchConfigError(f"Adam betas must be in [0, 1); received beta1={beta1}, beta2={beta2}")
        self.lr, self.beta1, self.beta2, self.eps = float(lr), float(beta1), float(beta2), float(eps)
        self.m = [np.zeros(s) for s in shapes]
        self.v = [np.zeros(s) for s in shapes]
        self.t = 0

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """In place: ``params += lr * m_hat / (sqrt(v_hat) + eps)`` (gradient ascent)."""
        self.t += 1
        c1 = 1.0 - self.beta1 ** self.t
        c2 = 1.0 - self.beta2 ** self.t
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m *= self.beta1
            m += (1.0 - self.beta1) * g
            v *= self.beta2
            v += (1.0 - self.beta2) * g * g
            p += self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)

    def state(self) -> dict:
        return {"t": self.t, "m": [encode_array(a) for a in self.m], "v": [encode_array(a) for a in self.v]}

    def load(self, state: dict) -> None:
        self.t = int(state["t"])
        self.m = [decode_array(a).reshape(m.shape) for a, m in zip(state["m"], self.m)]
        self.v = [decode_array(a).reshape(v.shape) for a, v in zip(state["v"], self.v)]


class MovingAverageBaseline:
    """Exponential moving average of rewards: ``b = decay * b + (1 - decay) * r``.

    The first reward initializes it, so the first advantage is zero.

    Example:
        >>> b = MovingAverageBaseline(0.95)
        >>> b.advantage(1.0), b.advantage(2.0), round(b.value, 4)
        (0.0, 1.0, 1.05)
    """

    def __init__(self, decay: float = 0.95):
        if not 0 <= decay < 1:
            raise SearchConfigError(f"baseline decay must be in [0, 1); received {decay!r}")
        self.decay = float(decay)
        self.value: float | None = None

    def advantage(self, reward: float) -> float:
        """``reward - baseline`` (before the baseline takes in ``reward``), then update."""
        if self.value is None:
            self.value = float(reward)
        advantage = float(reward) - self.value
        self.value = self.decay * self.value + (1.0 - self.decay) * float(reward)
        return advantage
