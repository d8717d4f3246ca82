"""LR-ASPP semantic segmentation (MobileNetV3 paper, arXiv 1905.02244, section 6.4).

The head taps two backbone features: ``low`` at output stride 8 and ``high`` at output
stride 16 (the backbone's last stride-2 stage dilated by 2 instead of strided). High
branch: 1x1 conv to ``filters`` + BN + ReLU, multiplied by a gate (pooling -> 1x1 conv to
``filters`` -> sigmoid); it is upsampled (bilinear) to the low feature's size and projected
to the classes by a 1x1 conv; the low feature is projected by another 1x1 conv; the sum is
upsampled to the input size. The paper pools with a 49x49 kernel, stride (16, 20) at
769x769 / 1024x2048 (``pooling=(49, (16, 20))``); torchvision pools globally
(``pooling="global"``, the default here). Both 1x1 convs of the high branch have no bias
(torchvision); the class convs have one.

Parameter counts (torchvision's ``lraspp_mobilenet_v3_large``, 21 classes: 3,221,538
trainable; ``DENSE_HEADS.md`` in the project's reference notes) are matched exactly by
``LRASPPMobileNetV3Large(num_classes=21, reduced_tail=False)``.

Example:
    >>> model = LRASPPMobileNetV3Small(input_shape=(None, None, 3), num_classes=3)
    >>> import numpy as np
    >>> model(np.zeros((1, 37, 51, 3), "float32")).shape  # logits at the input size
    TensorShape([1, 37, 51, 3])
"""

from __future__ import annotations

import keras

from mnas_keras.applications import MnasNetA1, MnasNetB1, MnasNetSmall, MobileNetV3Large, MobileNetV3Small
from mnas_keras.layers import register
from mnas_keras.models import MnasNet
from mnas_keras.models.graph import flatten_model, is_nested
from mnas_keras.models.arguments import FUNCTIONAL_KEYWORDS, check_keyword_arguments, parameter_names

DEFAULT_FILTERS = 128
PAPER_POOLING = (49, (16, 20))
"""The paper's gate pooling at 1024x2048: kernel 49x49, stride (16, 20)."""


def _pair(value, what: str) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    try:
        pair = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        pair = ()
    if len(pair) != 2 or min(pair) < 1:
        raise ValueError(f"Expected a positive integer or pair of positive integers for {what}. Received: {value!r}")
    return pair


def normalize_pooling(pooling):
    """``"global"`` or ``((kh, kw), (sh, sw))`` from the accepted spellings.

    Example:
        >>> normalize_pooling((49, (16, 20)))
        ((49, 49), (16, 20))
        >>> normalize_pooling([[49, 49], [16, 20]])
        ((49, 49), (16, 20))
    """
    if pooling == "global":
        return "global"
    if isinstance(pooling, (tuple, list)) and len(pooling) == 2:
        return _pair(pooling[0], "the pooling kernel"), _pair(pooling[1], "the pooling stride")
    raise ValueError(
        f"Expected pooling='global' or (kernel, stride), e.g. (49, (16, 20)). Received: pooling={pooling!r}"
    )


@register
class ResizeLike(keras.layers.Layer):
    """Bilinear resize of ``inputs[0]`` to the spatial size of ``inputs[1]``.

    Half-pixel centres (``tf.image.resize``'s default, torchvision's ``align_corners=False``).
    Works for dynamic sizes: the target size is read from the reference tensor at run time.

    Example:
        >>> import numpy as np
        >>> x, ref = np.ones((1, 3, 4, 2), "float32"), np.zeros((1, 7, 9, 5), "float32")
        >>> ResizeLike()([x, ref]).shape
        TensorShape([1, 7, 9, 2])
    """

    def __init__(self, interpolation: str = "bilinear", **kwargs):
        super().__init__(**kwargs)
        self.interpolation = interpolation

    def call(self, inputs):
        x, reference = inputs
        shape = keras.ops.shape(reference)
        size = (shape[1], shape[2])
        if isinstance(size[0], int) and isinstance(size[1], int):
            size = (int(size[0]), int(size[1]))
        return keras.ops.image.resize(x, size, interpolation=self.interpolation, data_format="channels_last")

    def compute_output_shape(self, input_shapes):
        x, reference = input_shapes
        return (x[0], reference[1], reference[2], x[3])

    def get_config(self):
        return {**super().get_config(), "interpolation": self.interpolation}


def _backbone_from_config(config):
    if isinstance(config, dict) and "blocks" in config:
        return MnasNet.from_config(dict(config))
    return keras.saving.deserialize_keras_object(config, safe_mode=True)


@register
class LRASPP(keras.Model):
    """LR-ASPP segmentation model on a backbone: logits ``[B, H, W, num_classes]``.

    A flat functional model: the backbone's layers are part of its graph (no nested model),
    so converters and graph rewrites see every layer.

    Args:
        backbone: a ``mnas_keras.MnasNet`` (e.g. ``MobileNetV3Large(include_top=False,
            output_stride=16)``), a functional model nesting one (its endpoints name the
            default taps; the graph is inlined, layers shared), or any functional
            ``keras.Model`` together with ``low_endpoint`` and ``high_endpoint`` layer names
            (also of layers of a model nested in it).
        num_classes: output channels (logits; no softmax).
        filters: width of the high branch and its gate (paper: 128).
        pooling: ``"global"`` (torchvision) or ``(kernel, stride)``, e.g. the paper's
            ``(49, (16, 20))``; the pooled gate is resized (bilinear) to the high feature's
            size. A kernel larger than the high feature fails: use ``"global"`` for small
            inputs.
        low_endpoint, high_endpoint: layer names of the taps. Default for a ``MnasNet``:
            its ``stride_8`` and deepest ``stride_<n>`` endpoints.
        name: model name.

    Input: images as the backbone takes them (the applications take [0, 255] pixels).
    Output: float logits of exactly the input's height and width, for any size (odd,
    non-square) the backbone accepts.

    Raises:
        ValueError: unknown endpoint, a non-positive ``num_classes``/``filters``, a
            malformed ``pooling``.

    Example:
        >>> from mnas_keras.applications import MobileNetV3Small
        >>> bb = MobileNetV3Small(input_shape=(64, 96, 3), include_top=False, weights=None,
        ...                       output_stride=16, reduced_tail=True)
        >>> LRASPP(bb, num_classes=5).output_shape
        (None, 64, 96, 5)
    """

    def __init__(
        self,
        backbone,
        num_classes: int,
        filters: int = DEFAULT_FILTERS,
        pooling="global",
        low_endpoint: str | None = None,
        high_endpoint: str | None = None,
        name: str = "lraspp",
        **kwargs,
    ):
        check_keyword_arguments("LRASPP", kwargs, FUNCTIONAL_KEYWORDS + parameter_names(LRASPP.__init__))
        if isinstance(backbone, dict):
            backbone = _backbone_from_config(backbone)
        if not isinstance(backbone, keras.Model):
            raise ValueError(f"Expected a keras.Model backbone. Received: {type(backbone).__name__}")
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise ValueError(f"Expected a positive integer num_classes. Received: num_classes={num_classes!r}")
        if not isinstance(filters, int) or isinstance(filters, bool) or filters < 1:
            raise ValueError(f"Expected a positive integer filters. Received: filters={filters!r}")
        pooling = normalize_pooling(pooling)
        graph, named = backbone, backbone
        if not isinstance(backbone, MnasNet) and is_nested(backbone):
            # A model nesting the backbone (e.g. the transfer-learning wrapper): its graph is
            # inlined (same layers), and a nested MnasNet's endpoints name the default taps.
            graph = flatten_model(backbone)
            named = _nested_mnasnet(backbone) or backbone
        low_name, high_name = _endpoints(named, low_endpoint, high_endpoint, wrapper=backbone)
        low = _tap(graph, low_name, "low_endpoint")
        high = _tap(graph, high_name, "high_endpoint")
        inputs = graph.inputs[0] if len(graph.inputs) == 1 else graph.inputs
        x = keras.layers.Conv2D(filters, 1, use_bias=False, name="lraspp_cbr_conv")(high)
        x = keras.layers.BatchNormalization(epsilon=1e-3, momentum=0.99, name="lraspp_cbr_bn")(x)
        x = keras.layers.ReLU(name="lraspp_cbr_relu")(x)
        if pooling == "global":
            s = keras.layers.GlobalAveragePooling2D(keepdims=True, name="lraspp_pool")(high)
        else:
            kernel, stride = pooling
            size = tuple(high.shape[1:3])
            if any(d is not None and d < k for d, k in zip(size, kernel)):
                raise ValueError(
                    f"pooling kernel {kernel[0]}x{kernel[1]} is larger than the high feature "
                    f"{size[0]}x{size[1]} (layer {high_name!r}); use pooling='global' for this input size, a "
                    "smaller kernel, or a larger input (the paper's 49x49 kernel is for 1024x2048)."
                )
            s = keras.layers.AveragePooling2D(kernel, stride, padding="valid", name="lraspp_pool")(high)
        s = keras.layers.Conv2D(filters, 1, use_bias=False, name="lraspp_scale_conv")(s)
        s = keras.layers.Activation("sigmoid", name="lraspp_scale_sigmoid")(s)
        if pooling != "global":
            s = ResizeLike(name="lraspp_scale_resize")([s, x])
        x = keras.layers.Multiply(name="lraspp_gate")([x, s])
        x = ResizeLike(name="lraspp_high_resize")([x, low])
        x = keras.layers.Conv2D(num_classes, 1, name="lraspp_high_classifier")(x)
        y = keras.layers.Conv2D(num_classes, 1, name="lraspp_low_classifier")(low)
        x = keras.layers.Add(name="lraspp_sum")([x, y])
        image = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        x = ResizeLike(name="lraspp_logits", dtype="float32")([x, image])
        super().__init__(inputs=inputs, outputs=x, name=name, **kwargs)
        self.backbone = backbone
        self.num_classes = int(num_classes)
        self._head_config = {
            "num_classes": int(num_classes),
            "filters": int(filters),
            "pooling": pooling if pooling == "global" else [list(pooling[0]), list(pooling[1])],
            "low_endpoint": low_endpoint,
            "high_endpoint": high_endpoint,
            "name": name,
        }

    def get_config(self):
        if isinstance(self.backbone, MnasNet):
            backbone = self.backbone.get_config()
        else:
            backbone = keras.saving.serialize_keras_object(self.backbone)
        return {"backbone": backbone, **self._head_config}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["backbone"] = _backbone_from_config(config["backbone"])
        return cls(**config)


def _nested_mnasnet(model):
    """The first ``MnasNet`` nested in ``model`` (breadth first), or ``None``."""
    queue = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    while queue:
        child = queue.pop(0)
        if isinstance(child, MnasNet):
            return child
        queue.extend(layer for layer in child.layers if isinstance(layer, keras.Model))
    return None


def _endpoints(backbone, low, high, wrapper=None) -> tuple[str, str]:
    """Layer names of the low (stride-8) and high (deepest) taps."""
    endpoints = getattr(backbone, "endpoints", None)
    if not isinstance(backbone, MnasNet) or endpoints is None:
        if low is None or high is None:
            name = (wrapper or backbone).name
            raise ValueError(
                f"Backbone {name!r} is not a mnas_keras.MnasNet and nests none: pass low_endpoint and "
                "high_endpoint (layer names of the stride-8 and stride-16 features)."
            )
        return low, high
    if low is None:
        low = _stride8_end(backbone)
    elif low in endpoints:
        low = endpoints[low]
    if high is None:
        deepest = max(int(k.split("_")[1]) for k in endpoints if k.startswith("stride_"))
        high = endpoints[f"stride_{deepest}"]
    elif high in endpoints:
        high = endpoints[high]
    return low, high


def _stride8_end(backbone) -> str:
    """The last layer of the stride-8 stage (at output stride 8 the endpoints name the head)."""
    config = backbone.get_config()
    if config.get("output_stride", 32) >= 16:
        name = backbone.endpoints.get("stride_8")
    else:  # same layer names at output stride 32, where the stride-8 stage ends visibly
        twin = MnasNet.from_config({**config, "output_stride": 32, "include_top": False,
                                    "input_shape": (None, None, config["input_shape"][-1])})
        name = twin.endpoints.get("stride_8")
    if name is None:
        raise ValueError(f"Backbone {backbone.name!r} has no stride-8 stage; pass low_endpoint")
    return name


def _tap(backbone, layer_name: str, what: str):
    try:
        layer = backbone.get_layer(layer_name)
    except ValueError:
        layer = None
    if layer is not None:
        # The layer's call in this graph: a flattened model shares its layers with the
        # model they came from, whose own call is the layer's first node (``layer.output``).
        for index, node in enumerate(layer._inbound_nodes):
            if f"{id(layer)}_ib-{index}" in backbone._nodes:
                return node.output_tensors[0] if len(node.output_tensors) == 1 else node.output_tensors
    try:
        return backbone.get_layer(layer_name).output
    except ValueError:
        names = sorted(getattr(backbone, "endpoints", {}) or [])
        raise ValueError(
            f"Unknown {what} {layer_name!r} in backbone {backbone.name!r}. Expected a layer name"
            + (f" or one of the endpoints {names}." if names else ".")
        ) from None


# --------------------------------------------------------------------------------------
# keras.applications-style constructors


def _check_weights(backbone_weights):
    import os

    if backbone_weights is None or backbone_weights == "imagenet":
        return
    if not (isinstance(backbone_weights, (str, os.PathLike)) and os.path.exists(backbone_weights)):
        raise ValueError(
            "Expected backbone_weights None, 'imagenet' or the path of an existing weights file. "
            f"Received: backbone_weights={backbone_weights!r}"
        )


def _lraspp(constructor, title, input_shape, num_classes, reduced_tail, pooling, filters,
            backbone_weights, output_stride, name, **backbone_kwargs):
    _check_weights(backbone_weights)
    if output_stride not in (8, 16):
        raise ValueError(f"Expected output_stride 8 or 16. Received: output_stride={output_stride!r}")
    backbone = constructor(
        input_shape=input_shape,
        include_top=False,
        weights=None,
        output_stride=output_stride,
        reduced_tail=reduced_tail,
        **backbone_kwargs,
    )
    if backbone_weights is not None:
        _load_backbone_weights(constructor, backbone, backbone_weights,
                               {**backbone_kwargs, "reduced_tail": reduced_tail})
    return LRASPP(backbone, num_classes, filters=filters, pooling=pooling, name=name or title)


def _load_backbone_weights(constructor, backbone, weights, backbone_kwargs):
    """ImageNet (or file) weights into the backbone; dilation and shapes do not change weights."""
    if weights == "imagenet":
        if backbone_kwargs.get("reduced_tail"):
            raise ValueError("backbone_weights='imagenet' needs reduced_tail=False (no such weights exist)")
        reference = constructor(include_top=False, weights="imagenet",
                                **{k: v for k, v in backbone_kwargs.items() if k != "reduced_tail"})
        backbone.set_weights(reference.get_weights())
        return
    try:
        backbone.load_weights(weights)
    except Exception as err:  # noqa: BLE001 - re-raised with the file named
        raise ValueError(
            f"Could not load backbone_weights {weights!r} into {backbone.name}: {err}. The file "
            "must hold weights of the same backbone (include_top=False, same reduced_tail)."
        ) from err


_DOC = """LR-ASPP on {backbone} (MobileNetV3 paper section 6.4): logits at the input size.

    Args:
        input_shape: ``(height, width, 3)``; ``None`` sizes allowed (default ``(None, None, 3)``).
            Inputs are [0, 255] pixels (the backbone normalizes inside).
        num_classes: segmentation classes (logits).
        reduced_tail: halve the last stage's filters (the paper's RF2; its Cityscapes
            models use it; torchvision does not).
        pooling: gate pooling, ``"global"`` (torchvision) or ``(kernel, stride)`` such as the
            paper's ``(49, (16, 20))`` at 1024x2048.
        filters: high-branch width (paper: 128).
        backbone_weights: ``None``, ``"imagenet"`` (classification weights of the backbone{imagenet})
            or the path of a backbone weights file.
        output_stride: 16 (paper) or 8 (the last two stride-2 stages dilated).
        name: model name.
        **kwargs: further backbone options ({extra}``alpha``, ``bn_momentum``, ...).

    Returns:
        A :class:`LRASPP` model.

    Raises:
        ValueError: bad arguments (see :class:`LRASPP`).

    Example:
        >>> model = {title}(input_shape=(64, 96, 3), num_classes=3)
        >>> model.output_shape
        (None, 64, 96, 3)
"""


def _make(constructor, title: str, backbone_title: str, extra: str, imagenet: str):
    def build(input_shape=None, num_classes=21, reduced_tail=True, pooling="global",
              filters=DEFAULT_FILTERS, backbone_weights=None, output_stride=16, name=None,
              **kwargs):
        return _lraspp(constructor, title, input_shape, num_classes, reduced_tail, pooling,
                       filters, backbone_weights, output_stride, name, **kwargs)

    build.__doc__ = _DOC.format(backbone=backbone_title, extra=extra, imagenet=imagenet, title=title)
    build.__name__ = build.__qualname__ = title
    return build


LRASPPMobileNetV3Large = _make(MobileNetV3Large, "LRASPPMobileNetV3Large", "MobileNetV3-Large",
                               "``minimalistic``, ", ", keras.applications' files")
LRASPPMobileNetV3Small = _make(MobileNetV3Small, "LRASPPMobileNetV3Small", "MobileNetV3-Small",
                               "``minimalistic``, ", ", keras.applications' files")
LRASPPMnasNetA1 = _make(MnasNetA1, "LRASPPMnasNetA1", "MnasNet-A1", "",
                        "; none exist for MnasNet, so only a file works")
LRASPPMnasNetB1 = _make(MnasNetB1, "LRASPPMnasNetB1", "MnasNet-B1", "",
                        "; none exist for MnasNet, so only a file works")
LRASPPMnasNetSmall = _make(MnasNetSmall, "LRASPPMnasNetSmall", "MnasNet-small", "",
                           "; none exist for MnasNet, so only a file works")
