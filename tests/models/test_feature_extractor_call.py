"""Calling ``MnasNet.feature_extractor(...)`` on an array gives the endpoint tensors without a
warning (it was built on ``model.inputs``, a list of one, so Keras warned "The structure of
`inputs` doesn't match the expected structure" on every call)."""

import warnings

import keras
import numpy as np

from mnas_keras.applications import MobileNetV3Small


def test_feature_extractor_call_is_quiet_and_equals_the_layers_outputs():
    model = MobileNetV3Small(input_shape=(64, 64, 3), include_top=False, weights=None)
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    extractor = model.feature_extractor(["stride_8", "stride_16"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        features = extractor(x)
    # independently: a plain functional model on the same layers' outputs
    names = [model.endpoints["stride_8"], model.endpoints["stride_16"]]
    plain = keras.Model(model.input, [model.get_layer(n).output for n in names])(x)
    for got, want in zip(features, plain):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
