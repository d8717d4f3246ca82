"""Stochastic depth on a residual branch ("drop connect" in EfficientNet's code)."""

import keras
from keras import ops

from mnas_keras.layers.registry import register


@register
class DropConnect(keras.layers.Layer):
    """Drops the whole residual branch per example with probability ``rate`` in training,
    scaling kept branches by ``1 / (1 - rate)``; the identity at inference.

    Example:
        >>> import numpy as np
        >>> layer = DropConnect(0.5)
        >>> x = np.ones((2, 4, 4, 3), "float32")
        >>> bool(np.all(np.asarray(layer(x, training=False)) == 1.0))
        True
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"DropConnect rate must be in [0, 1); received rate={rate}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        if not training or self.rate == 0.0:
            return inputs
        keep = 1.0 - self.rate
        shape = (ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        noise = keras.random.uniform(shape, seed=self.seed_generator, dtype=inputs.dtype)
        mask = ops.floor(keep + noise)
        return inputs / keep * mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
