"""The keras.applications contract, argument by argument, side by side with
keras.applications.MobileNetV3Small / MobileNetV3Large (the expected values are theirs)."""

import keras
import numpy as np
import pytest

from mnas_keras.applications import MnasNetSmall, MobileNetV3Large, MobileNetV3Small
from mnas_keras.models.backbone import IMAGENET_MEAN, IMAGENET_STD

OURS = {"small": MobileNetV3Small, "large": MobileNetV3Large}
THEIRS = {"small": keras.applications.MobileNetV3Small, "large": keras.applications.MobileNetV3Large}


def _images(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (2,) + tuple(d or 32 for d in shape)).astype("float32")


CASES = {
    "one_channel": dict(input_shape=(32, 32, 1), classes=5),
    "four_channels_no_preprocessing": dict(input_shape=(32, 32, 4), classes=5, include_preprocessing=False),
    "dynamic_size_one_channel": dict(input_shape=(None, None, 1), classes=5),
    "pooling_avg": dict(input_shape=(32, 32, 3), include_top=False, pooling="avg"),
    "pooling_max": dict(input_shape=(32, 32, 3), include_top=False, pooling="max"),
    "no_top_no_pooling": dict(input_shape=(32, 32, 3), include_top=False),
    "logits_alpha_075": dict(input_shape=(32, 32, 3), classes=5, classifier_activation=None, alpha=0.75),
    "minimalistic_named": dict(input_shape=(32, 32, 3), classes=5, minimalistic=True, name="mini"),
    "dropout_and_pooling_ignored_with_top": dict(input_shape=(32, 32, 3), classes=5, dropout_rate=0.5,
                                                  pooling="avg"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_model_as_keras_applications(case):
    kwargs = CASES[case]
    kind = "large" if case == "logits_alpha_075" else "small"
    ours = OURS[kind](weights=None, **kwargs)
    theirs = THEIRS[kind](weights=None, **kwargs)
    assert ours.name == theirs.name
    assert ours.input_shape == theirs.input_shape and ours.output_shape == theirs.output_shape
    ours.set_weights(theirs.get_weights())  # same weights, same order
    x = _images(theirs.input_shape[1:])
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(theirs(x)), rtol=1e-4, atol=1e-5)
    rates = lambda m: [layer.rate for layer in m.layers if isinstance(layer, keras.layers.Dropout)]  # noqa: E731
    assert rates(ours) == rates(theirs)


def test_input_tensor_from_another_layer():
    # keras.applications builds on the given tensor and takes the source Input as model input.
    source = keras.Input((32, 32, 3))
    tensor = keras.layers.Rescaling(0.5, name="user_scale")(source)
    ours = MobileNetV3Small(input_tensor=tensor, weights=None, classes=5)
    theirs = keras.applications.MobileNetV3Small(input_tensor=tensor, weights=None, classes=5)
    assert ours.inputs[0] is source and theirs.inputs[0] is source
    ours.set_weights(theirs.get_weights())
    x = _images((32, 32, 3))
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(theirs(x)), rtol=1e-4, atol=1e-5)
    # Its declarative config cannot hold the layers before the backbone: a clear error on save.
    with pytest.raises(ValueError, match="built on input_tensor from layer 'user_scale'"):
        ours.get_config()


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(input_shape=(16, 16, 3)),  # below 32x32
        dict(input_shape=(32, 32, 3), weights="imagenet", classes=5),  # imagenet needs 1000 classes
        dict(input_tensor=keras.Input((32, 32, 3)), input_shape=(64, 64, 3)),  # shapes disagree
        dict(weights="/nonexistent/weights.h5"),
    ],
    ids=["small_input", "imagenet_classes", "tensor_shape_mismatch", "missing_weights_file"],
)
def test_same_errors_as_keras_applications(kwargs):
    kwargs = {"weights": None, **kwargs}
    with pytest.raises(ValueError):
        keras.applications.MobileNetV3Small(**kwargs)
    with pytest.raises(ValueError):
        MobileNetV3Small(**kwargs)


def test_imagenet_weights_need_three_channels_before_any_download():
    with pytest.raises(ValueError, match=r"need 3 input channels.*\(32, 32, 1\).*weights=None"):
        MobileNetV3Small(input_shape=(32, 32, 1), weights="imagenet")


def test_mnasnet_one_channel_normalization_by_hand():
    model = MnasNetSmall(input_shape=(32, 32, 1), weights=None, classes=5)
    layer = model.get_layer("normalization")
    x = np.full((1, 32, 32, 1), 200.0, "float32")
    mean = (0.485 + 0.456 + 0.406) / 3 * 255  # ImageNet RGB means, averaged
    std = (0.229 + 0.224 + 0.225) / 3 * 255
    np.testing.assert_allclose(np.asarray(layer(x))[0, 0, 0, 0], (200.0 - mean) / std, rtol=1e-5)
    assert IMAGENET_MEAN[0] == pytest.approx(0.485 * 255) and IMAGENET_STD[2] == pytest.approx(0.225 * 255)
    assert model.output_shape == (None, 5)


@pytest.mark.parametrize("kind", sorted(OURS))
def test_constructor_signature_matches_keras_applications(kind):
    # Same parameters, order and defaults as keras.applications' constructor; ours differ only
    # in ``name=None`` (the model is still named like theirs, see above) and the extra **kwargs.
    import inspect

    ours = inspect.signature(OURS[kind]).parameters
    theirs = inspect.signature(THEIRS[kind]).parameters
    assert [p for p in ours if p != "kwargs"] == list(theirs)
    for param in theirs:
        if param != "name":
            assert ours[param].default == theirs[param].default, param
    assert ours["kwargs"].kind is inspect.Parameter.VAR_KEYWORD


def test_every_constructor_is_a_plain_function_with_a_uniform_signature():
    # keras.applications style: an explicit def per model (its own name), one argument list.
    import inspect

    import mnas_keras.applications as apps

    names = ["MnasNetA1", "MnasNetB1", "MnasNetSmall", "MnasNetD1", "MnasNetD1_320",
             "MobileNetV4ConvSmall", "MobileNetV4ConvMedium", "MobileNetV4ConvLarge",
             "MobileNetV4HybridMedium", "MobileNetV4HybridLarge"]
    expected = ["input_shape", "alpha", "include_top", "weights", "input_tensor", "classes", "pooling",
                "dropout_rate", "classifier_activation", "include_preprocessing", "name", "kwargs"]
    for name in names + ["MobileNetV3Small", "MobileNetV3Large"]:
        fn = getattr(apps, name)
        assert fn.__name__ == fn.__qualname__ == name
        params = [p for p in inspect.signature(fn).parameters if p != "minimalistic"]
        assert params == expected, name
        assert "Args:" in fn.__doc__ and "Returns:" in fn.__doc__, name
