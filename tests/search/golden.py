"""The seeded synthetic searches pinned in ``data/golden_synthetic.json`` (see
``data/make_fixtures.py``)."""

import json
import os

from conftest import SMALL_SPACE

GOLDEN_RUNS = {
    "ppo_small": {"space": "small", "controller": "ppo", "controller_options": {"hidden_size": 8, "batch_size": 3},
                  "seed": 3, "num_samples": 25, "target_ms": None},
    "evolution_mnasnet": {"space": "mnasnet", "controller": "evolution",
                          "controller_options": {"population_size": 6, "sample_size": 3}, "seed": 11,
                          "num_samples": 30, "target_ms": 3.0},
    "reinforce_mnasnet": {"space": "mnasnet", "controller": "reinforce", "controller_options": {}, "seed": 5,
                          "num_samples": 20, "target_ms": None, "reward": "mnasnet"},
}
OLD_RUN = {"run": "ppo_small", "stop_at": 8, "checkpoint_every": 4}
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def make_space(name):
    from mnas_keras.search.space import SearchSpace, mnasnet_space

    return SearchSpace.from_dict(SMALL_SPACE) if name == "small" else mnasnet_space()


def run_golden(name, run_dir, evaluator_class=None, executor=None, **overrides):
    """Runs the pinned search ``name`` into ``run_dir``."""
    from mnas_keras.search.run.search import Search
    from mnas_keras.search.evaluation.synthetic import SyntheticEvaluator

    spec = {**GOLDEN_RUNS[name], **overrides}
    space = make_space(spec["space"])
    evaluator = (evaluator_class or SyntheticEvaluator)(space)
    options = {k: v for k, v in spec.items() if k not in ("space",)}
    return Search(space, evaluator, run_dir, log=None, export=False, tensorboard=False, executor=executor,
                  **options).run()


_KEPT = ("event", "step", "key", "arch_id", "decisions", "status", "accuracy", "latency_ms", "reward", "cached",
         "cached_from", "params", "madds", "reason")


def snapshot(run_dir):
    """What must not change: the journal without times, pareto.json, the controller state."""
    with open(os.path.join(run_dir, "journal.jsonl")) as f:
        journal = [{k: r[k] for k in _KEPT if k in r} for r in map(json.loads, f)]
    with open(os.path.join(run_dir, "pareto.json")) as f:
        pareto = json.load(f)
    with open(os.path.join(run_dir, "controller.json")) as f:
        controller = json.load(f)["controller"]
    return {"journal": journal, "pareto": pareto, "controller": controller}


def load_golden():
    with open(os.path.join(DATA, "golden_synthetic.json")) as f:
        return json.load(f)
