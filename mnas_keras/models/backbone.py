"""``MnasNet``: a functional ``keras.Model`` built from block strings."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Sequence

import keras

from mnas_keras.codec import BlockSpec, decode, encode
from mnas_keras.codec.options import OPTION_NAMES, NetworkOptions
from mnas_keras.layers import register
from mnas_keras.models.arguments import FUNCTIONAL_KEYWORDS, check_keyword_arguments, parameter_names
from mnas_keras.models.builder import build_graph

IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


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
        options: the network's global options, a :class:`~mnas_keras.codec.options.NetworkOptions`
            (default: its defaults, MnasNet-A1's), declared and documented there.
        **options as keywords: each ``NetworkOptions`` field (``alpha``, ``stem_filters``,
            ``scale_stem``, ``activation``, ``head``, ``head_filters``, ``head_expansion``,
            ``include_top``, ``pooling``, ``classes``, ``classifier_activation``,
            ``dropout_rate``, ``drop_connect_rate``, ``bn_momentum``, ``bn_epsilon``,
            ``include_preprocessing``, ``preprocessing``, ``output_stride``) may be given as a
            keyword argument; it replaces that field of ``options``. ``get_config`` writes
            them flat, so ``from_config`` passes them back the same way.
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
        options: NetworkOptions | None = None,
        name: str = "mnasnet",
        dtype=None,
        trainable: bool = True,
        layer_overrides: dict | None = None,
        **kwargs,
    ):
        check_keyword_arguments(type(self).__name__, kwargs,
                                OPTION_NAMES + FUNCTIONAL_KEYWORDS + parameter_names(MnasNet.__init__))
        changes = {key: kwargs.pop(key) for key in list(kwargs) if key in OPTION_NAMES}
        if options is not None and not isinstance(options, NetworkOptions):
            raise ValueError(f"Expected options to be a NetworkOptions. Received: options={options!r}")
        specs = decode(blocks)
        options = (options or NetworkOptions()).replace(**changes)  # checks every option
        with _global_dtype_policy(dtype):
            self._build_mnasnet(specs, input_shape, input_tensor, options, name, kwargs)
        _apply_layer_state(self, trainable, layer_overrides or {})

    def _build_mnasnet(self, specs, input_shape, input_tensor, options: NetworkOptions, name, kwargs):
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
        if options.include_preprocessing:
            x = preprocessing_layer(options.preprocessing, input_shape[-1])(x)
        # The saved config: the block strings, the input shape, the options (flat) and the name.
        config = {"blocks": list(encode(specs)), "input_shape": input_shape, **dataclasses.asdict(options),
                  "name": name}
        classes = options.classes
        options = dataclasses.replace(options, classes=int(classes) if classes is not None else 0)
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
        # the input as the model's own (one tensor, not a list of one): calling the extractor
        # on an array then matches its input structure, without Keras' warning on every call
        inputs = self.inputs[0] if len(self.inputs) == 1 else self.inputs
        return keras.Model(inputs, outputs, name=f"{self.name}_features")

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
