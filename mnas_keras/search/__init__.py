"""Platform-aware architecture search (MnasNet): spaces, rewards, controllers, runs.

Importing this package loads neither TensorFlow nor Ray; ``ProxyEvaluator`` loads TensorFlow
when it first builds a model, ``RayExecutor`` Ray when it starts. The commands are
``mnas-search``, ``mnas-latency-table`` and ``mnas-ablation`` (:mod:`mnas_keras.search.cli`).

Layers, bottom up; a module imports only from its own layer or below
(``tests/test_import_boundaries.py`` enforces it):

1. ``errors``, ``config`` (the frozen :class:`SearchConfig` and its sections, in the package's
   one config style, :mod:`mnas_keras._config`), ``space`` (MnasNet's factorized space:
   decisions, decoding to block strings, ``arch_key``), ``spaces`` (the :class:`Space` protocol,
   :class:`NASNetCellSpace`, :class:`NASRLMacroSpace`, ``get_space``), ``reward``, ``pareto``
   (front, top-k, tables, plot) and ``controllers/``. No TensorFlow.
2. ``latency/``: part keys, the lookup table, the network recipe, building and timing
   parts on LiteRT, the latency sources and modes.
3. ``evaluation/``: evaluators (``evaluate(blocks, artifact_dir)``): the proxy evaluator
   (proxy training plus a latency source), ``SpaceProxyEvaluator`` (the same for the cell
   and macro spaces), the synthetic one, export.
4. ``execution/``: executors (``start``/``submit``/``wait``/``close``): in process, process
   pool, Ray.
5. ``run/``: ``Search`` (configuration, run directory, outputs), ``SearchLoop`` (the one
   loop), the journal and summaries.
6. ``cli/``: ``mnas-search``, ``mnas-latency-table``, ``mnas-ablation`` (``run_ablation``:
   the MnasNet paper's section 7 ablation, four arms, table and plot).

Where each seam plugs in:

* **A search space** implements the :class:`Space` protocol (``spaces.py``: ``decisions``,
  ``num_choices``, ``decode``/``encode``, ``sample``, ``reference_blocks``, ``to_dict``,
  ``network``: which recipe builds a sample) and joins ``get_space``/``space_from_dict``;
  MnasNet's :class:`SearchSpace`, :class:`NASNetCellSpace` and :class:`NASRLMacroSpace` do.
  A new ``network`` kind also needs a recipe in ``latency/networks.py``.
* **A controller** subclasses :class:`Controller` (``controllers/base.py``: ``_propose()``
  and ``_tell(trial_id, decisions, reward)``; state through ``_state``/``_load``) and joins
  ``CONTROLLERS`` in ``controllers/__init__.py``. The loop calls ``ask(step)``, which returns
  a :class:`Trial`, and ``tell(step, reward)``: results are matched by trial id.
* **A latency source** implements :class:`~mnas_keras.search.latency.sources.LatencySource`
  (``latency(model, calibration)``, ``finalize``, ``config``, ``with_runner``) in
  ``latency/`` and is passed as ``ProxyEvaluator(latency_source=...)``; the built-in ones
  are ``MeasuredLatency`` and ``TableLatency`` (``latency_mode``). Remote measurement is a
  runner passed in (``with_runner``), as the Ray executor does.
* **The network measured** is one :class:`~mnas_keras.search.latency.recipe.NetworkRecipe`
  (``build(blocks)``, ``build_part(part)``), shared by the evaluator and the latency table.
* **An evaluator** is any object with ``evaluate`` (the :class:`Evaluator` protocol in
  ``evaluation/base.py``; optional ``config``, ``export``, ``finalize``,
  ``with_latency_runner``); it is given to :class:`Search`.
* **An executor** subclasses :class:`Executor` (``execution/base.py``) and joins
  ``make_executor``; it is given to :class:`Search` (``executor=``).

Example:
    >>> from mnas_keras import search
    >>> space = search.mnasnet_space()
    >>> controller = search.make_controller("reinforce", space.num_choices, seed=0)
    >>> trial = controller.ask()
    >>> blocks = space.decode(trial.decisions); controller.tell(trial.id, 0.7)
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
    Trial,
    controller_from_state,
    make_controller,
)
from mnas_keras.search.config import SearchConfig
from mnas_keras.search.errors import SearchConfigError, SearchError, SearchSpaceError
from mnas_keras.search.evaluation.base import Evaluator
from mnas_keras.search.evaluation.proxy import ProxyEvaluator
from mnas_keras.search.execution import Executor, InlineExecutor, LocalPoolExecutor, RayExecutor, make_executor
from mnas_keras.search.latency.modes import LATENCY_MODES, TableLatency, prepare_table
from mnas_keras.search.latency.recipe import NetworkRecipe
from mnas_keras.search.latency.sources import LatencySource, MeasuredLatency
from mnas_keras.search.latency.table import (
    LatencyTable,
    LatencyTableError,
    LatencyTableWarning,
    MissingPartsError,
)
from mnas_keras.search.pareto import pareto_front, plot_search, top_k
from mnas_keras.search.reward import Reward, absolute_reward, mnasnet_reward
from mnas_keras.search.space import (
    MNASNET_CHOICES,
    MOBILENET_V2_STAGES,
    Decision,
    SearchSpace,
    StageSpace,
    arch_key,
    mnasnet_space,
    uib_space,
)
from mnas_keras.search.spaces import SPACE_NAMES, NASNetCellSpace, NASRLMacroSpace, Space, get_space, space_from_dict
from mnas_keras.search.run.journal import Journal, RunDirectory, RunInUseError
from mnas_keras.search.run.loop import SearchLoop
from mnas_keras.search.run.search import Search, SearchResult, load_records
from mnas_keras.search.run.summaries import ScalarWriter, read_scalars
from mnas_keras.search.evaluation.synthetic import SyntheticEvaluator, SyntheticObjective, estimate_madds
from mnas_keras.search.evaluation.networks import SpaceProxyEvaluator

__all__ = [
    "ABLATION_ARMS",
    "CONTROLLERS",
    "Controller",
    "Decision",
    "Evaluator",
    "Executor",
    "InlineExecutor",
    "Journal",
    "LATENCY_MODES",
    "LatencySource",
    "LatencyTable",
    "LatencyTableError",
    "LatencyTableWarning",
    "LocalPoolExecutor",
    "MNASNET_CHOICES",
    "MOBILENET_V2_STAGES",
    "MeasuredLatency",
    "MissingPartsError",
    "NASNetCellSpace",
    "NASRLMacroSpace",
    "NetworkRecipe",
    "PPOController",
    "ProxyEvaluator",
    "RandomSearch",
    "RayExecutor",
    "RegularizedEvolution",
    "Reinforce",
    "Reward",
    "RunDirectory",
    "RunInUseError",
    "SPACE_NAMES",
    "ScalarWriter",
    "Search",
    "SearchConfig",
    "SearchConfigError",
    "SearchError",
    "SearchLoop",
    "SearchResult",
    "SearchSpace",
    "SearchSpaceError",
    "Space",
    "SpaceProxyEvaluator",
    "StageSpace",
    "SyntheticEvaluator",
    "SyntheticObjective",
    "TableLatency",
    "Trial",
    "ablation_defaults",
    "absolute_reward",
    "arch_key",
    "controller_from_state",
    "estimate_madds",
    "get_space",
    "hypervolume",
    "load_records",
    "make_controller",
    "make_executor",
    "mnasnet_reward",
    "mnasnet_space",
    "pareto_front",
    "plot_search",
    "prepare_table",
    "read_scalars",
    "run_ablation",
    "space_from_dict",
    "top_k",
    "uib_space",
]

#: Names served by :mod:`mnas_keras.search.cli.ablation`, imported on first use (so that
#: ``python -m mnas_keras.search.cli.ablation`` does not find its module already imported).
_ABLATION_NAMES = ("ABLATION_ARMS", "ablation_defaults", "hypervolume", "run_ablation")


def __getattr__(name):
    if name in _ABLATION_NAMES:
        from mnas_keras.search.cli import ablation

        return getattr(ablation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
