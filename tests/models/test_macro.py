"""NAS-RL macro networks: hand-counted parameters, zero-padded concatenation checked in numpy,
TFLite built-in conversion."""

import keras
import numpy as np
import pytest

from mnas_keras.codec import MacroStringError
from mnas_keras.models.macro import MacroNetworkError, build_macro_network
from tests.tflite.conftest import randomize_batchnorm

# Layer 1: 3x3/2, 24 filters on the 9x9x3 image -> 5x5; layer 2: 1x1, 36 filters, reads the
# image (no anchors) -> 9x9; layer 3 reads 1 (padded to 9x9) and 2: 60 channels, 3x5, 48.
SPEC = "k3x3_s22_f24,k1x1_f36,k3x5_f48_in1.2"


@pytest.fixture(scope="module")
def model():
    return randomize_batchnorm(build_macro_network(SPEC, input_shape=(9, 9, 3), classes=7,
                                                   classifier_activation=None), seed=4)


def test_hand_counted_parameters_and_shapes(model):
    bn = 4  # gamma, beta, moving mean and variance per channel
    expected = (3 * 3 * 3 * 24 + bn * 24) + (3 * 36 + bn * 36) + (3 * 5 * 60 * 48 + bn * 48) + (48 * 7 + 7)
    assert model.count_params() == expected
    assert model.get_layer("layer1_relu").output.shape[1:] == (5, 5, 24)
    assert model.get_layer("layer3_concat").output.shape[1:] == (9, 9, 60)
    assert model.output_shape == (None, 7)


def test_mismatched_inputs_are_zero_padded_bottom_right(model):
    probe = keras.Model(model.input, [model.get_layer(n).output for n in
                                       ("layer1_relu", "layer2_relu", "layer3_concat")])
    x = np.random.default_rng(0).normal(size=(2, 9, 9, 3)).astype("float32")
    first, second, merged = (np.asarray(t) for t in probe(x))
    expected = np.zeros((2, 9, 9, 60), "float32")
    expected[:, :5, :5, :24] = first
    expected[:, :, :, 24:] = second
    np.testing.assert_array_equal(merged, expected)


def test_top_concatenates_unconsumed_layers_padded():
    # Layers 2 (5x5x36, strided) and 3 (9x9x24) are read by none: 60 channels at 9x9.
    net = build_macro_network("k3x3_f24,k3x3_s22_f36_in1,k1x1_f24", input_shape=(9, 9, 3), include_top=False)
    assert net.output_shape == (None, 9, 9, 60)


def test_converts_to_builtin_tflite_with_parity(model):
    from mnas_keras.tflite import check_builtin_ops, compare, convert

    tflite = convert(model)
    check_builtin_ops(tflite)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 9, 9, 3)).astype("float32")
    assert compare(model, tflite, x).max_rel_diff < 1e-4


def test_builds_on_an_input_tensor_from_another_layer():
    source = keras.Input((9, 9, 3))
    scaled = keras.layers.Rescaling(0.5)(source)
    net = build_macro_network("k3x3_f24,k1x1_f24_in1", input_tensor=scaled, classes=2)
    assert net.inputs[0] is source and net.output_shape == (None, 2)


def test_clear_errors():
    with pytest.raises(MacroNetworkError, match="fixed input size"):
        build_macro_network(SPEC, input_shape=(None, None, 3))
    with pytest.raises(MacroStringError, match="bad token 'k3'"):
        build_macro_network("k3_f24", input_shape=(9, 9, 3))
