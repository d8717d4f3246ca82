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


#: The one configuration in which every registered application is built for the every-model
#: tests (tests/models/test_backbone.py trains each, tests/tflite/test_verify.py converts
#: each): 32x32 input, 10 classes, alpha 0.5, logits out.
APPLICATION_KWARGS = dict(input_shape=(32, 32, 3), classes=10, alpha=0.5, classifier_activation=None)


@pytest.fixture(scope="session")
def application_model():
    """``application_model(name)``: ``mnas_keras.create_model(name, **APPLICATION_KWARGS)``,
    built once per session (building the 15 applications is a large share of the
    every-model tests' time). Tests may change its weights, not its structure."""
    import mnas_keras

    cache = {}

    def build(name):
        if name not in cache:
            cache[name] = mnas_keras.create_model(name, **APPLICATION_KWARGS)
        return cache[name]

    return build
