"""Platform-aware architecture search (MnasNet): spaces, rewards, controllers, runs.

Importing this package loads neither TensorFlow nor Ray; ``ProxyEvaluator`` loads TensorFlow
when it first builds a model, ``RayExecutor`` Ray when it starts. The command-line job is
``mnas-search`` (:mod:`mnas_keras.search.cli`).

Example:
    >>> from mnas_keras import search
    >>> space = search.mnasnet_space()
    >>> controller = search.make_controller("reinforce", space.num_choices, seed=0)
    >>> blocks = space.decode(controller.ask())
    >>> len(blocks), search.Reward("soft", target_ms=10.0)(0.7, 10.0)
    (7, 0.7)
"""

from mnas_keras.search.controllers import (
    CONTROLLERS,
    Controller,
    PPOController,
    RandomSearch,
    RegularizedEvolution,
    Reinforce,
    controller_from_state,
    make_controller,
)
from mnas_keras.search.evaluator import ProxyEvaluator
from mnas_keras.search.executors import Executor, InlineExecutor, LocalPoolExecutor, make_executor
from mnas_keras.search.errors import SearchConfigError, SearchError, SearchSpaceError
from mnas_keras.search.journal import Journal, RunDirectory
from mnas_keras.search.ray_executor import RayExecutor
from mnas_keras.search.latency_modes import LATENCY_MODES, prepare_table
from mnas_keras.search.latency_table import (
    LatencyTable,
    LatencyTableError,
    LatencyTableWarning,
    MissingPartsError,
)
from mnas_keras.search.report import pareto_front, plot_search, top_k
from mnas_keras.search.reward import Reward, absolute_reward, mnasnet_reward
from mnas_keras.search.space import (
    MNASNET_CHOICES,
    MOBILENET_V2_STAGES,
    Decision,
    SearchSpace,
    StageSpace,
    arch_key,
    get_space,
    mnasnet_space,
)
from mnas_keras.search.runner import Search, SearchResult, load_records
from mnas_keras.search.summaries import ScalarWriter, read_scalars
from mnas_keras.search.synthetic import SyntheticEvaluator, SyntheticObjective, estimate_madds

__all__ = [
    "CONTROLLERS",
    "Controller",
    "Decision",
    "Executor",
    "InlineExecutor",
    "Journal",
    "LATENCY_MODES",
    "LatencyTable",
    "LatencyTableError",
    "LatencyTableWarning",
    "LocalPoolExecutor",
    "MNASNET_CHOICES",
    "MOBILENET_V2_STAGES",
    "MissingPartsError",
    "PPOController",
    "ProxyEvaluator",
    "RandomSearch",
    "RayExecutor",
    "RegularizedEvolution",
    "Reinforce",
    "Reward",
    "RunDirectory",
    "ScalarWriter",
    "Search",
    "SearchConfigError",
    "SearchError",
    "SearchResult",
    "SearchSpace",
    "SearchSpaceError",
    "StageSpace",
    "SyntheticEvaluator",
    "SyntheticObjective",
    "absolute_reward",
    "arch_key",
    "controller_from_state",
    "estimate_madds",
    "get_space",
    "load_records",
    "make_controller",
    "make_executor",
    "mnasnet_reward",
    "mnasnet_space",
    "pareto_front",
    "plot_search",
    "prepare_table",
    "read_scalars",
    "top_k",
]
