"""Shared test setup: quiet TensorFlow logs, small shared data."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def digits32():
    """scikit-learn digits upsampled to 32x32x3: ``(x_train, y_train), (x_test, y_test)``."""
    from mnas_keras.datasets import load_digits

    return load_digits(size=32)
