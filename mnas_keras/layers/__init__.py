"""Keras 3 layers of mnas_keras (registered for `.keras` serialization)."""

from mnas_keras.layers.activations import ACTIVATION_NAMES, activation_layer
from mnas_keras.layers.drop_connect import DropConnect
from mnas_keras.layers.mobile_mqa import LayerScale, MultiQueryAttention
from mnas_keras.layers.registry import register

__all__ = ["ACTIVATION_NAMES", "DropConnect", "LayerScale", "MultiQueryAttention", "activation_layer", "register"]
