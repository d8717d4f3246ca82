"""Task heads on MnasNet-family backbones (dense prediction: segmentation, detection)."""

from mnas_keras.heads.lraspp import LRASPP, LRASPPMnasNetA1, LRASPPMnasNetB1, LRASPPMnasNetSmall
from mnas_keras.heads.lraspp import LRASPPMobileNetV3Large, LRASPPMobileNetV3Small, ResizeLike
