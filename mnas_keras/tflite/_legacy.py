"""The tf_keras side of the QAT / pruning bridge (used inside a ``TF_USE_LEGACY_KERAS=1`` process).

tensorflow-model-optimization 0.8.1 wraps ``tf_keras`` layers only. This module rebuilds a
``mnas_keras.MnasNet`` (Keras 3) in ``tf_keras`` with the package's own graph builder, copies
the weights layer by layer (same names), and supplies what tfmot's default 8-bit registry
lacks: hard-swish and hard-sigmoid layers (``tf_keras`` has no hard-swish, and its
``hard_sigmoid`` is ``0.2 x + 0.5``, not MobileNetV3's ``relu6(x + 3) / 6``) and quantize
configs for them, for the squeeze-excite ``Multiply`` and for the preprocessing layers.

Everything that touches ``tf_keras`` or tfmot is created on first use (:func:`_classes`), so
importing this module costs nothing.
"""

from __future__ import annotations

import functools

import numpy as np

from mnas_keras.tflite.errors import QATError


@functools.lru_cache(maxsize=None)
def _classes():
    """Defines (once) the tf_keras layers and tfmot quantize config of the bridge."""
    import tensorflow as tf
    import tf_keras
    import tensorflow_model_optimization as tfmot

    quantizers = tfmot.quantization.keras.quantizers

    class HardSwish(tf_keras.layers.Layer):
        """``x * relu6(x + 3) / 6``; the TFLite converter fuses it into one HARD_SWISH op."""

        def call(self, inputs):
            return inputs * tf.nn.relu6(inputs + 3.0) * (1.0 / 6.0)

    class HardSigmoid(tf_keras.layers.Layer):
        """``relu6(x + 3) / 6`` (MobileNetV3's gate; not tf_keras's ``0.2 x + 0.5``)."""

        def call(self, inputs):
            return tf.nn.relu6(inputs + 3.0) * (1.0 / 6.0)

    class OutputQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
        """No weights to quantize; fake-quantize the layer's output (8-bit, asymmetric)."""

        def get_weights_and_quantizers(self, layer):
            return []

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            pass

        def set_quantize_activations(self, layer, quantize_activations):
            pass

        def get_output_quantizers(self, layer):
            return [
                quantizers.MovingAverageQuantizer(
                    num_bits=8, per_axis=False, symmetric=False, narrow_range=False
                )
            ]

        def get_config(self):
            return {}

    return {"HardSwish": HardSwish, "HardSigmoid": HardSigmoid, "OutputQuantizeConfig": OutputQuantizeConfig}


def activation_layer(kind: str, name: str | None = None):
    """tf_keras twin of ``mnas_keras.layers.activation_layer`` (same names, same maths)."""
    import tf_keras

    classes = _classes()
    if kind == "relu":
        return tf_keras.layers.ReLU(name=name)
    if kind == "relu6":
        return tf_keras.layers.ReLU(6.0, name=name)
    if kind == "hswish":
        return classes["HardSwish"](name=name)
    if kind == "hsig":
        return classes["HardSigmoid"](name=name)
    if kind in ("swish", "sigmoid"):
        return tf_keras.layers.Activation(kind, name=name)
    raise QATError(f"activation {kind!r} has no tf_keras twin; expected relu, relu6, hswish, hsig, swish or sigmoid")


def rebuild(model):
    """Rebuilds a Keras 3 ``mnas_keras.MnasNet`` in tf_keras and copies its weights.

    Raises:
        QATError: ``model`` is not a ``MnasNet`` (no block strings in its config) or a
            layer's weights do not line up.
    """
    import tf_keras

    from mnas_keras.codec import decode
    from mnas_keras.models.backbone import IMAGENET_MEAN, IMAGENET_STD
    from mnas_keras.models.builder import BuildOptions, LayerKit, build_graph

    config = model.get_config()
    if "blocks" not in config:
        raise QATError(
            f"model {model.name!r} is not a mnas_keras.MnasNet (its config has no 'blocks'); the "
            "QAT/pruning bridge rebuilds models from their block strings"
        )
    inputs = tf_keras.Input(shape=tuple(config["input_shape"]), name="image")
    x = inputs
    if config.get("include_preprocessing"):
        if config["preprocessing"] == "scale_-1_1":
            x = tf_keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescaling")(x)
        else:
            x = tf_keras.layers.Normalization(
                mean=list(IMAGENET_MEAN), variance=[s * s for s in IMAGENET_STD], name="normalization"
            )(x)
    fields = {f for f in BuildOptions.__dataclass_fields__}
    options = BuildOptions(**{k: v for k, v in config.items() if k in fields})
    kit = LayerKit(layers=tf_keras.layers, activation=activation_layer, drop_connect=None)
    outputs, _ = build_graph(x, decode(config["blocks"]), options, kit)
    twin = tf_keras.Model(inputs, outputs, name=config.get("name", model.name))
    copied = 0
    for layer in twin.layers:
        if not layer.weights:
            continue
        try:
            source = model.get_layer(layer.name)
        except ValueError:
            raise QATError(f"layer {layer.name!r} of the tf_keras rebuild has no Keras 3 twin") from None
        values = source.get_weights()
        if [v.shape for v in values] != [tuple(w.shape) for w in layer.weights]:
            raise QATError(
                f"layer {layer.name!r}: Keras 3 weights {[v.shape for v in values]} do not match "
                f"the tf_keras rebuild {[tuple(w.shape) for w in layer.weights]}"
            )
        layer.set_weights(values)
        copied += len(values)
    if copied != len(model.weights):
        raise QATError(f"copied {copied} of {len(model.weights)} weights into the tf_keras rebuild")
    return twin


def quantize(twin):
    """tfmot quantization-aware model of a rebuilt tf_keras MnasNet."""
    import tf_keras
    import tensorflow_model_optimization as tfmot

    qk = tfmot.quantization.keras
    classes = _classes()
    output_config = classes["OutputQuantizeConfig"]
    custom = (classes["HardSwish"], classes["HardSigmoid"], tf_keras.layers.Multiply,
              tf_keras.layers.Rescaling, tf_keras.layers.Normalization)

    def annotate(layer):
        if isinstance(layer, custom):
            return qk.quantize_annotate_layer(layer, output_config())
        return qk.quantize_annotate_layer(layer)

    with qk.quantize_scope({**classes, "Multiply": tf_keras.layers.Multiply}):
        # The annotations wrap the original (trained) layers, so their weights carry over.
        annotated = tf_keras.models.clone_model(twin, clone_function=annotate)
        return qk.quantize_apply(annotated)


def prune(twin, target_sparsity: float, total_steps: int):
    """Wraps every Conv2D and Dense kernel for magnitude pruning up to ``target_sparsity``."""
    import tf_keras
    import tensorflow_model_optimization as tfmot

    sparsity = tfmot.sparsity.keras
    end = max(1, int(total_steps * 0.5))
    schedule = sparsity.PolynomialDecay(
        initial_sparsity=0.0, final_sparsity=float(target_sparsity), begin_step=0,
        end_step=end, frequency=max(1, end // 20),
    )

    def wrap(layer):
        if isinstance(layer, (tf_keras.layers.Conv2D, tf_keras.layers.Dense)) and not isinstance(
            layer, tf_keras.layers.DepthwiseConv2D
        ):
            return sparsity.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer

    # The wrappers hold the original (trained) layers, so the clone keeps their weights.
    return tf_keras.models.clone_model(twin, clone_function=wrap)


def kernel_sparsity(model) -> float:
    """Share of exact zeros over the Conv2D (not depthwise) and Dense kernels."""
    import tf_keras

    zeros = total = 0
    for layer in model.layers:
        if isinstance(layer, (tf_keras.layers.Conv2D, tf_keras.layers.Dense)) and not isinstance(
            layer, tf_keras.layers.DepthwiseConv2D
        ):
            kernel = layer.get_weights()[0]
            zeros += int(np.sum(kernel == 0))
            total += kernel.size
    return zeros / max(1, total)


_RANGE_SUFFIXES = ("output", "post_activation", "quantize_layer")


def calibrate_ranges(quantized, twin, x, batch_size: int = 64) -> int:
    """Starts every activation range of a tfmot QAT model at the float model's observed range.

    tfmot initializes activation ranges at [-6, 6] and moves them by an exponential moving
    average with decay 0.999, which takes thousands of steps to settle: a short fine-tune on a
    small data set would otherwise convert with ranges that clip (inputs in [0, 255]!). Here
    each range starts at the min/max (with 0 included, as tfmot does) of the matching float
    tensor over ``x``; fine-tuning then adapts them as usual.

    Returns:
        The number of ranges set.
    """
    import tf_keras

    targets = []  # (min variable, max variable, twin tensor or None for the model input)
    for layer in quantized.layers:
        found = {}
        for weight in layer.non_trainable_weights:
            leaf = weight.name.split("/")[-1].split(":")[0]
            for suffix in _RANGE_SUFFIXES:
                if leaf in (f"{suffix}_min", f"{suffix}_max"):
                    found.setdefault(suffix, {})[leaf.rsplit("_", 1)[1]] = weight
        for pair in found.values():
            if len(pair) != 2:
                continue
            inner = getattr(layer, "layer", None)
            tensor = None if inner is None else twin.get_layer(inner.name).output
            targets.append((pair["min"], pair["max"], tensor))
    tensors = [t for _, _, t in targets if t is not None]
    probe = tf_keras.Model(twin.inputs, tensors)
    lows = [np.inf] * len(tensors)
    highs = [-np.inf] * len(tensors)
    for start in range(0, len(x), batch_size):
        outs = probe(x[start : start + batch_size], training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        for i, out in enumerate(outs):
            out = np.asarray(out)
            lows[i] = min(lows[i], float(out.min()))
            highs[i] = max(highs[i], float(out.max()))
    index = 0
    for low_var, high_var, tensor in targets:
        if tensor is None:
            low, high = float(np.min(x)), float(np.max(x))
        else:
            low, high = lows[index], highs[index]
            index += 1
        low_var.assign(np.full(low_var.shape, min(low, 0.0), np.float32))
        high_var.assign(np.full(high_var.shape, max(high, 0.0), np.float32))
    return len(targets)
