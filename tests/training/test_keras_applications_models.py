"""``mnas-train --model=keras:<Application>`` passes the options in the names each
keras.applications constructor takes.

Found by a new user's pass: ``mnas-train --recipe=digits --model=keras:MobileNetV2`` ended in
``TypeError: MobileNetV2() got an unexpected keyword argument 'dropout_rate'`` (the digits
recipe sets ``model.dropout_rate=0``; MobileNetV2 has no dropout, MobileNet calls it
``dropout``).
"""

import keras
import pytest

from mnas_keras.training.config import ModelConfig
from mnas_keras.training.errors import ConfigError
from mnas_keras.training.tasks.classification import build_classifier


def _dropout_rates(model):
    return [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]


def test_mobilenet_v2_without_dropout_argument_builds_as_keras_does():
    model = build_classifier(ModelConfig(name="keras:MobileNetV2", dropout_rate=0.0), image_size=32, num_classes=10)
    reference = keras.applications.MobileNetV2(input_shape=(32, 32, 3), weights=None, classes=10,
                                               classifier_activation=None)
    assert model.count_params() == reference.count_params()
    with pytest.raises(ConfigError, match=r"model.dropout_rate=0.3: keras.applications.MobileNetV2 has no dropout "
                                          r"argument; set model.dropout_rate=null"):
        build_classifier(ModelConfig(name="keras:MobileNetV2", dropout_rate=0.3), image_size=32, num_classes=10)


@pytest.mark.parametrize("name", ["MobileNet", "MobileNetV3Small"])  # 'dropout' and 'dropout_rate'
def test_dropout_reaches_the_constructor_under_its_own_name(name):
    model = build_classifier(ModelConfig(name=f"keras:{name}", dropout_rate=0.3, alpha=0.5), image_size=32,
                             num_classes=10)
    assert _dropout_rates(model) == [0.3]
    reference = getattr(keras.applications, name)(input_shape=(32, 32, 3), weights=None, classes=10, alpha=0.5,
                                                  classifier_activation=None)
    assert model.count_params() == reference.count_params()


def test_alpha_on_a_model_without_width_multiplier_is_named():
    with pytest.raises(ConfigError, match=r"model.alpha=0.5: keras.applications.ResNet50 has no width multiplier"):
        build_classifier(ModelConfig(name="keras:ResNet50", alpha=0.5), image_size=32, num_classes=10)
