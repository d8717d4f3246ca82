"""Shared test helpers for tests/heads."""

import numpy as np


def real_scale_statistics(model, seed=0):
    """Gives every batch norm real-scale moving statistics (variance in [0.5, 1.5], mean N(0, 0.2))."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if "moving_variance" in w.path:
            w.assign(rng.uniform(0.5, 1.5, w.shape).astype("float32"))
        elif "moving_mean" in w.path:
            w.assign(rng.normal(0, 0.2, w.shape).astype("float32"))
    return model
