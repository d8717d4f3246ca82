"""``MnasNet``: a functional ``keras.Model`` built from block strings."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Sequence

import keras

from mnas_keras.codec import BlockSpec, decode, encode
from mnas_keras.codec.architectures import HEADS, PREPROCESSING
from mnas_keras.layers import register
from mnas_keras.models.builder import BuildOptions, build_graph

IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
_ACTIVATIONS = ("relu", "relu6", "hswish", "swish", "gelu")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def preprocessing_layer(kind: str, channels: int | None = 3):
    """The layer ``include_preprocessing`` puts in front of the model.

    ``"scale_-1_1"`` maps [0, 255] to [-1, 1] for any channel count. ``"imagenet_mean_std"``
    subtracts the ImageNet RGB mean and divides by its std (torchvision's values times 255)
    for 3 channels; for any other channel count (grayscale, RGB plus depth, ...) every
    channel uses the average of the three means and of the three stds (114.5 and 57.6 on
    the [0, 255] scale).

    Example:
        >>> import numpy as np
        >>> layer = preprocessing_layer("imagenet_mean_std", channels=1)
        >>> round(float(np.asarray(layer(np.full((1, 1, 1, 1), 255.0)))[0, 0, 0, 0]), 4)
        2.4381
    """
    if kind == "scale_-1_1":
        return keras.layers.Rescaling(scale=1.0 / 127.5, offset=-1.0, name="rescaling")
    if channels in (3, None):
        mean, std = list(IMAGENET_MEAN), list(IMAGENET_STD)
    else:
        mean = [sum(IMAGENET_MEAN) / 3] * channels
        std = [sum(IMAGENET_STD) / 3] * channels
    return keras.layers.Normalization(mean=mean, variance=[s * s for s in std], name="normalization")


@register
class MnasNet(keras.Model):
    """A MnasNet-family network built from block strings.

    The graph is a flat functional model of stock Keras layers; ``get_config()`` is the block
    strings and the scalars below, so a `.keras` file stays small and declarative.

    Args:
        blocks: block strings (or ``BlockSpec`` s), one per stage.
        input_shape: ``(height, width, channels)``; ``None`` spatial sizes allowed, any
            channel count (see ``preprocessing_layer`` for the normalization of non-RGB
            inputs). Default ``(None, None, 3)``.
        input_tensor: optional Keras tensor to build on.
        alpha: width multiplier (tensorflow/tpu rounding to multiples of 8; 1.0 = none).
        stem_filters: stem conv filters; ``scale_stem`` says whether ``alpha`` scales them.
        activation: the model's activation, also for blocks that name none.
        head: ``"mnasnet"`` or ``"mobilenetv3"`` (see ``mnas_keras.Architecture``).
        head_filters, head_expansion: head widths (see ``mnas_keras.Architecture``).
        include_top, pooling, classes, classifier_activation: as in keras.applications.
        dropout_rate: dropout before the classifier.
        drop_connect_rate: stochastic depth rate on residual branches (scaled per block).
        bn_momentum, bn_epsilon: batch-norm settings.
        include_preprocessing: put ``preprocessing`` in front (inputs then in [0, 255]).
        preprocessing: ``"imagenet_mean_std"`` or ``"scale_-1_1"``.
        output_stride: 32, or 16 to dilate the last stride-2 stage instead of striding it.
        name: model name.
        dtype: a dtype policy name (``"mixed_float16"``, ...) every layer is built with;
            default: Keras' global policy.
        trainable: the model's ``trainable`` flag.
        layer_overrides: ``{layer name: {"trainable": bool, "dtype": policy}}``, the layers
            whose flag or policy differs from the model's. ``get_config`` writes this (and
            ``dtype``, ``trainable``), so a ``.keras`` round trip keeps frozen layers and
            mixed precision, as keras.applications models' files do.

    Example:
        >>> model = MnasNet(["r1_k3_s11_e1_i32_o16", "r2_k3_s22_e6_i16_o24_se0.25"],
        ...                 input_shape=(32, 32, 3), classes=10)
        >>> model.output_shape
        (None, 10)
        >>> sorted(model.endpoints)
        ['expansion_2', 'stride_2', 'stride_4']
    """

    def __init__(
        self,
        blocks: Sequence[str | BlockSpec],
        *,
        input_shape=None,
        input_tensor=None,
        alpha: float = 1.0,
        stem_filters: int = 32,
        scale_stem: bool = True,
        activation: str = "relu",
        head: str = "mnasnet",
        head_filters: int = 1280,
        head_expansion: int = 6,
        include_top: bool = True,
        pooling: str | None = None,
        classes: int = 1000,
        classifier_activation: str | None = "softmax",
        dropout_rate: float = 0.2,
        drop_connect_rate: float = 0.0,
        bn_momentum: float = 0.99,
        bn_epsilon: float = 1e-3,
        include_preprocessing: bool = False,
        preprocessing: str = "imagenet_mean_std",
        output_stride: int = 32,
        name: str = "mnasnet",
        dtype=None,
        trainable: bool = True,
        layer_overrides: dict | None = None,
        **kwargs,
    ):
        with _global_dtype_policy(dtype):
            self._build_mnasnet(blocks, input_shape, input_tensor, alpha, stem_filters, scale_stem, activation, head,
                                head_filters, head_expansion, include_top, pooling, classes, classifier_activation,
                                dropout_rate, drop_connect_rate, bn_momentum, bn_epsilon, include_preprocessing,
                                preprocessing, output_stride, name, kwargs)
        _apply_layer_state(self, trainable, layer_overrides or {})

    def _build_mnasnet(self, blocks, input_shape, input_tensor, alpha, stem_filters, scale_stem, activation, head,
                       head_filters, head_expansion, include_top, pooling, classes, classifier_activation,
                       dropout_rate, drop_connect_rate, bn_momentum, bn_epsilon, include_preprocessing,
                       preprocessing, output_stride, name, kwargs):
        specs = decode(blocks)
        _check(alpha > 0, f"Expected alpha > 0. Received: alpha={alpha}")
        _check(activation in _ACTIVATIONS, f"Expected activation in {_ACTIVATIONS}. Received: activation={activation!r}")
        _check(head in HEADS, f"Expected head in {HEADS}. Received: head={head!r}")
        _check(pooling in (None, "avg", "max"), f"Expected pooling in (None, 'avg', 'max'). Received: pooling={pooling!r}")
        _check(output_stride in (4, 8, 16, 32), f"Expected output_stride in (4, 8, 16, 32). Received: output_stride={output_stride}")
        _check(0.0 <= dropout_rate < 1.0, f"Expected 0 <= dropout_rate < 1. Received: dropout_rate={dropout_rate}")
        _check(0.0 <= drop_connect_rate < 1.0, f"Expected 0 <= drop_connect_rate < 1. Received: drop_connect_rate={drop_connect_rate}")
        _check(preprocessing in PREPROCESSING, f"Expected preprocessing in {PREPROCESSING}. Received: preprocessing={preprocessing!r}")
        _check(
            not include_top or (isinstance(classes, int) and classes > 0),
            f"Expected a positive integer number of classes with include_top=True. Received: classes={classes!r}",
        )
        graph_input = None
        if input_tensor is not None:
            if getattr(input_tensor, "_keras_history", None) is not None:
                # As keras.applications: build on the tensor; the model's inputs are its sources.
                graph_input = input_tensor
                inputs = keras.utils.get_source_inputs(input_tensor)
                inputs = inputs[0] if len(inputs) == 1 else inputs
            else:
                inputs = keras.Input(tensor=input_tensor)
            input_shape = tuple(input_tensor.shape[1:])
        else:
            input_shape = tuple(input_shape) if input_shape is not None else (None, None, 3)
            _check(
                len(input_shape) == 3,
                f"Expected input_shape (height, width, channels). Received: input_shape={input_shape}",
            )
            inputs = keras.Input(shape=input_shape, name="image")
        x = inputs if graph_input is None else graph_input
        if include_preprocessing:
            x = preprocessing_layer(preprocessing, input_shape[-1])(x)
        # The network's options, normalized once: the saved config and the builder's options.
        config = {
            "blocks": list(encode(specs)),
            "input_shape": input_shape,
            "alpha": float(alpha),
            "stem_filters": int(stem_filters),
            "scale_stem": bool(scale_stem),
            "activation": activation,
            "head": head,
            "head_filters": int(head_filters),
            "head_expansion": int(head_expansion),
            "include_top": bool(include_top),
            "pooling": pooling,
            "classes": classes,
            "classifier_activation": classifier_activation,
            "dropout_rate": float(dropout_rate),
            "drop_connect_rate": float(drop_connect_rate),
            "bn_momentum": float(bn_momentum),
            "bn_epsilon": float(bn_epsilon),
            "include_preprocessing": bool(include_preprocessing),
            "preprocessing": preprocessing,
            "output_stride": int(output_stride),
            "name": name,
        }
        options = BuildOptions(**{
            field.name: config[field.name] for field in dataclasses.fields(BuildOptions) if field.name != "classes"
        }, classes=int(classes) if classes is not None else 0)
        outputs, endpoints = build_graph(x, specs, options)
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        history = getattr(graph_input, "_keras_history", None)
        self._upstream_layer = None
        if graph_input is not None and not isinstance(history[0], keras.layers.InputLayer):
            self._upstream_layer = history[0].name
        self.blocks = encode(specs)
        self.endpoints = endpoints
        self._mnas_config = config

    @property
    def specs(self) -> list[BlockSpec]:
        return decode(self.blocks)

    def feature_extractor(self, endpoints: Sequence[str] = ("stride_8", "stride_16", "stride_32")):
        """A ``keras.Model`` sharing this model's layers that outputs the named endpoints.

        Example:
            >>> m = MnasNet(["r1_k3_s11_e1_i32_o16", "r1_k3_s22_e6_i16_o24"],
            ...             input_shape=(32, 32, 3), include_top=False)
            >>> [tuple(s) for s in m.feature_extractor(["stride_2", "stride_4"]).output_shape]
            [(None, 16, 16, 16), (None, 8, 8, 1280)]
        """
        missing = [e for e in endpoints if e not in self.endpoints]
        if missing:
            raise ValueError(
                f"Unknown endpoint(s) {missing}. Expected some of {sorted(self.endpoints)}."
            )
        outputs = [self.get_layer(self.endpoints[e]).output for e in endpoints]
        return keras.Model(self.inputs, outputs, name=f"{self.name}_features")

    def get_config(self):
        if getattr(self, "_upstream_layer", None):
            raise ValueError(
                f"{self.name!r} was built on input_tensor from layer {self._upstream_layer!r} (not a keras.Input); "
                "its config holds block strings only and would drop the layers before it. To save, build "
                "it with input_shape and call it on the tensor instead (backbone = MnasNet(...); "
                "y = backbone(tensor))"
            )
        config = dict(self._mnas_config)
        policy = _policy_name(self.dtype_policy)
        if policy != "float32":
            config["dtype"] = policy
        if not self.trainable:
            config["trainable"] = False
        overrides = {}
        for layer in self.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            entry = {}
            if layer.trainable != self.trainable:
                entry["trainable"] = bool(layer.trainable)
            if _policy_name(layer.dtype_policy) != policy:
                entry["dtype"] = _policy_name(layer.dtype_policy)
            if entry:
                overrides[layer.name] = entry
        if overrides:
            config["layer_overrides"] = overrides
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)


@contextlib.contextmanager
def _global_dtype_policy(dtype):
    """Keras' global dtype policy set to ``dtype`` (when given) while building."""
    if dtype is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(dtype)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _policy_name(policy) -> str:
    return getattr(policy, "name", str(policy))


def _apply_layer_state(model, trainable: bool, overrides: dict) -> None:
    """Sets the model's ``trainable`` flag, then each overridden layer's flag and policy."""
    unknown = sorted(set(overrides) - {layer.name for layer in model.layers})
    if unknown:
        raise ValueError(f"layer_overrides names unknown layer(s) {unknown} of {model.name!r}")
    if not trainable:
        model.trainable = False
    for name, entry in overrides.items():
        layer = model.get_layer(name)
        if "dtype" in entry:
            layer.dtype_policy = entry["dtype"]
        if "trainable" in entry:
            layer.trainable = bool(entry["trainable"])
