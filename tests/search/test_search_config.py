"""The search's dataclass configs (issue 17 item 5): dotted overrides, ``mnas-search
--overrides/--print_config``, ``Search(config=...)`` and what may change on resume."""

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from mnas_keras._config import ConfigError
from mnas_keras.search import config as C
from mnas_keras.search.errors import SearchConfigError


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "mnas_keras.search.cli", *args], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True, timeout=120)


def test_overrides_parse_each_field_type():
    cfg = C.override(C.SearchConfig(), [
        "reward.kind=absolute", "reward.target_ms=2.5", "reward.alpha=none", "reward.beta=-0.07",
        "budget.num_samples=1_000", "budget.tensorboard=off", 'controller.options={"lr": 0.01, "hidden_size": 8}',
        "final.seeds=3,1", "latency.size=none", "latency.table=/x=y.json", "execution.max_in_flight=4"])
    assert cfg.reward == C.RewardConfig(kind="absolute", target_ms=2.5, alpha=None, beta=-0.07)
    assert cfg.budget == C.BudgetConfig(num_samples=1000, tensorboard=False)
    assert cfg.controller.options == {"lr": 0.01, "hidden_size": 8}
    assert cfg.final.seeds == ("3", "1") and cfg.latency.size is None and cfg.latency.table == "/x=y.json"
    assert cfg.execution.max_in_flight == 4
    assert C.override(cfg, {"final.seeds": [3, 1]}).final.seeds == (3, 1)
    for bad, message in (("reward.knd=soft", "unknown config key 'reward.knd'"),
                         ("budget.num_samples=many", "budget.num_samples expects an integer; received 'many'"),
                         ("budget.num_samples=0", "budget.num_samples must be an integer >= 1; received 0"),
                         ("reward.kind=best", "reward.kind must be one of"),
                         ("controller.options=[1]", "controller.options expects a JSON object"),
                         ("latency.size=16", "latency.size must be an integer >= 32; received 16")):
        with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
            C.override(C.SearchConfig(), [bad])


def test_print_config_round_trip_equals_the_config_the_flags_made():
    done = _cli("--print_config", "--num_samples=7", "--reward=absolute", "--target_ms=4",
                '--controller_options={"population_size": 6}', "--controller=evolution", "--latency_size=64",
                "--final_seeds=2,5", "--evaluator=synthetic", "--noisolate_latency",
                "--overrides=reward.beta=-0.5", "--overrides=budget.top_k=1")
    assert done.returncode == 0, done.stderr
    printed = C.from_dict(C.SearchConfig, json.loads(done.stdout))
    expected = C.SearchConfig(  # by hand: the flags above, the other flags' defaults
        controller=C.ControllerConfig(name="evolution", options={"population_size": 6}),
        reward=C.RewardConfig(kind="absolute", target_ms=4.0, beta=-0.5),
        budget=C.BudgetConfig(num_samples=7, top_k=1),
        proxy=C.ProxyConfig(evaluator="synthetic"),
        latency=C.LatencyConfig(size=64, isolate=False),
        final=C.FinalConfig(seeds=(2, 5)))
    assert printed == expected
    bad = _cli("--evaluator=synthetic", "--overrides=budget.num_sample=3")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "mnas-search: error: unknown config key 'budget.num_sample': 'num_sample' is not a field of BudgetConfig; "
        "expected one of ['checkpoint_every', 'export', 'num_samples', 'tensorboard', 'top_k']"]


def test_search_takes_a_config_and_resume_checks_fixed_fields(small_space, tmp_path):
    from mnas_keras.search.evaluation.synthetic import SyntheticEvaluator
    from mnas_keras.search.run.search import Search

    config = C.override(C.SearchConfig(), ["controller.name=random", "reward.target_ms=1.0", "budget.num_samples=3",
                                           "budget.export=false", "budget.tensorboard=false",
                                           f"run_dir={tmp_path}"])
    search = Search(small_space, SyntheticEvaluator(small_space), config=config, log=None)
    # the keyword arguments set the same fields
    same = Search(small_space, SyntheticEvaluator(small_space), str(tmp_path), controller="random", target_ms=1.0,
                  num_samples=3, export=False, tensorboard=False, log=None)
    assert search.search_config == same.search_config and search.config() == same.config()
    assert len(search.run().records) <= 3
    stored = json.load(open(tmp_path / "config.json"))
    assert stored["reward"]["target_ms"] == 1.0 and stored["budget"]["num_samples"] == 3
    changed = C.override(config, ["reward.kind=absolute"])
    with pytest.raises(SearchConfigError, match=r"holds a run with different reward; reward.kind was \"soft\", "
                                                r"is now \"absolute\"; it may not change on resume"):
        Search(small_space, SyntheticEvaluator(small_space), config=changed, log=None).run()
    more = C.override(config, ["budget.num_samples=5", "budget.top_k=1", "execution.max_retries=3"])
    Search(small_space, SyntheticEvaluator(small_space), config=more, log=None).run()
    results = [json.loads(line) for line in open(tmp_path / "journal.jsonl") if '"result"' in line]
    assert [r["step"] for r in results] == [0, 1, 2, 3, 4]


def test_a_legacy_config_json_maps_onto_the_sections():
    legacy = {"space": {"name": "s"}, "evaluator": {"type": "E"}, "controller": "ppo",
              "controller_options": {"lr": 0.1}, "seed": 3,
              "reward": {"kind": "soft", "target_ms": None, "target_scale": 1.0, "alpha": None, "beta": None},
              "failure_reward": 0.0, "evaluate_reference": True, "num_samples": 9, "top_k": 3, "export": True,
              "tensorboard": True, "checkpoint_every": 1}
    current = C.run_definition(C.override(C.SearchConfig(), ['controller.options={"lr": 0.1}', "controller.seed=3",
                                                             "budget.num_samples=20"]),
                               {"name": "s"}, {"type": "E"})
    assert C.resume_conflicts(legacy, current) == []
    assert C.resume_conflicts(legacy, {**current, "evaluator": {"type": "F"}}) == [
        ("evaluator", {"type": "E"}, {"type": "F"})]
