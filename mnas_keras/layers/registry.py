"""One decorator that registers this package's layers for `.keras` serialization."""

import keras


def register(cls):
    """Registers ``cls`` under the ``mnas_keras`` package name."""
    return keras.saving.register_keras_serializable(package="mnas_keras")(cls)
