"""The README's transfer-learning recipe on real offline data (scikit-learn digits).

No ImageNet weights can be downloaded here, so the backbone is first "pretrained" on digits
0-4; it is then transferred, frozen, to the new task of telling digits 5-9 apart, and fine-tuned.
"""

import keras
import numpy as np

from mnas_keras.applications import MnasNetSmall
from tests._fit import build_fit_state

KW = dict(input_shape=(32, 32, 3), weights=None, bn_momentum=0.9)


def _subset(x, y, labels):
    mask = np.isin(y, labels)
    return x[mask], (y[mask] - labels[0]).astype("int32")


def test_frozen_backbone_then_fine_tune(digits32, tmp_path):
    (x_train, y_train), (x_test, y_test) = digits32
    keras.utils.set_random_seed(0)
    source = MnasNetSmall(classes=5, **KW)
    source.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    x_source, y_source = _subset(x_train, y_train, [0, 1, 2, 3, 4])
    build_fit_state(source, x_source, y_source)  # fit then traces its step once (tests/_fit.py)
    source.fit(x_source, y_source, batch_size=32, epochs=6, verbose=0)
    source.save_weights(str(tmp_path / "source.weights.h5"))

    backbone = MnasNetSmall(include_top=False, pooling="avg", **KW)
    for layer in backbone.layers:  # same layer names: copy the pretrained backbone
        if layer.weights:
            layer.set_weights(source.get_layer(layer.name).get_weights())
    backbone.trainable = False
    inputs = keras.Input((32, 32, 3))
    x = backbone(inputs, training=False)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(5, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])

    x_new, y_new = _subset(x_train, y_train, [5, 6, 7, 8, 9])
    x_new_test, y_new_test = _subset(x_test, y_test, [5, 6, 7, 8, 9])
    untrained = model.evaluate(x_new_test, y_new_test, verbose=0, return_dict=True)
    frozen = [w.numpy().copy() for w in backbone.weights]
    build_fit_state(model, x_new, y_new)
    model.fit(x_new, y_new, batch_size=32, epochs=4, verbose=0)
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(frozen, backbone.weights))
    head_only = model.evaluate(x_new_test, y_new_test, verbose=0, return_dict=True)

    backbone.trainable = True
    model.compile(keras.optimizers.Adam(5e-4), "sparse_categorical_crossentropy", metrics=["accuracy"])
    build_fit_state(model, x_new, y_new)
    model.fit(x_new, y_new, batch_size=32, epochs=6, verbose=0)
    tuned = model.evaluate(x_new_test, y_new_test, verbose=0, return_dict=True)
    assert untrained["accuracy"] < 0.5
    assert head_only["accuracy"] > untrained["accuracy"] + 0.2, (untrained, head_only)
    assert tuned["accuracy"] >= 0.9, (head_only, tuned)
