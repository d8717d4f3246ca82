"""DropConnect (stochastic depth) against its definition: per example, the branch is dropped
with probability ``rate`` or kept and scaled by ``1 / (1 - rate)`` (EfficientNet's
``drop_connect``), so the expectation equals the input."""

import numpy as np
import pytest

from mnas_keras.layers import DropConnect


def test_training_keeps_the_expectation():
    layer = DropConnect(0.5, seed=1)
    x = np.ones((4000, 2, 2, 3), "float32")
    y = np.asarray(layer(x, training=True))
    per_example = y.reshape(4000, -1)
    # Whole examples are kept or dropped: every value of an example is the same.
    np.testing.assert_array_equal(per_example, per_example[:, :1] * np.ones((1, 12)))
    assert set(np.unique(per_example).tolist()) == {0.0, 2.0}
    # Kept fraction ~ 1 - rate; a binomial(4000, 0.5) mean has standard deviation 0.008.
    assert per_example.mean() == pytest.approx(1.0, abs=0.05)


def test_rate_quarter_scales_by_four_thirds():
    layer = DropConnect(0.25, seed=2)
    x = np.full((2000, 1, 1, 1), 3.0, "float32")
    y = np.asarray(layer(x, training=True)).ravel()
    assert set(np.round(np.unique(y), 5).tolist()) == {0.0, 4.0}  # 3 / 0.75
    assert (y > 0).mean() == pytest.approx(0.75, abs=0.04)


def test_inference_is_the_identity():
    x = np.random.default_rng(0).normal(size=(8, 3, 3, 2)).astype("float32")
    np.testing.assert_array_equal(np.asarray(DropConnect(0.5)(x, training=False)), x)
    np.testing.assert_array_equal(np.asarray(DropConnect(0.5)(x)), x)


def test_bad_rate():
    with pytest.raises(ValueError, match="rate=1.0"):
        DropConnect(1.0)
