"""Rewards against their formulas."""

import math

import pytest

from mnas_keras.search.errors import SearchConfigError
from mnas_keras.search.reward import Reward, absolute_reward, mnasnet_reward


@pytest.mark.parametrize("acc, lat, target", [(0.75, 60.0, 75.0), (0.75, 90.0, 75.0), (0.5, 75.0, 75.0), (0.9, 150.0, 75.0)])
def test_soft_reward(acc, lat, target):
    expected = acc * (lat / target) ** -0.07
    assert Reward("soft", target_ms=target)(acc, lat) == pytest.approx(expected, rel=1e-12)
    assert mnasnet_reward(acc, lat, target) == pytest.approx(expected, rel=1e-12)


def test_soft_reward_doubling_latency_costs_about_five_percent():
    r = Reward("soft", target_ms=10.0)
    assert r(0.75, 20.0) / r(0.75, 10.0) == pytest.approx(2 ** -0.07)
    assert 1 - 2 ** -0.07 == pytest.approx(0.0474, abs=1e-4)


def test_hard_reward():
    r = Reward("hard", target_ms=75.0)
    assert (r.alpha, r.beta) == (0.0, -1.0)
    assert r(0.75, 30.0) == 0.75          # under the target: accuracy only
    assert r(0.75, 75.0) == 0.75
    assert r(0.75, 150.0) == pytest.approx(0.375)  # over: (LAT/T)^-1


def test_custom_exponents():
    r = Reward("mnasnet", target_ms=15.8, alpha=-0.15, beta=-0.15)  # MobileNetV3-Small
    assert r(0.674, 20.0) == pytest.approx(0.674 * (20.0 / 15.8) ** -0.15)
    assert Reward("soft", target_ms=1.0, alpha=0.0)(0.5, 0.5) == 0.5


def test_absolute_reward():
    r = Reward("absolute", target_ms=10.0)
    assert r.beta == -0.1
    assert r(0.8, 10.0) == 0.8
    assert r(0.8, 5.0) == pytest.approx(0.75)
    assert r(0.8, 20.0) == pytest.approx(0.7)
    assert absolute_reward(0.8, 13.0, 10.0, beta=-0.5) == pytest.approx(0.8 - 0.5 * 0.3)


def test_reward_round_trips_and_rejects_bad_input():
    r = Reward("soft", target_ms=3.0, beta=-0.2)
    assert Reward.from_dict(r.to_dict()) == r
    with pytest.raises(SearchConfigError, match="reward kind"):
        Reward("linear", target_ms=1.0)
    with pytest.raises(SearchConfigError, match="target_ms"):
        Reward("soft", target_ms=0.0)
    with pytest.raises(SearchConfigError, match="latency_ms must be > 0"):
        Reward("soft", target_ms=1.0)(0.5, 0.0)
    with pytest.raises(SearchConfigError, match="accuracy must be a finite number"):
        Reward("soft", target_ms=1.0)(math.nan, 1.0)
    with pytest.raises(SearchConfigError, match="no alpha"):
        Reward("absolute", target_ms=1.0, alpha=-0.07)
