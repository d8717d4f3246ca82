"""Mobile multi-query attention (MobileNetV4 Hybrid, arXiv 2404.10518) and layer scale.

The Mobile MQA block is built from stock layers (BatchNormalization, 1x1 ``Conv2D``
projections, strided ``DepthwiseConv2D`` K/V downsampling; see
``mnas_keras.models.builder``); the two layers here are its weightless attention core and
the per-channel layer scale. Both are written with ``keras.ops`` that LiteRT runs as
built-in operators: ``RESHAPE``, ``MUL``, ``BATCH_MATMUL``, ``SOFTMAX``.

Example:
    >>> import numpy as np
    >>> q = np.ones((1, 4, 4, 2 * 8), "float32")        # 2 query heads of dimension 8
    >>> kv = np.ones((1, 2, 2, 8), "float32")           # one shared K/V head, 2x2 positions
    >>> tuple(MultiQueryAttention(num_heads=2, key_dim=8)([q, kv, kv]).shape)
    (1, 4, 4, 16)
"""

from __future__ import annotations

import math
import warnings

import keras
from keras import ops

from mnas_keras.layers.registry import register


@register
class MultiQueryAttention(keras.layers.Layer):
    """Scaled dot-product attention of ``num_heads`` query heads over one shared K/V head.

    Inputs ``[query, key, value]``: query ``(B, H, W, num_heads * key_dim)`` (channels of a
    position are its heads, head-major), key and value ``(B, Hk, Wk, key_dim)`` (any
    ``Hk x Wk``, e.g. downsampled). Output ``(B, H, W, num_heads * key_dim)``: for each
    position and head, ``softmax(q k^T / sqrt(key_dim)) v`` over the ``Hk * Wk`` key
    positions. All heads share K and V (multi-query, Shazeer 2019), so the whole layer is two
    batched matrix products of ``(H * W * num_heads, key_dim)`` by ``(Hk * Wk, key_dim)``:
    ``2 * H * W * num_heads * Hk * Wk * key_dim`` multiply-adds (``multiply_adds()``),
    counted by ``mnas_keras.models.profile``. No weights.

    Args:
        num_heads: query heads (> 0).
        key_dim: key = value dimension (> 0).

    Raises:
        ValueError: a non-positive ``num_heads``/``key_dim``, or inputs whose channels do
            not match them.

    Example:
        >>> import numpy as np
        >>> q = np.zeros((1, 1, 1, 4), "float32")
        >>> k = np.zeros((1, 1, 2, 4), "float32")
        >>> v = np.array([[[[1, 2, 3, 4], [3, 4, 5, 6]]]], "float32")
        >>> np.asarray(MultiQueryAttention(1, 4)([q, k, v])).ravel().tolist()  # equal weights
        [2.0, 3.0, 4.0, 5.0]
    """

    def __init__(self, num_heads: int, key_dim: int, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("num_heads", num_heads), ("key_dim", key_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"MultiQueryAttention {name} must be a positive integer; received {value!r}")
        self.num_heads = num_heads
        self.key_dim = key_dim

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 3:
            raise ValueError("MultiQueryAttention takes [query, key, value]")
        q, k, v = (tuple(s) for s in input_shape)
        if q[-1] is not None and q[-1] != self.num_heads * self.key_dim:
            raise ValueError(
                f"MultiQueryAttention query has {q[-1]} channels; expected num_heads * key_dim = "
                f"{self.num_heads} * {self.key_dim}"
            )
        for name, shape in (("key", k), ("value", v)):
            if shape[-1] is not None and shape[-1] != self.key_dim:
                raise ValueError(
                    f"MultiQueryAttention {name} has {shape[-1]} channels; expected key_dim = {self.key_dim}"
                )

    def call(self, inputs):
        query, key, value = inputs
        shape = ops.shape(query)
        batch = shape[0]
        # (B, H, W, h * d) -> (B, H * W * h, d): each row is one position's one head.
        q = ops.reshape(query, (batch, -1, self.key_dim)) * (1.0 / math.sqrt(self.key_dim))
        k = ops.reshape(key, (batch, -1, self.key_dim))
        v = ops.reshape(value, (batch, -1, self.key_dim))
        with warnings.catch_warnings():  # one K/V position (tiny inputs): softmax is 1, as it should be
            warnings.filterwarnings("ignore", message="You are using a softmax over axis")
            weights = ops.softmax(ops.matmul(q, ops.transpose(k, (0, 2, 1))), axis=-1)
        return ops.reshape(ops.matmul(weights, v), shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def multiply_adds(self) -> int:
        """``q k^T`` plus ``weights v`` at the layer's (static) input shapes, batch 1."""
        q_shape, k_shape = tuple(self.input[0].shape), tuple(self.input[1].shape)
        queries = math.prod(q_shape[1:-1]) * self.num_heads
        keys = math.prod(k_shape[1:-1])
        return 2 * queries * keys * self.key_dim

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim}


@register
class LayerScale(keras.layers.Layer):
    """Multiplies the last axis by a learned vector ``gamma`` (CaiT's layer scale).

    ``gamma`` starts at ``init_value`` (1e-5 in MobileNetV4, timm's
    ``layer_scale_init_value``), one trainable weight per channel; shapes are unchanged.
    LiteRT runs it as one ``MUL``.

    Example:
        >>> import numpy as np
        >>> np.asarray(LayerScale(0.5)(np.ones((1, 2, 2, 3), "float32")))[0, 0, 0].tolist()
        [0.5, 0.5, 0.5]
    """

    def __init__(self, init_value: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        if isinstance(init_value, bool) or not isinstance(init_value, (int, float)) or not math.isfinite(init_value):
            raise ValueError(f"LayerScale init_value must be a finite number; received {init_value!r}")
        self.init_value = float(init_value)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("LayerScale needs a known channel count (last axis)")
        self.gamma = self.add_weight(
            name="gamma", shape=(channels,), initializer=keras.initializers.Constant(self.init_value)
        )

    def call(self, inputs):
        return inputs * ops.cast(self.gamma, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "init_value": self.init_value}
