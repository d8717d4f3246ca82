"""Shared, session-scoped models and conversions for the TFLite tests (each conversion costs
about a second, so convert once and reuse)."""

import numpy as np
import pytest


def randomize_batchnorm(model, seed=0):
    """Random BN statistics so that outputs have a real scale (fresh BN is the identity)."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        path = weight.path
        if "moving_variance" in path or "gamma" in path:
            weight.assign(rng.uniform(0.5, 1.5, weight.shape).astype("float32"))
        elif "moving_mean" in path or "beta" in path:
            weight.assign(rng.normal(0.0, 0.2, weight.shape).astype("float32"))
    return model


@pytest.fixture(scope="session")
def images32():
    """16 random images in [0, 255], 32x32x3."""
    return np.random.default_rng(0).uniform(0, 255, (16, 32, 32, 3)).astype("float32")


@pytest.fixture(scope="session")
def tiny_model():
    """A small functional model with hard-swish, an SE-style hard-sigmoid gate and a residual."""
    import keras

    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(48, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("hard_swish")(x)
    s = keras.layers.GlobalAveragePooling2D(keepdims=True)(x)
    s = keras.layers.Conv2D(48, 1)(s)
    s = keras.layers.Activation("hard_sigmoid")(s)
    y = keras.layers.Multiply()([x, s])
    y = keras.layers.DepthwiseConv2D(3, padding="same")(y)
    x = keras.layers.Add()([x, y])
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(5)(x)
    return randomize_batchnorm(keras.Model(inputs, outputs, name="tiny"))


@pytest.fixture(scope="session")
def tiny_tflite(tiny_model):
    from mnas_keras.tflite import convert

    return convert(tiny_model, input_shape=(32, 32, 3))


@pytest.fixture(scope="session")
def mnv3_small():
    """This package's MobileNetV3Small at 32x32, logits out, random BN statistics."""
    import mnas_keras

    model = mnas_keras.create_model(
        "mobilenet_v3_small", input_shape=(32, 32, 3), classes=10, classifier_activation=None
    )
    return randomize_batchnorm(model)


@pytest.fixture(scope="session")
def mnv3_small_tflite(mnv3_small):
    from mnas_keras.tflite import convert

    return convert(mnv3_small)
