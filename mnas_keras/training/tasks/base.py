"""The task abstraction: what is trained (model, inputs, loss, metrics) seen from one replica.

A :class:`Task` knows nothing about strategies, checkpoints or loops; the
:class:`~mnas_keras.training.trainer.Trainer` knows nothing about any particular task. The
contract between them:

- ``build_model()`` is called inside the strategy scope.
- ``train_inputs(...)`` / ``eval_inputs(...)`` return one input pipeline's dataset of
  per-replica batches (called through ``strategy.distribute_datasets_from_function``).
- ``train_step(batch, model, optimizer, context)`` runs in a replica context, scales the
  loss by the GLOBAL batch size, applies gradients and returns a dict of tensors that the
  trainer SUMS over replicas and over the steps of a loop call (``"loss"`` is the step's
  global loss, so its sum over steps divided by the step count is the mean loss).
- ``eval_step(batch, model)`` likewise returns sums (losses, counts, confusion matrices...).
- ``summarize(sums, num_steps, training)`` turns summed values into reported metrics.
- Tasks whose metric needs host-side work (COCO mAP for detection) set
  ``host_outputs = True`` and implement ``eval_outputs`` / ``eval_begin`` / ``eval_update``
  / ``eval_end``; the trainer then hands them each eval step's per-replica outputs as NumPy.

Detection (SSDLite) and segmentation (LR-ASPP) plug in as further subclasses registered
with :func:`register_task` under their config's ``name``.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, Callable

import keras
import tensorflow as tf

from mnas_keras.training.config import ExperimentConfig, TASK_CONFIGS
from mnas_keras.training.errors import ConfigError
from mnas_keras.training.optim import l2_weight_decay


@dataclasses.dataclass(frozen=True)
class StepContext:
    """What one replica's training step needs to know about the whole step.

    Attributes:
        global_batch_size: examples per step over all replicas (the loss divisor).
        num_replicas: replicas in sync (regularization is divided by it).
        weight_decay: TF1-style L2 rate (``rate * sum(l2_loss(w))``).
        decay_variables: the weights that get it.
        clipnorm: global-norm clipping of the summed gradient, or ``None``.
    """

    global_batch_size: int
    num_replicas: int = 1
    weight_decay: float = 0.0
    decay_variables: tuple = ()
    clipnorm: float | None = None


def _loss_scale(optimizer):
    """The current loss scale of a ``LossScaleOptimizer`` (``None`` for other optimizers)."""
    if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return None
    scale = optimizer.dynamic_scale if optimizer.built else optimizer.initial_scale
    return tf.cast(scale, tf.float32)


def prepare_gradients(grads: list, optimizer, context: StepContext) -> list:
    """Clips gradients by the global norm of their cross-replica SUM (when ``clipnorm``).

    Keras' optimizer sums gradients over replicas inside ``apply``, after its own clipping,
    so its ``global_clipnorm`` would clip each replica's part separately. Here the sum is
    formed first, unscaled (mixed float16), clipped, rescaled and divided by the replica
    count, so the optimizer's own sum gives back the clipped total.
    """
    if context.clipnorm is None:
        return grads
    replicas = context.num_replicas
    if replicas > 1:
        present = [g for g in grads if g is not None]
        summed = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, present)
        it = iter(summed)
        grads = [None if g is None else next(it) for g in grads]
    scale = _loss_scale(optimizer)
    if scale is not None:
        grads = [None if g is None else g / tf.cast(scale, g.dtype) for g in grads]
    grads, _ = tf.clip_by_global_norm(grads, context.clipnorm)
    factor = (1.0 if scale is None else scale) / replicas
    return [None if g is None else g * tf.cast(factor, g.dtype) for g in grads]


class Task(abc.ABC):
    """Base class of training tasks (see the module docstring for the contract).

    Args:
        config: the experiment config (the task reads ``model``, ``data`` and ``task``).
    """

    host_outputs = False

    def __init__(self, config: ExperimentConfig):
        self.config = config

    # ---- model and data --------------------------------------------------------------
    @abc.abstractmethod
    def build_model(self):
        """Builds the Keras model (called inside the strategy scope)."""

    @abc.abstractmethod
    def num_examples(self, training: bool) -> int | None:
        """Examples in the training (or evaluation) split, if known."""

    @abc.abstractmethod
    def train_inputs(
        self, input_context, *, global_batch_size: int, epoch: int, skip_steps: int, seed: int
    ) -> tf.data.Dataset:
        """One epoch of per-replica training batches for this input pipeline.

        ``skip_steps`` global steps of the epoch were already trained (resume).
        """

    @abc.abstractmethod
    def eval_inputs(
        self, input_context, *, global_batch_size: int, steps: int | None
    ) -> tf.data.Dataset:
        """Per-replica evaluation batches covering the split once (or ``steps`` steps)."""

    # ---- loss and metrics ------------------------------------------------------------
    @abc.abstractmethod
    def unpack(self, batch, training: bool) -> tuple[Any, Any, Any]:
        """Splits a batch into ``(inputs, targets, weights or None)``."""

    @abc.abstractmethod
    def per_example_loss(self, targets, outputs, model=None) -> tf.Tensor:
        """Float32 loss per example, shape ``[batch]``."""

    @abc.abstractmethod
    def metric_sums(self, targets, outputs, weights) -> dict[str, tf.Tensor]:
        """Summed metric statistics of one batch (``weights`` may be ``None``)."""

    @abc.abstractmethod
    def summarize(self, sums: dict[str, float], *, num_steps: int, training: bool) -> dict[str, float]:
        """Reported metrics from values summed over replicas and steps."""

    # ---- steps -------------------------------------------------------------------------
    def regularization(self, model, context: StepContext) -> tf.Tensor:
        """This replica's share of weight decay and layer losses (total / replicas)."""
        reg = l2_weight_decay(list(context.decay_variables), context.weight_decay)
        if model.losses:
            reg += tf.add_n([tf.cast(x, tf.float32) for x in model.losses])
        return reg / float(context.num_replicas)

    def train_step(self, batch, model, optimizer, context: StepContext) -> dict[str, tf.Tensor]:
        """One replica's training step: loss / GLOBAL batch, gradients, update, sums."""
        inputs, targets, weights = self.unpack(batch, training=True)
        variables = model.trainable_variables
        with tf.GradientTape() as tape:
            outputs = model(inputs, training=True)
            per_example = self.per_example_loss(targets, outputs, model)
            if weights is not None:
                per_example = per_example * tf.cast(weights, per_example.dtype)
            loss = tf.reduce_sum(per_example) / float(context.global_batch_size)
            loss += self.regularization(model, context)
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, variables)
        grads = prepare_gradients(grads, optimizer, context)
        optimizer.apply(grads, variables)
        return {"loss": loss, **self.metric_sums(targets, outputs, weights)}

    def eval_step(self, batch, model) -> dict[str, tf.Tensor]:
        """One replica's evaluation step: summed weighted loss and metric statistics."""
        inputs, targets, weights = self.unpack(batch, training=False)
        outputs = model(inputs, training=False)
        per_example = self.per_example_loss(targets, outputs, model)
        if weights is None:
            weights = tf.ones_like(per_example)
        weights = tf.cast(weights, per_example.dtype)
        sums = {"loss_sum": tf.reduce_sum(per_example * weights)}
        sums.update(self.metric_sums(targets, outputs, weights))
        if self.host_outputs:
            return sums, self.eval_outputs(batch, outputs)
        return sums

    # ---- host-side evaluation hooks (detection: COCO metrics) ---------------------------
    def eval_outputs(self, batch, outputs) -> dict[str, tf.Tensor]:
        """Tensors each eval step hands to the host (only when ``host_outputs``)."""
        return {}

    def eval_begin(self) -> None:
        """Called before an evaluation pass."""

    def eval_update(self, outputs: list[dict]) -> None:
        """One eval step's outputs, one NumPy dict per local replica."""

    def eval_end(self) -> dict[str, float]:
        """Host-side metrics of the pass, merged into the reported ones."""
        return {}


TASKS: dict[str, Callable[[ExperimentConfig], Task]] = {}


def register_task(name: str, config_class: type | None = None):
    """Class decorator registering a :class:`Task` (and optionally its config class)."""
    from mnas_keras.training.config import register_task_config

    def decorator(cls):
        TASKS[name] = cls
        if config_class is not None:
            register_task_config(name, config_class)
        return cls

    return decorator


def build_task(config: ExperimentConfig, **kwargs) -> Task:
    """The registered task of ``config.task.name``, built with ``kwargs``."""
    name = config.task.name
    if name not in TASKS:
        known = sorted(set(TASKS) | set(TASK_CONFIGS))
        raise ConfigError(f"unknown task {name!r}; expected one of {known}")
    return TASKS[name](config, **kwargs)
