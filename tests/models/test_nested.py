"""Everything that takes a model takes the README's transfer-learning model: a MobileNetV3
backbone nested in a functional model with a new head."""

import keras
import numpy as np
import pytest

from mnas_keras.applications import MobileNetV3Small
from mnas_keras.models import profile
from mnas_keras.models.graph import NestedModelError, flatten_model, leaf_layers

CLASSES = 5


def _hard_swish_layers(model):
    return [layer for layer in model.layers
            if isinstance(layer, keras.layers.Activation) and layer.activation is keras.activations.hard_swish]


@pytest.fixture(scope="module")
def transfer():
    """(outer model, backbone, images): the README pattern, frozen backbone, training=False."""
    keras.utils.set_random_seed(0)
    backbone = MobileNetV3Small(input_shape=(32, 32, 3), include_top=False, pooling="avg", weights=None)
    backbone.trainable = False
    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Dense(CLASSES, activation="softmax", name="head")(backbone(inputs, training=False))
    x = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    return keras.Model(inputs, outputs), backbone, x


def test_flatten_shares_layers_and_keeps_training_false(transfer):
    model, backbone, x = transfer
    flat = flatten_model(model)
    assert len(flat.layers) == len(backbone.layers) + 1  # the backbone's layers (its Input reused) + head
    assert flat.get_layer("head") is model.get_layer("head")
    np.testing.assert_allclose(np.asarray(flat(x)), np.asarray(model(x)), atol=1e-6)
    # BN of the nested call stays in inference mode even when the outer model trains.
    np.testing.assert_allclose(np.asarray(flat(x, training=True)), np.asarray(model(x, training=True)), atol=1e-6)


def test_flatten_duplicate_names_is_clear():
    a = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, name="same")], name="a")
    b = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, name="same")], name="b")
    x = keras.Input((4,))
    with pytest.raises(NestedModelError, match="same"):
        flatten_model(keras.Model(x, b(a(x))))


def test_int8_rewrite_sees_through_nesting(transfer):
    from mnas_keras.tflite import convert, list_operators
    from mnas_keras.tflite.flatbuffer import conversion_info

    model, backbone, x = transfer
    expected = len(_hard_swish_layers(backbone))  # hard-swish layers of the backbone, by type
    assert expected > 0
    tflite = convert(model, "int8", representative_data=x)
    assert "HARD_SWISH" not in list_operators(tflite)
    report = conversion_info(tflite)["hard_swish"]
    assert report["layers"] == expected and report["folded"] + report["explicit"] == expected
    assert report["mode"] == "fold"


def test_float_conversion_and_compare(transfer):
    from mnas_keras.tflite import compare, convert

    model, _, x = transfer
    report = compare(model, convert(model), x)
    expected = np.asarray(model(x))
    assert report.max_abs_diff < 1e-4 * max(1.0, float(np.abs(expected).max()))
    assert report.top1_agreement == 1.0


def test_profile_counts_nested_layers(transfer):
    model, backbone, _ = transfer
    alone = profile(backbone)
    nested = profile(model)
    width = backbone.output_shape[-1]
    assert nested.params == alone.params + width * CLASSES + CLASSES  # the Dense head, by hand
    assert nested.madds == alone.madds + width * CLASSES
    assert nested.trainable_params == width * CLASSES + CLASSES  # backbone frozen


def test_randomize_batch_norm_reaches_nested_layers(transfer):
    from mnas_keras.tflite.latency import randomize_batch_norm

    model, backbone, _ = transfer
    copy = keras.models.clone_model(model)
    randomize_batch_norm(copy)
    variances = [layer.moving_variance.numpy() for layer in leaf_layers(copy)
                 if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(variances) == sum(isinstance(layer, keras.layers.BatchNormalization) for layer in backbone.layers)
    assert all(float(v.min()) >= 0.5 and float(v.max()) <= 1.5 for v in variances)


def test_weight_decay_list_reaches_nested_layers(transfer):
    from mnas_keras.training.optim import decay_variables

    model, backbone, _ = transfer
    backbone.trainable = True
    try:
        names = sorted(v.path for v in decay_variables(model))
        kernels = [v.path for layer in backbone.layers + [model.get_layer("head")]
                   for v in layer.trainable_weights if not isinstance(layer, keras.layers.BatchNormalization)]
        assert names == sorted(kernels)
        assert not any(("gamma" in n or "beta" in n) for n in names)
    finally:
        backbone.trainable = False


def test_outputs_are_probabilities_through_nesting():
    from mnas_keras.training.tasks.classification import outputs_are_probabilities

    inner = MobileNetV3Small(input_shape=(32, 32, 3), weights=None, classes=CLASSES)
    x = keras.Input((32, 32, 3))
    assert outputs_are_probabilities(keras.Model(x, inner(x))) is True
    logits = MobileNetV3Small(input_shape=(32, 32, 3), weights=None, classes=CLASSES, classifier_activation=None,
                              name="logits_net")
    assert outputs_are_probabilities(keras.Model(x, logits(x))) is False


def test_qat_refuses_nested_model_clearly(transfer):
    from mnas_keras.tflite.errors import QATError
    from mnas_keras.tflite.qat import quantization_aware_training

    model, backbone, x = transfer
    with pytest.raises(QATError, match=f"nests model.*{backbone.name}.*pass the MnasNet itself"):
        quantization_aware_training(model, x, np.zeros(len(x), "int64"))
