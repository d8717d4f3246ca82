"""SSDLite: the MobileNetV3 paper's detection head (section 6.3) on any backbone.

Facts (``shared/reference/DENSE_HEADS.md``; MobileNetV3 paper section 6.3, TF Object
Detection API ``ssd_mobilenet_v3_feature_extractor``, torchvision ``ssdlite320_mobilenet_v3_large``):

- taps C4 = the expansion output of the first block of the last stride-2 stage (endpoint
  ``expansion_16`` of a ``mnas_keras.MnasNet``) and C5 = the last conv before pooling
  (``stride_32``);
- four extra blocks (1x1 conv to d/2, 3x3 depthwise stride 2, 1x1 conv to d, each + BN +
  ReLU6) with d = 512, 256, 256, 128: six maps (20, 10, 5, 3, 2, 1 at 320x320);
- per map a class and a box predictor, each a 3x3 depthwise conv + BN + ReLU6 then a 1x1 conv
  with bias (TF OD API class bias init -4.6, prior 0.01);
- anchors of ``mnas_keras.heads.anchors`` (TF OD API layout).

The class logits have ``num_classes + 1`` columns, column 0 the background (as the TF OD API
and torchvision: torchvision's "91 classes" are 90 COCO ids plus background), so one model
serves sigmoid focal loss and softmax with hard negative mining, and its scores feed LiteRT's
``TFLite_Detection_PostProcess`` directly.
"""

from __future__ import annotations

from typing import Sequence

import keras
import numpy as np

from mnas_keras.applications import MnasNetA1, MobileNetV3Large, MobileNetV3Small
from mnas_keras.heads.anchors import AnchorConfig, generate_anchors
from mnas_keras.layers import register
from mnas_keras.models.arguments import FUNCTIONAL_KEYWORDS, check_keyword_arguments, parameter_names

BOX_OUTPUT = "box_encodings"
CLASS_OUTPUT = "class_logits"


def _functional_children(model):
    return [layer for layer in model.layers if isinstance(layer, keras.Model) and hasattr(layer, "_nodes")]


def _find_tap(model: keras.Model, name: str):
    """The output tensor of tap ``name`` in ``model``'s own graph, or ``None``.

    ``name`` is an endpoint or a layer of ``model``, an endpoint or layer of a functional
    model nested in it (at any depth; the first found, breadth first), or a path
    ``"nested/.../layer"``.
    """
    endpoints = getattr(model, "endpoints", None) or {}
    layer_name = endpoints.get(name, name)
    if "/" not in layer_name:
        try:
            return model.get_layer(layer_name).output
        except ValueError:
            pass
    head, _, rest = name.partition("/")
    children = _functional_children(model)
    if rest:
        children = [c for c in children if c.name == head]
        targets = [(c, rest) for c in children]
    else:
        targets = [(c, name) for c in children]
    for child, child_name in targets:
        inner = _find_tap(child, child_name)
        if inner is None:
            continue
        # Keras' functional graph records its nodes as "<id(operation)>_ib-<index>"
        nodes = [n for i, n in enumerate(child._inbound_nodes) if f"{id(child)}_ib-{i}" in model._nodes]
        if len(nodes) != 1:
            raise ValueError(
                f"SSDLite: tap {name!r} is inside {child.name!r}, which {model.name!r} calls "
                f"{len(nodes)} times; expected exactly once."
            )
        # the nested model's inputs -> the tap, called on what feeds it in ``model``
        extract = keras.Model(child.inputs, inner, name=f"{child.name}_tap_{child_name.replace('/', '_')}")
        args = nodes[0].input_tensors
        return extract(args[0] if len(args) == 1 else args)
    return None


def _tap(backbone: keras.Model, name: str):
    out = _find_tap(backbone, name)
    if out is None:
        endpoints = getattr(backbone, "endpoints", None) or {}
        known = sorted(endpoints) or [layer.name for layer in backbone.layers][-5:]
        raise ValueError(
            f"SSDLite: backbone {backbone.name!r} has no endpoint or layer {name!r}, nor has any "
            f"model nested in it. Expected one of {known}, any layer name, or 'nested_model/layer'."
        )
    return out


@register
class SSDLite(keras.Model):
    """SSDLite detector: a functional ``keras.Model`` wrapping a backbone.

    Inputs are images ``[batch, H, W, 3]`` as the backbone takes them (the package's
    applications take [0, 255] pixels). Outputs a dict: ``"box_encodings"``
    ``[batch, anchors, 4]`` (offsets ``(ty, tx, th, tw)`` of ``mnas_keras.heads.box_coder``)
    and ``"class_logits"`` ``[batch, anchors, num_classes + 1]`` (column 0 background).

    Args:
        backbone: a functional ``keras.Model`` with a static input size (a
            ``mnas_keras.MnasNet`` or any model whose layers ``feature_layers`` name).
        num_classes: foreground classes (logits get one more column, the background).
        feature_layers: the C4 and C5 taps, as endpoint names of a ``MnasNet`` or layer
            names of ``backbone``, also of a functional model nested in ``backbone`` (searched
            at any depth, or named by a path ``"nested_model/layer"``). More than two taps are allowed (then fewer extra blocks
            keep six maps only if you shorten ``extra_filters``).
        extra_filters: output channels of the extra blocks (paper: 512, 256, 256, 128).
        anchor_config: an ``AnchorConfig`` or its dict (default: TF OD API).
        class_bias_init: initial class bias (TF OD API: -4.6, a prior of 0.01).
        bn_momentum, bn_epsilon: BN of the head (TF OD API: decay 0.97, epsilon 1e-3).
        name: model name.

    Raises:
        ValueError: an unknown tap, a backbone without a static input size, or
            ``num_classes < 1``.

    Example:
        >>> from mnas_keras.applications import MobileNetV3Small
        >>> bb = MobileNetV3Small(input_shape=(64, 64, 3), include_top=False, weights=None)
        >>> det = SSDLite(bb, num_classes=3, extra_filters=(32, 16, 16, 8))
        >>> det.feature_map_sizes
        [(4, 4), (2, 2), (1, 1), (1, 1), (1, 1), (1, 1)]
        >>> det.anchors().shape, det.output["class_logits"].shape
        ((96, 4), (None, 96, 4))
    """

    def __init__(
        self,
        backbone: keras.Model,
        num_classes: int,
        *,
        feature_layers: Sequence[str] = ("expansion_16", "stride_32"),
        extra_filters: Sequence[int] = (512, 256, 256, 128),
        anchor_config: AnchorConfig | dict | None = None,
        class_bias_init: float = -4.6,
        bn_momentum: float = 0.97,
        bn_epsilon: float = 1e-3,
        name: str = "ssdlite",
        **kwargs,
    ):
        check_keyword_arguments("SSDLite", kwargs, FUNCTIONAL_KEYWORDS + parameter_names(SSDLite.__init__))
        if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise ValueError(f"SSDLite: expected num_classes >= 1. Received: num_classes={num_classes!r}")
        if isinstance(anchor_config, dict):
            anchor_config = AnchorConfig(**anchor_config)
        anchor_config = anchor_config or AnchorConfig()
        shape = tuple(backbone.input_shape[1:])
        if len(shape) != 3 or shape[0] is None or shape[1] is None:
            raise ValueError(
                f"SSDLite: the backbone needs a static input size (anchors depend on it). "
                f"Received: input_shape={shape}"
            )
        taps = [_tap(backbone, n) for n in feature_layers]
        features = list(taps)
        bn = dict(momentum=bn_momentum, epsilon=bn_epsilon)
        x = taps[-1]
        for i, filters in enumerate(extra_filters):
            p = f"ssd_extra{i + 1}_"
            mid = int(filters) // 2
            x = keras.layers.Conv2D(mid, 1, use_bias=False, name=p + "reduce")(x)
            x = keras.layers.BatchNormalization(name=p + "reduce_bn", **bn)(x)
            x = keras.layers.ReLU(6.0, name=p + "reduce_relu6")(x)
            x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False, name=p + "dw")(x)
            x = keras.layers.BatchNormalization(name=p + "dw_bn", **bn)(x)
            x = keras.layers.ReLU(6.0, name=p + "dw_relu6")(x)
            x = keras.layers.Conv2D(int(filters), 1, use_bias=False, name=p + "expand")(x)
            x = keras.layers.BatchNormalization(name=p + "expand_bn", **bn)(x)
            x = keras.layers.ReLU(6.0, name=p + "expand_relu6")(x)
            features.append(x)
        sizes = [(int(f.shape[1]), int(f.shape[2])) for f in features]
        per_location = anchor_config.anchors_per_location(len(features))
        slots = int(num_classes) + 1
        boxes, logits = [], []
        for i, (f, a) in enumerate(zip(features, per_location)):
            for kind, width, out in (("box", 4, boxes), ("class", slots, logits)):
                p = f"ssd_{kind}{i + 1}_"
                y = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=p + "dw")(f)
                y = keras.layers.BatchNormalization(name=p + "dw_bn", **bn)(y)
                y = keras.layers.ReLU(6.0, name=p + "dw_relu6")(y)
                bias = (
                    keras.initializers.Constant(class_bias_init) if kind == "class" else "zeros"
                )
                y = keras.layers.Conv2D(a * width, 1, bias_initializer=bias, name=p + "conv")(y)
                out.append(keras.layers.Reshape((-1, width), name=p + "reshape")(y))
        box_out = keras.layers.Concatenate(axis=1, name=BOX_OUTPUT)(boxes)
        class_out = keras.layers.Concatenate(axis=1, name=CLASS_OUTPUT)(logits)
        super().__init__(
            inputs=backbone.input,
            outputs={BOX_OUTPUT: box_out, CLASS_OUTPUT: class_out},
            name=name,
            **kwargs,
        )
        self.backbone = backbone
        self.num_classes = int(num_classes)
        self.anchor_config = anchor_config
        self.feature_map_sizes = sizes
        self.image_size = (int(shape[0]), int(shape[1]))
        self._ssd_config = {
            "num_classes": int(num_classes),
            "feature_layers": list(feature_layers),
            "extra_filters": [int(f) for f in extra_filters],
            "anchor_config": anchor_config.to_dict(),
            "class_bias_init": float(class_bias_init),
            "bn_momentum": float(bn_momentum),
            "bn_epsilon": float(bn_epsilon),
            "name": name,
        }

    def anchors(self) -> np.ndarray:
        """The model's anchors, ``[num_anchors, 4]`` normalized ``(ycenter, xcenter, h, w)``."""
        return generate_anchors(self.feature_map_sizes, self.anchor_config, self.image_size)

    def get_config(self):
        return {"backbone": keras.saving.serialize_keras_object(self.backbone), **self._ssd_config}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        backbone = keras.saving.deserialize_keras_object(config.pop("backbone"), custom_objects=custom_objects)
        return cls(backbone, **config)


def _constructor(application, title: str, default_name: str, tail_default: bool):
    def constructor(
        input_shape=(320, 320, 3),
        num_classes: int = 90,
        reduced_tail: bool = tail_default,
        backbone_weights=None,
        name: str | None = None,
        **kwargs,
    ) -> SSDLite:
        if backbone_weights is not None and reduced_tail:
            raise ValueError(
                f"{title}: backbone_weights={backbone_weights!r} needs reduced_tail=False "
                "(ImageNet weights are for the full tail)."
            )
        backbone = application(
            input_shape=tuple(input_shape),
            include_top=False,
            weights=backbone_weights,
            reduced_tail=bool(reduced_tail),
        )
        return SSDLite(backbone, num_classes, name=name or default_name, **kwargs)

    constructor.__name__ = constructor.__qualname__ = title
    constructor.__doc__ = f"""SSDLite on {application.__name__} (``include_top=False``, [0, 255] inputs).

    Args:
        input_shape: ``(height, width, 3)``, default 320x320 (the paper's and TF OD API's).
        num_classes: foreground classes (COCO: 90 ids, as TF OD API and torchvision).
        reduced_tail: halve the last stage (the MobileNetV3 paper's detection setting);
            default {tail_default}.
        backbone_weights: ``None``, ``"imagenet"`` (needs ``reduced_tail=False``) or a file.
        name: model name (default ``"{default_name}"``).
        **kwargs: further ``SSDLite`` options (``anchor_config``, ``extra_filters``...).

    Returns:
        An ``SSDLite`` model.

    Raises:
        ValueError: ``backbone_weights`` with ``reduced_tail=True``, or bad ``SSDLite`` options.
    """
    return constructor


SSDLiteMobileNetV3Large = _constructor(MobileNetV3Large, "SSDLiteMobileNetV3Large", "ssdlite_mobilenet_v3_large", True)
SSDLiteMobileNetV3Small = _constructor(MobileNetV3Small, "SSDLiteMobileNetV3Small", "ssdlite_mobilenet_v3_small", True)
SSDLiteMnasNetA1 = _constructor(MnasNetA1, "SSDLiteMnasNetA1", "ssdlite_mnasnet_a1", False)
