"""Optimizers, learning-rate schedules, weight decay and weight averaging of the recipes.

- :class:`RMSPropTF1`: Keras RMSprop whose accumulator starts at ones, as TF1's did
  (Keras 3 starts at zeros, which makes the first steps ~3x larger).
- :class:`WarmupExponentialDecay` / :class:`WarmupCosineDecay`: linear warmup, then
  exponential (staircase) or cosine decay; the exponential decay counts from step 0 as in
  tensorflow/tpu's MnasNet.
- :func:`l2_weight_decay`: TF1's ``rate * sum(tf.nn.l2_loss(w))`` over non-batch-norm weights.
- :class:`ExponentialMovingAverage`: averages of weights AND batch-norm statistics
  (Keras' optimizer EMA covers trainable weights only), swapped in for evaluation.

Example:
    >>> import numpy as np, keras
    >>> schedule = WarmupExponentialDecay(0.064, warmup_steps=10, decay_steps=24, decay_rate=0.97)
    >>> [round(float(schedule(s)), 5) for s in (0, 5, 10, 47, 48)]
    [0.0, 0.032, 0.064, 0.06208, 0.06022]
    >>> v = keras.Variable(np.ones(2, "float32"))
    >>> opt = RMSPropTF1(learning_rate=0.1, rho=0.9, momentum=0.0, epsilon=0.0)
    >>> opt.apply([np.ones(2, "float32")], [v])
    >>> np.round(keras.ops.convert_to_numpy(v), 4)  # 1 - 0.1 * 1 / sqrt(0.9 + 0.1)
    array([0.9, 0.9], dtype=float32)
"""

from __future__ import annotations

import contextlib
import math

import keras
import tensorflow as tf
from keras import ops

from mnas_keras.training.config import OptimizerConfig, ScheduleConfig
from mnas_keras.training.errors import ConfigError


@keras.saving.register_keras_serializable(package="mnas_keras")
class RMSPropTF1(keras.optimizers.RMSprop):
    """RMSprop with TF1's accumulator initialized to ones (epsilon inside the square root).

    Update: ``ms = rho*ms + (1-rho)*g^2; mom = momentum*mom + lr*g/sqrt(ms+eps); w -= mom``,
    identical to ``tf.compat.v1.train.RMSPropOptimizer``.
    """

    def build(self, var_list):
        if self.built:
            return
        # Skip RMSprop.build (zeros); keep the base optimizer's bookkeeping.
        super(keras.optimizers.RMSprop, self).build(var_list)
        self._velocities = self.add_optimizer_variables(var_list, "velocity", initializer="ones")
        self._momentums = []
        if self.momentum > 0:
            self._momentums = self.add_optimizer_variables(var_list, "momentum")
        self._average_gradients = []
        if self.centered:
            self._average_gradients = self.add_optimizer_variables(var_list, "average_gradient")


@keras.saving.register_keras_serializable(package="mnas_keras")
class WarmupExponentialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to ``peak`` over ``warmup_steps``, then ``peak * rate^(step/decay)``.

    Args:
        peak_learning_rate: the rate at the end of warmup.
        warmup_steps: linear warmup length (0: none).
        decay_steps: steps per decay period (counted from step 0).
        decay_rate: multiplier per period (1.0: constant).
        staircase: decay in whole periods.
    """

    def __init__(self, peak_learning_rate, warmup_steps, decay_steps, decay_rate, staircase=True):
        if decay_steps <= 0:
            raise ConfigError(f"decay_steps must be > 0; received {decay_steps!r}")
        self.peak_learning_rate = float(peak_learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.decay_steps = float(decay_steps)
        self.decay_rate = float(decay_rate)
        self.staircase = bool(staircase)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        periods = step / self.decay_steps
        if self.staircase:
            periods = ops.floor(periods)
        decayed = self.peak_learning_rate * ops.power(self.decay_rate, periods)
        return _with_warmup(step, decayed, self.peak_learning_rate, self.warmup_steps)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
        }


def _with_warmup(step, decayed, peak: float, warmup_steps: int):
    """``decayed``, preceded by a linear ramp from 0 to ``peak`` over ``warmup_steps``."""
    if warmup_steps <= 0:
        return decayed
    return ops.where(step < warmup_steps, peak * step / float(warmup_steps), decayed)


@keras.saving.register_keras_serializable(package="mnas_keras")
class WarmupCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup to ``peak``, then cosine decay to 0 at ``total_steps``."""

    def __init__(self, peak_learning_rate, warmup_steps, total_steps):
        if total_steps <= warmup_steps:
            raise ConfigError(
                f"total_steps ({total_steps}) must exceed warmup_steps ({warmup_steps})"
            )
        self.peak_learning_rate = float(peak_learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        progress = ops.clip((step - self.warmup_steps) / (self.total_steps - self.warmup_steps), 0, 1)
        decayed = 0.5 * self.peak_learning_rate * (1.0 + ops.cos(math.pi * progress))
        return _with_warmup(step, decayed, self.peak_learning_rate, self.warmup_steps)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
        }


def peak_learning_rate(config: ScheduleConfig, global_batch_size: int) -> float:
    """The linear scaling rule: ``base_learning_rate * global_batch_size / base_batch_size``."""
    return config.base_learning_rate * global_batch_size / config.base_batch_size


def build_schedule(
    config: ScheduleConfig, *, steps_per_epoch: int, global_batch_size: int, total_steps: int
) -> keras.optimizers.schedules.LearningRateSchedule:
    """The schedule of ``config`` with epochs converted to steps.

    Example:
        >>> s = build_schedule(ScheduleConfig(), steps_per_epoch=100, global_batch_size=1024,
        ...                    total_steps=35000)
        >>> s.warmup_steps, s.decay_steps, s.peak_learning_rate
        (500, 240.0, 0.064)
    """
    peak = peak_learning_rate(config, global_batch_size)
    warmup_steps = int(config.warmup_epochs * steps_per_epoch)
    if config.name == "cosine" and total_steps <= warmup_steps:
        raise ConfigError(
            f"schedule.warmup_epochs={config.warmup_epochs} is {warmup_steps} steps, as long as the whole run "
            f"({total_steps} steps); shorten it, e.g. --overrides=schedule.warmup_epochs=0"
        )
    if config.name == "cosine":
        return WarmupCosineDecay(peak, warmup_steps, total_steps)
    if config.name == "constant":
        return WarmupExponentialDecay(peak, warmup_steps, decay_steps=1, decay_rate=1.0)
    decay_steps = max(1, int(config.decay_epochs * steps_per_epoch))
    return WarmupExponentialDecay(
        peak, warmup_steps, decay_steps, config.decay_rate, staircase=config.staircase
    )


def build_optimizer(config: OptimizerConfig, learning_rate) -> keras.optimizers.Optimizer:
    """A Keras optimizer for ``config`` (weight decay and EMA are applied by the loop).

    Example:
        >>> type(build_optimizer(OptimizerConfig(), 0.1)).__name__
        'RMSPropTF1'
    """
    if config.name == "rmsprop_tf1":
        return RMSPropTF1(
            learning_rate, rho=config.rho, momentum=config.momentum, epsilon=config.epsilon
        )
    if config.name == "rmsprop":
        return keras.optimizers.RMSprop(
            learning_rate, rho=config.rho, momentum=config.momentum, epsilon=config.epsilon
        )
    if config.name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=config.momentum, nesterov=True)
    if config.name == "adam":
        return keras.optimizers.Adam(learning_rate, epsilon=config.epsilon)
    if config.name == "adamw":
        # Decoupled decay lives in AdamW; the loss-side weight_decay is then usually 0.
        return keras.optimizers.AdamW(learning_rate, epsilon=config.epsilon)
    raise ConfigError(f"optimizer.name {config.name!r} is not supported")


def _batch_norm_variable_ids(model: keras.Model) -> set[int]:
    ids = set()
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            ids.update(id(v) for v in layer.weights)
    return ids


def _all_layers(model):
    layers = getattr(model, "_flatten_layers", None)
    if layers is not None:
        return list(model._flatten_layers(include_self=False))
    return list(model.layers)


def decay_variables(model: keras.Model) -> list:
    """Trainable weights that get weight decay: all but batch-norm gamma/beta.

    Example:
        >>> m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="fc"),
        ...                       keras.layers.BatchNormalization(name="bn")], name="net")
        >>> [v.path for v in decay_variables(m)]
        ['net/fc/kernel', 'net/fc/bias']
    """
    bn = _batch_norm_variable_ids(model)
    return [v for v in model.trainable_variables if id(v) not in bn]


def l2_weight_decay(variables, rate: float):
    """TF1's ``rate * sum(tf.nn.l2_loss(w))`` = ``rate / 2 * sum(w**2)``, in float32."""
    if not variables or rate == 0:
        return tf.constant(0.0, tf.float32)
    total = tf.add_n([tf.reduce_sum(tf.square(tf.cast(v, tf.float32))) for v in variables])
    return 0.5 * rate * total


def _tf_variable(v):
    return v.value if isinstance(v, keras.Variable) else v


class ExponentialMovingAverage:
    """Moving averages of a model's float weights, including batch-norm statistics.

    ``update()`` is called once per step (in a replica or cross-replica context);
    ``swapped()`` exchanges model weights and averages for evaluation or export. Create it
    in the strategy's scope so the averages are mirrored like the weights.

    Args:
        variables: the weights to average (e.g. ``averaged_variables(model)``).
        decay: the decay (0.9999 in the recipes).
        dynamic_decay: TF1's ``num_updates``: ``min(decay, (1 + n) / (10 + n))`` at update n.

    Example:
        >>> import numpy as np
        >>> w = keras.Variable(np.zeros(1, "float32"))
        >>> ema = ExponentialMovingAverage([w], decay=0.5, dynamic_decay=False)
        >>> _ = w.assign([4.0]); ema.update(); _ = w.assign([8.0]); ema.update()
        >>> float(ema.averages[0].numpy()[0])  # 0.5*(0.5*0+0.5*4) + 0.5*8
        5.0
        >>> with ema.swapped():
        ...     float(w.numpy()[0])
        5.0
        >>> float(w.numpy()[0])
        8.0
    """

    def __init__(self, variables, decay: float, dynamic_decay: bool = True):
        self.decay = float(decay)
        self.dynamic_decay = bool(dynamic_decay)
        self.targets = [_tf_variable(v) for v in variables]
        self.averages = [
            tf.Variable(t.read_value(), trainable=False, name=f"ema_{i}")
            for i, t in enumerate(self.targets)
        ]
        self.num_updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="ema_num_updates")

    @property
    def variables(self) -> list:
        return [self.num_updates, *self.averages]

    def current_decay(self, num_updates):
        if not self.dynamic_decay:
            return tf.constant(self.decay, tf.float32)
        n = tf.cast(num_updates, tf.float32)
        return tf.minimum(self.decay, (1.0 + n) / (10.0 + n))

    def update(self):
        """Moves every average towards its weight: ``avg -= (1 - decay) * (avg - w)``."""
        n = self.num_updates.assign_add(1)
        one_minus = 1.0 - self.current_decay(n)
        for avg, target in zip(self.averages, self.targets):
            avg.assign_sub(tf.cast(one_minus, avg.dtype) * (avg - tf.cast(target, avg.dtype)))

    def swap(self):
        """Exchanges weights and averages (an involution)."""
        for avg, target in zip(self.averages, self.targets):
            value = tf.identity(target.read_value())
            target.assign(avg.read_value())
            avg.assign(value)

    @contextlib.contextmanager
    def swapped(self):
        """Within the block the model holds the averages."""
        self.swap()
        try:
            yield
        finally:
            self.swap()


def averaged_variables(model: keras.Model) -> list:
    """The weights the EMA covers: trainable ones plus float non-trainable ones (BN stats)."""
    out = list(model.trainable_variables)
    out += [v for v in model.non_trainable_variables if "float" in str(v.dtype)]
    return out
