"""MobileNetV3 is numerically keras.applications' model; ImageNet weights load from the cache."""

import hashlib
import os
import shutil

import keras
import numpy as np
import pytest

from mnas_keras.applications import MobileNetV3Large, MobileNetV3Small, WeightsUnavailableError, mobilenet_v3

SIZE = (32, 32, 3)
VARIANTS = [
    {},
    {"alpha": 0.75},
    {"minimalistic": True},
    {"alpha": 1.25},
    {"include_top": False, "pooling": "avg"},
    {"include_top": False},
]


def _perturbed(weights, rng):
    """Random BN statistics so that a wrong graph cannot agree by accident."""
    out = []
    for w in weights:
        if w.ndim == 1:
            w = w + rng.normal(0.0, 0.2, w.shape).astype("float32")
        out.append(w)
    return out


@pytest.mark.parametrize("ours_fn, ref_fn", [
    (MobileNetV3Small, keras.applications.MobileNetV3Small),
    (MobileNetV3Large, keras.applications.MobileNetV3Large),
])
@pytest.mark.parametrize("kwargs", VARIANTS, ids=lambda k: "-".join(f"{a}{b}" for a, b in k.items()) or "default")
def test_outputs_match_keras_applications(ours_fn, ref_fn, kwargs):
    rng = np.random.default_rng(0)
    extra = {"classifier_activation": None} if kwargs.get("include_top", True) else {}
    ref = ref_fn(input_shape=SIZE, weights=None, **kwargs, **extra)
    ours = ours_fn(input_shape=SIZE, weights=None, **kwargs, **extra)
    weights = ref.get_weights()
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in weights]
    weights = [np.abs(w) + 0.5 if w.ndim == 1 and i % 4 == 3 else w for i, w in enumerate(_perturbed(weights, rng))]
    ref.set_weights(weights)
    ours.set_weights(weights)
    x = rng.uniform(0, 255, (2,) + SIZE).astype("float32")
    expected = keras.ops.convert_to_numpy(ref(x, training=False))
    actual = keras.ops.convert_to_numpy(ours(x, training=False))
    assert expected.shape == actual.shape
    scale = max(1.0, float(np.max(np.abs(expected))))
    np.testing.assert_allclose(actual, expected, atol=2e-5 * scale, rtol=1e-4)
    assert ours.count_params() == ref.count_params()


def test_imagenet_weights_load_from_the_keras_cache(tmp_path, monkeypatch):
    """Places a weights file where keras.utils.get_file looks, then loads it by name."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    ref = keras.applications.MobileNetV3Small(input_shape=(224, 224, 3), weights=None)
    rng = np.random.default_rng(1)
    ref.set_weights([w + rng.normal(0, 0.01, w.shape).astype("float32") for w in ref.get_weights()])
    file_name, _ = mobilenet_v3.weights_file("small", 1.0, False, True)
    folder = tmp_path / "models"
    folder.mkdir()
    ref.save(str(folder / "full.h5"))  # legacy HDF5, the format of keras.applications' files
    shutil.move(str(folder / "full.h5"), str(folder / file_name))
    digest = hashlib.md5((folder / file_name).read_bytes()).hexdigest()
    key = "small_224_1.0_float"
    monkeypatch.setitem(mobilenet_v3.WEIGHTS_HASHES, key, (digest, digest))
    ours = MobileNetV3Small(input_shape=(224, 224, 3), weights="imagenet")
    for a, b in zip(ours.get_weights(), ref.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_imagenet_weights_offline_error_names_file_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(mobilenet_v3, "BASE_WEIGHT_PATH", "http://127.0.0.1:9/")  # nothing listens
    with pytest.raises(WeightsUnavailableError) as info:
        MobileNetV3Small(input_shape=SIZE, weights="imagenet")
    message = str(info.value)
    assert "weights_mobilenet_v3_small_224_1.0_float.h5" in message
    assert os.path.join(str(tmp_path), "models") in message


def test_imagenet_weights_argument_checks():
    with pytest.raises(WeightsUnavailableError, match="alpha"):
        MobileNetV3Small(input_shape=SIZE, weights="imagenet", alpha=0.5)
    with pytest.raises(ValueError, match="classes"):
        MobileNetV3Small(input_shape=SIZE, weights="imagenet", classes=10)
    with pytest.raises(ValueError, match="at least 32x32"):
        MobileNetV3Small(input_shape=(16, 16, 3), weights=None)
