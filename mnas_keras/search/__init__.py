"""Platform-aware architecture search (MnasNet): spaces, rewards, controllers, runs.

Importing this package loads neither TensorFlow nor Ray; ``ProxyEvaluator`` loads TensorFlow
when it first builds a model, ``RayExecutor`` Ray when it starts. The commands are
``mnas-search`` and ``mnas-latency-table`` (:mod:`mnas_keras.search.cli`).

Layers, bottom up; a module imports only from its own layer or below
(``tests/test_import_boundaries.py`` enforces it):

1. ``errors``, ``config`` (the frozen :class:`SearchConfig` and its sections, in the package's
   one config style, :mod:`mnas_keras._config`), ``space`` (decisions, decoding to block
   strings, ``arch_key``), ``reward``, ``pareto`` (front, top-k, tables, plot) and
   ``controllers/``. No TensorFlow.
2. ``latency/``: part keys, the lookup table, the network recipe, building and timing
   parts on LiteRT, the latency sources and modes.
3. ``evaluation/``: evaluators (``evaluate(blocks, artifact_dir)``): the proxy evaluator
   (proxy training plus a latency source), the synthetic one, export.
4. ``execution/``: executors (``start``/``submit``/``wait``/``close``): in process, process
   pool, Ray.
5. ``run/``: ``Search`` (configuration, run directory, outputs), ``SearchLoop`` (the one
   loop), the journal and summaries.
6. ``cli/``: ``mnas-search``, ``mnas-latency-table``.

Where each seam plugs in:

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
    get_space,
    mnasnet_space,
)
from mnas_keras.search.run.journal import Journal, RunDirectory, RunInUseError
from mnas_keras.search.run.loop import SearchLoop
from mnas_keras.search.run.search import Search, SearchResult, load_records
from mnas_keras.search.run.summaries import ScalarWriter, read_scalars
from mnas_keras.search.evaluation.synthetic import SyntheticEvaluator, SyntheticObjective, estimate_madds

__all__ = [
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
    "ScalarWriter",
    "Search",
    "SearchConfig",
    "SearchConfigError",
    "SearchError",
    "SearchLoop",
    "SearchResult",
    "SearchSpace",
    "SearchSpaceError",
    "StageSpace",
    "SyntheticEvaluator",
    "SyntheticObjective",
    "TableLatency",
    "Trial",
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
