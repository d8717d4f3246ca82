"""keras.applications-style constructors for the MnasNet family and MobileNetV3.

Example:
    >>> from mnas_keras.applications import MobileNetV3Small
    >>> MobileNetV3Small(input_shape=(32, 32, 3), weights=None, classes=10).output_shape
    (None, 10)
"""

from mnas_keras.applications.errors import WeightsUnavailableError
from mnas_keras.applications.imagenet_utils import decode_predictions, preprocess_input
from mnas_keras.applications.mnasnet import MnasNetA1, MnasNetB1, MnasNetD1, MnasNetD1_320, MnasNetSmall
from mnas_keras.applications.mobilenet_v3 import MobileNetV3Large, MobileNetV3Small
from mnas_keras.applications.mobilenet_v4 import MobileNetV4ConvLarge, MobileNetV4ConvMedium, MobileNetV4ConvSmall
from mnas_keras.applications.nasnet import NASNetMobile
from mnas_keras.applications.registry import UnknownModelError, create_model, list_models, parse_model_name

__all__ = [
    "MnasNetA1",
    "MnasNetB1",
    "MnasNetD1",
    "MnasNetD1_320",
    "MnasNetSmall",
    "MobileNetV3Large",
    "MobileNetV3Small",
    "MobileNetV4ConvLarge",
    "MobileNetV4ConvMedium",
    "MobileNetV4ConvSmall",
    "NASNetMobile",
    "UnknownModelError",
    "WeightsUnavailableError",
    "create_model",
    "decode_predictions",
    "list_models",
    "parse_model_name",
    "preprocess_input",
]
