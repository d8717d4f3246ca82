"""The network's global options declared once (issue 17 item 6): ``NetworkOptions``.

``data/mnasnet_options_keras_v1.json`` is the ``config.json`` of a ``.keras`` file saved by the
code before ``NetworkOptions`` (every option off its default) and the weight paths and shapes
of its ``model.weights.h5`` (read with h5py): such a file must still load, to the same config
and the same weights layout."""

import json
import os

import h5py
import keras

from mnas_keras.codec.options import NetworkOptions
from mnas_keras.models import MnasNet

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "mnasnet_options_keras_v1.json")


def _weights_layout(path):
    out = []
    with h5py.File(path) as f:
        f.visititems(lambda name, obj: out.append([name, list(obj.shape)]) if isinstance(obj, h5py.Dataset) else None)
    return out


def test_a_keras_file_of_the_previous_options_code_loads_unchanged(tmp_path):
    with open(FIXTURE) as f:
        fixture = json.load(f)
    model = keras.saving.deserialize_keras_object(fixture["keras_config"])
    stored = fixture["keras_config"]["config"]
    assert json.loads(json.dumps(model.get_config())) == stored
    model.save_weights(str(tmp_path / "w.weights.h5"))
    assert _weights_layout(str(tmp_path / "w.weights.h5")) == fixture["weights"]
    # the same network from a NetworkOptions value and from keyword arguments
    options = {k: v for k, v in stored.items() if k not in ("blocks", "input_shape", "name")}
    again = MnasNet(stored["blocks"], input_shape=(32, 32, 3), options=NetworkOptions(**options), name="opts")
    assert json.loads(json.dumps(again.get_config())) == stored
