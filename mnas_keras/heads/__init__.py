"""Task heads on MnasNet-family backbones: LR-ASPP segmentation and SSDLite detection
(with its anchors and box utilities)."""


from mnas_keras.heads.lraspp import LRASPP, LRASPPMnasNetA1, LRASPPMnasNetB1, LRASPPMnasNetSmall
from mnas_keras.heads.lraspp import LRASPPMobileNetV3Large, LRASPPMobileNetV3Small, ResizeLike
from mnas_keras.heads.anchors import AnchorConfig, generate_anchors
from mnas_keras.heads.ssdlite import (
    SSDLite,
    SSDLiteMnasNetA1,
    SSDLiteMobileNetV3Large,
    SSDLiteMobileNetV3Small,
)
from mnas_keras.heads.box_coder import anchor_iou, assign_targets, decode_boxes, encode_boxes, match_anchors
from mnas_keras.heads.losses import detection_loss
from mnas_keras.heads.postprocess import postprocess
