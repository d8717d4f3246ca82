"""Controllers: interface, reproducibility, exact JSON state round trips, learning."""

import json

import numpy as np
import pytest

from mnas_keras.search.controllers import (
    CONTROLLERS, PPOController, RegularizedEvolution, Reinforce, controller_from_state, make_controller,
)
from mnas_keras.search.errors import SearchConfigError
from mnas_keras.search.space import mnasnet_space
from mnas_keras.search.evaluation.synthetic import SyntheticObjective

NUM_CHOICES = mnasnet_space().num_choices
SMALL = {"random": {}, "evolution": {"population_size": 8, "sample_size": 3},
         "reinforce": {"lr": 0.1, "batch_size": 2}, "ppo": {"hidden_size": 16, "batch_size": 4}}


def _run(controller, objective, steps):
    history = []
    for _ in range(steps):
        trial = controller.ask()
        sample = list(trial.decisions)
        reward = objective(sample)
        controller.tell(trial.id, reward)
        history.append((sample, reward))
    return history


@pytest.mark.parametrize("name", sorted(CONTROLLERS))
def test_reproducible_and_resumable_through_json(name):
    objective = SyntheticObjective(NUM_CHOICES, seed=1)
    a = make_controller(name, NUM_CHOICES, seed=3, **SMALL[name])
    b = make_controller(name, NUM_CHOICES, seed=3, **SMALL[name])
    first = _run(a, objective, 13)  # mid-batch for reinforce and ppo
    assert _run(b, objective, 13) == first
    for sample, _ in first:
        assert len(sample) == len(NUM_CHOICES)
        assert all(0 <= d < n for d, n in zip(sample, NUM_CHOICES))
    text = json.dumps(a.state_dict())
    resumed = controller_from_state(json.loads(text))
    assert resumed.num_told == 13
    assert _run(resumed, objective, 17) == _run(a, objective, 17)
    other_seed = make_controller(name, NUM_CHOICES, seed=4, **SMALL[name])
    assert _run(other_seed, objective, 13) != first


@pytest.mark.parametrize("name", sorted(CONTROLLERS))
def test_probabilities_and_stats(name):
    c = make_controller(name, NUM_CHOICES, seed=0, **SMALL[name])
    _run(c, SyntheticObjective(NUM_CHOICES, seed=0), 10)
    probs = c.probabilities()
    assert [len(p) for p in probs] == NUM_CHOICES
    assert all(abs(sum(p) - 1.0) < 1e-9 for p in probs)
    stats = c.stats()
    assert stats["entropy"] > 0
    if name in ("reinforce", "ppo"):
        assert "baseline" in stats


def test_state_mismatches_raise():
    c = make_controller("reinforce", [2, 3], seed=0)
    with pytest.raises(SearchConfigError, match="expected \\[2, 4\\]"):
        make_controller("reinforce", [2, 4]).load_state(c.state_dict())
    with pytest.raises(SearchConfigError, match="is for 'reinforce'"):
        make_controller("ppo", [2, 3]).load_state(c.state_dict())
    with pytest.raises(SearchConfigError, match="saved with options"):
        make_controller("reinforce", [2, 3], lr=0.3).load_state(c.state_dict())
    with pytest.raises(SearchConfigError, match="unknown controller 'bayes'"):
        make_controller("bayes", [2])
    with pytest.raises(SearchConfigError, match="bad option"):
        make_controller("random", [2], population_size=3)
    with pytest.raises(SearchConfigError, match="index 5 not in 0..2"):
        c.tell_sample([0, 5], 1.0)
    trial = c.ask()
    with pytest.raises(SearchConfigError, match="reward must be finite"):
        c.tell(trial.id, float("nan"))
    with pytest.raises(SearchConfigError, match=r"trial 7 is not outstanding .*outstanding: \[0\]"):
        c.tell(7, 1.0)
    with pytest.raises(SearchConfigError, match="trial 0 is already outstanding"):
        c.ask(0)
    with pytest.raises(SearchConfigError, match=r"a trial id is an integer .*received \[0, 1\]"):
        c.tell([0, 1], 1.0)
    c.tell(trial, 1.0)  # a Trial works as its id
    with pytest.raises(SearchConfigError, match="trial 0 is not outstanding"):
        c.tell(trial.id, 1.0)  # told once only


def test_reinforce_update_follows_the_policy_gradient():
    c = Reinforce([3], seed=0, lr=0.1, baseline_decay=0.0)
    c.tell_sample([2], 1.0)  # first reward sets the baseline: zero advantage, zero gradient
    assert np.allclose(c.logits[0], 0.0)
    c.tell_sample([1], 2.0)  # advantage +1: gradient (onehot - p) = (-1/3, 2/3, -1/3)
    g = np.array([-1 / 3, 2 / 3, -1 / 3])
    v_hat = (1 - 0.999) * g * g / (1 - 0.999 ** 2)  # Adam's second step (beta1 = 0: no momentum)
    assert np.allclose(c.logits[0], 0.1 * g / (np.sqrt(v_hat) + 1e-8), atol=1e-9)


def test_evolution_mutates_one_decision_and_ages_out():
    evo = RegularizedEvolution(NUM_CHOICES, seed=0, population_size=5, sample_size=2)
    objective = SyntheticObjective(NUM_CHOICES, seed=0)
    _run(evo, objective, 5)
    for _ in range(20):
        members = [m for m, _ in evo.population]
        trial = evo.ask()
        child = list(trial.decisions)
        assert 1 in [sum(a != b for a, b in zip(child, m)) for m in members]  # one mutation of a member
        evo.tell(trial.id, objective(child))
        assert len(evo.population) == 5
        assert evo.population[-1][0] == child


def test_ppo_gradients_match_finite_differences():
    c = PPOController([3, 2, 4], seed=3, hidden_size=5, embedding_size=4, entropy_weight=0.1, init_scale=0.5)
    rng = np.random.default_rng(0)
    actions = np.stack([rng.integers(0, n, size=5) for n in c.num_choices], axis=1)
    adv = rng.normal(size=5)
    _, _, probs = c._forward(actions)
    old = c._log_probs(actions, probs) + rng.normal(scale=0.05, size=actions.shape)
    _, grads = c.objective_and_grads(actions, adv, old)
    worst = 0.0
    for p, g in zip(c.params, grads):
        for index in np.ndindex(p.shape):
            saved = p[index]
            p[index] = saved + 1e-6
            up, _ = c.objective_and_grads(actions, adv, old)
            p[index] = saved - 1e-6
            down, _ = c.objective_and_grads(actions, adv, old)
            p[index] = saved
            worst = max(worst, abs((up - down) / 2e-6 - g[index]))
    assert worst < 1e-6


def test_ppo_clipped_objective_and_gradient_at_a_hand_computed_point():
    """Ratios set exactly (old log-probabilities = logp - log r), no entropy bonus: the
    objective is sum over decisions of min(r A, clip(r, 0.8, 1.2) A) / B, by hand."""
    c = PPOController([3, 2, 4], seed=3, hidden_size=5, embedding_size=4, entropy_weight=0.0, clip=0.2)
    actions = np.array([[2, 1, 3]])
    _, _, probs = c._forward(actions)
    logp = c._log_probs(actions, probs)
    old = logp - np.log([[1.5, 0.9, 0.5]])
    # A = 2: min(3.0, 2.4) + min(1.8, 1.8) + min(1.0, 1.6) = 2.4 + 1.8 + 1.0
    assert c.objective_and_grads(actions, [2.0], old)[0] == pytest.approx(5.2, abs=1e-12)
    # A = -1: min(-1.5, -1.2) + min(-0.9, -0.9) + min(-0.5, -0.8) = -1.5 - 0.9 - 0.8
    assert c.objective_and_grads(actions, [-1.0], old)[0] == pytest.approx(-3.2, abs=1e-12)
    # Every ratio clipped on the side the advantage pushes: the objective is flat there.
    for ratio, advantage in ((1.5, 2.0), (0.5, -1.0)):
        _, grads = c.objective_and_grads(actions, [advantage], logp - np.log(ratio))
        assert all(not np.any(g) for g in grads)


def test_moving_average_baseline_after_known_rewards():
    """b starts at the first reward, then b = 0.9 b + 0.1 r: rewards 1, 2, 4 give b = 1,
    1.1, 1.39 and advantages 0, 2 - 1 = 1, 4 - 1.1 = 2.9 (each before its update)."""
    from mnas_keras.search.controllers.base import MovingAverageBaseline

    b = MovingAverageBaseline(0.9)
    assert [b.advantage(r) for r in (1.0, 2.0, 4.0)] == pytest.approx([0.0, 1.0, 2.9])
    assert b.value == pytest.approx(1.39)


def _samples_to_reach(name, seed, budget, **options):
    objective = SyntheticObjective(NUM_CHOICES, seed=seed)
    threshold = 0.99 * objective.optimum
    if name == "random":  # vectorized: the same distribution as RandomSearch
        rng = np.random.default_rng(seed + 100)
        samples = np.stack([rng.integers(0, n, size=budget) for n in NUM_CHOICES], axis=1)
        hits = np.nonzero(objective.batch(samples) >= threshold)[0]
        return int(hits[0]) + 1 if len(hits) else budget
    controller = make_controller(name, NUM_CHOICES, seed=seed + 100, **options)
    for step in range(budget):
        trial = controller.ask()
        reward = objective(list(trial.decisions))
        controller.tell(trial.id, reward)
        if reward >= threshold:
            return step + 1
    return budget


def test_rl_controllers_reach_99_percent_of_optimum_faster_than_random():
    seeds = range(5)
    random_mean = np.mean([_samples_to_reach("random", s, 100_000) for s in seeds])
    reinforce_mean = np.mean([_samples_to_reach("reinforce", s, 2000) for s in seeds])
    ppo_mean = np.mean([_samples_to_reach("ppo", s, 2000, hidden_size=32) for s in seeds])
    evolution_mean = np.mean([_samples_to_reach("evolution", s, 2000) for s in seeds])
    assert reinforce_mean < 2000 and ppo_mean < 2000  # they all got there
    assert reinforce_mean * 5 < random_mean
    assert ppo_mean * 5 < random_mean
    assert evolution_mean < random_mean
