"""Task heads on mnas_keras backbones: SSDLite detection (and its anchors and box utilities)."""

from mnas_keras.heads.anchors import AnchorConfig, generate_anchors
from mnas_keras.heads.ssdlite import (
    SSDLite,
    SSDLiteMnasNetA1,
    SSDLiteMobileNetV3Large,
    SSDLiteMobileNetV3Small,
)
