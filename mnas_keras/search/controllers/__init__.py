"""Search controllers behind one interface (``ask`` returns a :class:`Trial`, ``tell(trial_id,
reward)``, ``state_dict``/``load_state``). A new controller subclasses :class:`Controller`
(``_propose``, ``_tell``) and joins ``CONTROLLERS``.

* ``random``: :class:`RandomSearch`
* ``evolution``: :class:`RegularizedEvolution` (Real et al. 2019)
* ``reinforce``: :class:`Reinforce`, independent per-decision logits (TuNAS)
* ``ppo``: :class:`PPOController`, the MnasNet paper's LSTM policy trained with PPO

Example:
    >>> c = make_controller("reinforce", [2, 3], seed=0)
    >>> c2 = controller_from_state(c.state_dict())
    >>> c2.name, c2.ask() == c.ask()
    ('reinforce', True)
"""

from __future__ import annotations

from typing import Any, Sequence

from mnas_keras.search.controllers.base import Controller, Trial
from mnas_keras.search.controllers.evolution import RegularizedEvolution
from mnas_keras.search.controllers.ppo import PPOController
from mnas_keras.search.controllers.random_search import RandomSearch
from mnas_keras.search.controllers.reinforce import Reinforce
from mnas_keras.search.errors import SearchConfigError

CONTROLLERS = {c.name: c for c in (RandomSearch, RegularizedEvolution, Reinforce, PPOController)}


def make_controller(name: str, num_choices: Sequence[int], seed: int = 0,
                    names: Sequence[str] | None = None, **options: Any) -> Controller:
    """Builds a controller by registry name; ``options`` go to its constructor."""
    if name not in CONTROLLERS:
        raise SearchConfigError(f"unknown controller {name!r}; expected one of {sorted(CONTROLLERS)}")
    try:
        return CONTROLLERS[name](num_choices, seed=seed, names=names, **options)
    except TypeError as err:
        raise SearchConfigError(f"bad option for controller {name!r}: {err}") from None


def controller_from_state(state: dict, outstanding: dict | None = None) -> Controller:
    """Rebuilds a controller from :meth:`Controller.state_dict` output (``outstanding``: see
    :meth:`Controller.load_state`)."""
    if not isinstance(state, dict) or "controller" not in state:
        raise SearchConfigError("controller state must be a dict from state_dict()")
    controller = make_controller(state["controller"], state["num_choices"], seed=state["seed"],
                                 names=state.get("names"), **state.get("config", {}))
    controller.load_state(state, outstanding)
    return controller


__all__ = [
    "CONTROLLERS",
    "Controller",
    "PPOController",
    "RandomSearch",
    "RegularizedEvolution",
    "Reinforce",
    "Trial",
    "controller_from_state",
    "make_controller",
]
