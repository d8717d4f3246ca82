"""`.keras` round trips: `import mnas_keras` alone loads the package's files; per-layer
`trainable` flags and dtype policies survive as they do for keras.applications' models; bad
archives are named."""

import json
import os
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest

import mnas_keras
from mnas_keras._serialization import InvalidKerasFileError, load_model, registering_modules
from mnas_keras.applications import MobileNetV3Small

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _weighted(model):
    return [layer for layer in model.layers if layer.weights]


def _round_trip(model, path):
    model.save(path)
    return keras.saving.load_model(path)


def _pair():
    """Ours and keras.applications' MobileNetV3Small (same weights order), 32x32, 5 classes."""
    ours = MobileNetV3Small(input_shape=(32, 32, 3), weights=None, classes=5)
    theirs = keras.applications.MobileNetV3Small(input_shape=(32, 32, 3), weights=None, classes=5)
    return ours, theirs


def test_registering_modules_found_by_scan():
    # By hand: the files that call register_keras_serializable(package="mnas_keras") or @register.
    expected = {"mnas_keras.layers.drop_connect", "mnas_keras.models.backbone", "mnas_keras.training.optim"}
    assert expected <= set(registering_modules())
    assert "mnas_keras.layers.registry" not in registering_modules()


def test_import_mnas_keras_alone_loads_package_file(tmp_path):
    model = mnas_keras.create_model("mobilenet_v3_small", input_shape=(32, 32, 3), classes=5)
    for layer in model.layers[:30]:
        layer.trainable = False
    expected = len(model.trainable_weights)
    path = tmp_path / "m.keras"
    model.save(path)
    script = (
        "import sys, json\n"
        "import mnas_keras\n"
        "tf_early = 'tensorflow' in sys.modules\n"
        "import keras\n"
        f"m = keras.saving.load_model({str(path)!r})\n"
        "print(json.dumps([tf_early, type(m).__name__, len(m.trainable_weights)]))\n"
    )
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [False, "MnasNet", expected]


def test_frozen_layers_survive_like_keras_applications(tmp_path):
    ours, theirs = _pair()
    for a, b in list(zip(_weighted(ours), _weighted(theirs)))[:25]:
        a.trainable = False
        b.trainable = False
    before = len(theirs.trainable_weights)
    theirs_loaded = _round_trip(theirs, tmp_path / "theirs.keras")
    ours_loaded = _round_trip(ours, tmp_path / "ours.keras")
    assert len(theirs_loaded.trainable_weights) == before  # keras.applications keeps the flags
    assert len(ours.trainable_weights) == before
    assert len(ours_loaded.trainable_weights) == before
    assert [layer.trainable for layer in _weighted(ours_loaded)] == [layer.trainable for layer in _weighted(theirs_loaded)]
    assert "blocks" in ours_loaded.get_config()  # still declarative


def test_frozen_backbone_survives(tmp_path):
    ours, theirs = _pair()
    ours.trainable = False
    theirs.trainable = False
    theirs_loaded = _round_trip(theirs, tmp_path / "theirs.keras")
    loaded = _round_trip(ours, tmp_path / "frozen.keras")
    assert len(theirs_loaded.trainable_weights) == 0
    assert loaded.trainable is False and len(loaded.trainable_weights) == 0
    assert len(loaded.non_trainable_weights) == len(theirs_loaded.non_trainable_weights)


def test_mixed_float16_survives_like_keras_applications(tmp_path):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        ours = MobileNetV3Small(input_shape=(32, 32, 3), weights=None, classes=5)
        theirs = keras.applications.MobileNetV3Small(input_shape=(32, 32, 3), weights=None, classes=5)
    finally:
        keras.config.set_dtype_policy(previous)
    theirs_loaded = _round_trip(theirs, tmp_path / "theirs.keras")
    ours_loaded = _round_trip(ours, tmp_path / "ours.keras")
    theirs_policies = [layer.dtype_policy.name for layer in _weighted(theirs_loaded)]
    assert set(theirs_policies) == {"mixed_float16"}
    assert [layer.dtype_policy.name for layer in _weighted(ours_loaded)] == theirs_policies
    x = np.zeros((1, 32, 32, 3), "float32")
    assert ours_loaded(x).dtype == theirs_loaded(x).dtype


def test_nested_frozen_backbone_survives(tmp_path):
    # The README's transfer-learning model: only the new head stays trainable after a reload.
    backbone = MobileNetV3Small(input_shape=(32, 32, 3), include_top=False, pooling="avg", weights=None)
    backbone.trainable = False
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Dense(5, name="head")(backbone(inputs, training=False)))
    loaded = _round_trip(model, tmp_path / "transfer.keras")
    assert [v.path for v in loaded.trainable_weights] == ["head/kernel", "head/bias"]
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-5)


@pytest.mark.parametrize("kind", ["truncated", "garbage", "no_config"])
def test_bad_archive_named(kind, tmp_path):
    good = tmp_path / "good.keras"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save(good)
    bad = tmp_path / f"{kind}.keras"
    if kind == "truncated":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif kind == "garbage":
        bad.write_bytes(b"not a zip file at all" * 10)
    else:
        with zipfile.ZipFile(bad, "w") as archive:
            archive.writestr("metadata.json", "{}")
    with pytest.raises(InvalidKerasFileError, match=r"not a valid \.keras archive") as err:
        load_model(bad)
    assert str(bad) in str(err.value)
    assert isinstance(err.value, ValueError)


def test_mnas_tflite_ops_loads_package_keras_file(tmp_path, capsys):
    # What mnas-train's export writes: a MnasNet saved with model.save.
    from mnas_keras.tflite.cli import main

    model = mnas_keras.MnasNet(["r1_k3_s11_e1_i16_o8", "r1_k3_s22_e3_i8_o16_se0.25"],
                               input_shape=(32, 32, 3), stem_filters=8, head_filters=32, classes=4,
                               activation="hswish")
    path = tmp_path / "model.keras"
    model.save(path)
    assert main(["mnas-tflite", "ops", f"--model={path}", "--json"]) == 0
    ops = json.loads(capsys.readouterr().out)["operators"]
    assert ops["HARD_SWISH"] == 5  # by hand: stem, block 1 depthwise, block 2 expand+depthwise, head
    assert main(["mnas-tflite", "ops", f"--model={tmp_path / 'missing.keras'}"]) == 2
    assert "does not exist" in capsys.readouterr().err
