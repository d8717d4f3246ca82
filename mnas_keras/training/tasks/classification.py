"""Image classification: a MnasNet-family model, cross-entropy with label smoothing, accuracy.

Example:
    >>> from mnas_keras.training.recipes import get_recipe
    >>> cfg = get_recipe("digits", ["model.alpha=0.35"])
    >>> task = ClassificationTask(cfg)
    >>> task.num_classes, task.num_examples(training=True)
    (10, 1437)
    >>> model = task.build_model()
    >>> model.output_shape  # logits
    (None, 10)
"""

from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf

from mnas_keras.training.config import ClassificationConfig, ExperimentConfig, ModelConfig
from mnas_keras.training.data.pipeline import eval_dataset, train_dataset
from mnas_keras.training.data.sources import ImageSource, load_source
from mnas_keras.training.errors import ConfigError
from mnas_keras.training.tasks.base import Task, register_task


def build_classifier(config: ModelConfig, *, image_size: int, num_classes: int) -> keras.Model:
    """The model ``config`` names, outputting logits, taking 0-255 images.

    ``config.blocks`` builds ``mnas_keras.MnasNet``; ``"keras:<Name>"`` a keras.applications
    model; any other name goes to ``mnas_keras.create_model`` (width suffixes such as
    ``"_050"`` work).
    """
    kwargs = dict(
        input_shape=(image_size, image_size, 3), classes=num_classes, classifier_activation=None
    )
    if config.dropout_rate is not None:
        kwargs["dropout_rate"] = config.dropout_rate
    if config.bn_momentum is not None and not config.name.startswith("keras:"):
        kwargs["bn_momentum"] = config.bn_momentum
    if config.blocks:
        from mnas_keras.models import MnasNet

        model = MnasNet(list(config.blocks), alpha=config.alpha, include_preprocessing=True, **kwargs)
    elif config.name.startswith("keras:"):
        constructor = getattr(keras.applications, config.name[len("keras:"):], None)
        if constructor is None:
            raise ConfigError(f"model.name {config.name!r}: keras.applications has no such model")
        model = constructor(weights=None, **_keras_application_arguments(constructor, config, kwargs))
    else:
        from mnas_keras.applications import UnknownModelError, create_model, parse_model_name

        try:
            _, options = parse_model_name(config.name)
        except UnknownModelError as err:
            raise ConfigError(f"model.name: {err}") from None
        if config.alpha != 1.0:
            if "alpha" in options and options["alpha"] != config.alpha:
                raise ConfigError(
                    f"model.name {config.name!r} sets width {options['alpha']} but model.alpha="
                    f"{config.alpha}; give the width once"
                )
            kwargs["alpha"] = config.alpha
        model = create_model(config.name, **kwargs)
    if config.sync_batch_norm:
        for layer in model._flatten_layers(include_self=False):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.synchronized = True
    return model


def _keras_application_arguments(constructor, config: ModelConfig, kwargs: dict) -> dict:
    """``kwargs`` in the names a keras.applications constructor takes: its dropout argument
    is ``dropout_rate`` (MobileNetV3), ``dropout`` (MobileNet) or absent (MobileNetV2,
    ResNet...), and only the MobileNets take ``alpha``."""
    import inspect

    parameters = inspect.signature(constructor).parameters
    title = f"keras.applications.{constructor.__name__}"
    out = {k: v for k, v in kwargs.items() if k != "dropout_rate"}
    rate = kwargs.get("dropout_rate")
    if rate is not None:
        name = next((n for n in ("dropout_rate", "dropout") if n in parameters), None)
        if name is not None:
            out[name] = rate
        elif rate != 0:  # no dropout argument: only "no dropout" is what was asked
            raise ConfigError(f"model.dropout_rate={rate}: {title} has no dropout argument; set "
                              "model.dropout_rate=null to keep its own classifier")
    if config.alpha != 1.0:
        if "alpha" not in parameters:
            raise ConfigError(f"model.alpha={config.alpha}: {title} has no width multiplier (alpha)")
        out["alpha"] = config.alpha
    return out


def outputs_are_probabilities(model: keras.Model) -> bool:
    """Whether the model ends in a softmax (then the loss is not ``from_logits``)."""
    last = model.layers[-1]
    while isinstance(last, keras.Model) and last.layers:  # a nested model as the last layer
        last = last.layers[-1]
    activation = getattr(last, "activation", None)
    if isinstance(last, keras.layers.Softmax):
        return True
    return getattr(activation, "__name__", None) == "softmax"


@register_task("classification", ClassificationConfig)
class ClassificationTask(Task):
    """Single-label image classification.

    Args:
        config: the experiment config; ``config.task`` is a ``ClassificationConfig``.
        source: an ``ImageSource`` (default: ``load_source(config.data)``), e.g. a
            ``DatasetSource`` wrapping your own ``tf.data.Dataset``.
        model_fn: optional ``() -> keras.Model`` used instead of ``config.model``.
    """

    def __init__(
        self,
        config: ExperimentConfig,
        source: ImageSource | None = None,
        model_fn: Callable[[], keras.Model] | None = None,
    ):
        super().__init__(config)
        if not isinstance(config.task, ClassificationConfig):
            raise ConfigError(f"ClassificationTask needs a ClassificationConfig; received {config.task!r}")
        self._source = source
        self._model_fn = model_fn
        self._from_logits = True
        self._bases: dict = {}

    @property
    def source(self) -> ImageSource:
        if self._source is None:
            self._source = load_source(self.config.data)
        return self._source

    @property
    def num_classes(self) -> int:
        return self.config.task.num_classes or self.source.num_classes

    def build_model(self) -> keras.Model:
        data = self.config.data
        if self._model_fn is not None:
            model = self._model_fn()
        else:
            model = build_classifier(self.config.model, image_size=data.image_size, num_classes=self.num_classes)
        self._from_logits = not outputs_are_probabilities(model)
        return model

    def num_examples(self, training: bool) -> int | None:
        data = self.config.data
        return self.source.num_examples(data.train_split if training else data.eval_split)

    def _base(self, split: str, input_context, seed: int, training: bool):
        """The (cached) raw split when ``data.cache``; else ``None`` (read per epoch)."""
        if not self.config.data.cache:
            return None
        key = (split, input_context.input_pipeline_id if input_context else 0)
        if key not in self._bases:
            ds = self.source.dataset(split, shuffle_files=False, seed=seed, input_context=input_context)
            self._bases[key] = ds.cache()
        return self._bases[key]

    def train_inputs(self, input_context, *, global_batch_size, epoch, skip_steps, seed):
        data = self.config.data
        per_replica, replicas_here = _batching(input_context, global_batch_size)
        return train_dataset(
            self.source,
            data.train_split,
            batch_size=per_replica,
            image_size=data.image_size,
            augmentation=data.augmentation,
            crop_padding=data.crop_padding,
            normalization=data.normalization,
            seed=seed,
            epoch=epoch,
            skip_examples=skip_steps * per_replica * replicas_here,
            shuffle_buffer=data.shuffle_buffer,
            input_context=input_context,
            base=self._base(data.train_split, input_context, seed, True),
        )

    def eval_inputs(self, input_context, *, global_batch_size, steps):
        data = self.config.data
        per_replica, replicas_here = _batching(input_context, global_batch_size)
        return eval_dataset(
            self.source,
            data.eval_split,
            batch_size=per_replica,
            image_size=data.image_size,
            crop_padding=data.crop_padding,
            normalization=data.normalization,
            replicas=replicas_here,
            steps=steps,
            input_context=input_context,
            base=self._base(data.eval_split, input_context, 0, False),
        )

    def unpack(self, batch, training):
        if len(batch) == 3:
            return batch
        images, labels = batch
        return images, labels, None

    def per_example_loss(self, targets, outputs, model=None):
        one_hot = tf.one_hot(tf.cast(targets, tf.int32), self.num_classes, dtype=tf.float32)
        return keras.losses.categorical_crossentropy(
            one_hot,
            tf.cast(outputs, tf.float32),
            from_logits=self._from_logits,
            label_smoothing=self.config.task.label_smoothing,
        )

    def metric_sums(self, targets, outputs, weights):
        labels = tf.cast(targets, tf.int32)
        outputs = tf.cast(outputs, tf.float32)
        if weights is None:
            weights = tf.ones_like(outputs[:, 0])
        weights = tf.cast(weights, tf.float32)
        correct = tf.cast(tf.equal(tf.argmax(outputs, -1, output_type=tf.int32), labels), tf.float32)
        sums = {"correct": tf.reduce_sum(correct * weights), "count": tf.reduce_sum(weights)}
        k = self.config.task.top_k
        if self.num_classes > k:
            top = tf.cast(tf.math.in_top_k(labels, outputs, k), tf.float32)
            sums[f"top{k}_correct"] = tf.reduce_sum(top * weights)
        return sums

    def summarize(self, sums, *, num_steps, training):
        count = max(float(sums["count"]), 1e-12)
        if training:
            out = {"loss": float(sums["loss"]) / max(num_steps, 1)}
        else:
            out = {"loss": float(sums["loss_sum"]) / count}
        out["accuracy"] = float(sums["correct"]) / count
        k = self.config.task.top_k
        if f"top{k}_correct" in sums:
            out[f"top{k}_accuracy"] = float(sums[f"top{k}_correct"]) / count
        if not training:
            out["examples"] = int(round(float(sums["count"])))
        return out


def _batching(input_context, global_batch_size: int) -> tuple[int, int]:
    """(per-replica batch, replicas fed by this pipeline)."""
    if input_context is None:
        return global_batch_size, 1
    per_replica = input_context.get_per_replica_batch_size(global_batch_size)
    replicas = input_context.num_replicas_in_sync // input_context.num_input_pipelines
    return per_replica, replicas
