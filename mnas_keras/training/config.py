"""Frozen dataclass configs for a training run, with dotted-key overrides and JSON round trips.

An :class:`ExperimentConfig` nests one config per concern (model, data, task, optimizer,
schedule, trainer, runtime). Configs are immutable: :func:`override` returns a new config,
checking every key and coercing every value to the field's type. The machinery
(``override``, ``to_dict``, ``to_json``, coercion) is the package's shared one,
:mod:`mnas_keras._config`, which the search's configs use too. No TensorFlow here.

Example:
    >>> cfg = ExperimentConfig()
    >>> cfg = override(cfg, ["trainer.epochs=3", "optimizer.ema_decay=none", "data.name=digits"])
    >>> cfg.trainer.epochs, cfg.optimizer.ema_decay, cfg.data.name
    (3, None, 'digits')
    >>> from_dict(to_dict(cfg)) == cfg
    True
    >>> override(cfg, {"trainer.epoch": 3})
    Traceback (most recent call last):
    ...
    mnas_keras._config.ConfigError: unknown config key 'trainer.epoch': 'epoch' is not a field of TrainerConfig; expected one of ...
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

from mnas_keras import _config
from mnas_keras._config import override, to_dict, to_json  # noqa: F401 (public names of this module)
from mnas_keras.training.errors import ConfigError

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker_mirrored", "tpu")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
AUGMENTATIONS = ("inception", "flip", "none")
NORMALIZATIONS = ("none", "imagenet_mean_std", "scale_-1_1")
OPTIMIZERS = ("rmsprop_tf1", "rmsprop", "sgd", "adam", "adamw")
SCHEDULES = ("exponential", "constant", "cosine")


def _check_choice(owner: str, field: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"{owner}.{field} must be one of {choices}; received {value!r}")


def _check_positive(owner: str, field: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if value is None or not value > 0 or (isinstance(value, float) and not math.isfinite(value)):
        raise ConfigError(f"{owner}.{field} must be > 0; received {value!r}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Which network to train.

    Attributes:
        name: a registry name (``mnas_keras.create_model``, e.g. ``"mnasnet_a1"``), or
            ``"keras:<Application>"`` for a ``keras.applications`` constructor. Ignored
            when ``blocks`` is given.
        blocks: block strings for ``mnas_keras.MnasNet``; when non-empty they define the model.
        alpha: width multiplier.
        dropout_rate: dropout before the classifier; ``None`` keeps the architecture's.
        bn_momentum: batch-norm moving-average momentum; ``None`` keeps the architecture's
            (0.99). Short runs on small data evaluate better with e.g. 0.9.
        sync_batch_norm: compute batch-norm statistics over the global batch (all replicas).
        init_weights: fine-tuning: a ``.weights.h5`` or ``.keras`` file whose weights are
            loaded into a fresh run (layers whose shapes differ, e.g. another classifier,
            keep their initialization). Ignored when resuming from a checkpoint.
    """

    name: str = "mnasnet_a1"
    blocks: tuple = ()
    alpha: float = 1.0
    dropout_rate: float | None = None
    bn_momentum: float | None = None
    sync_batch_norm: bool = False
    init_weights: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "blocks", tuple(str(b) for b in self.blocks))
        _check_positive("model", "alpha", self.alpha)
        if self.dropout_rate is not None and not 0 <= self.dropout_rate < 1:
            raise ConfigError(f"model.dropout_rate must be in [0, 1); received {self.dropout_rate!r}")
        if self.bn_momentum is not None and not 0 <= self.bn_momentum < 1:
            raise ConfigError(f"model.bn_momentum must be in [0, 1); received {self.bn_momentum!r}")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where images come from and how they are prepared.

    Attributes:
        name: ``"digits"`` (scikit-learn, offline), ``"folder"`` (``data_dir`` holds one
            sub-folder per split, each with one sub-folder per class) or a
            tensorflow-datasets name such as ``"imagenet2012"`` or ``"tf_flowers"``.
        data_dir: the prepared tensorflow-datasets directory, or the image-folder root.
        manual_dir: where a manual dataset's (e.g. ImageNet's) archives lie.
        download: let tensorflow-datasets download and prepare a missing dataset.
        train_split, eval_split: split names (tfds slicing such as ``"train[:90%]"`` works).
        image_size: the square side the model sees.
        augmentation: ``"inception"`` (random crop + flip), ``"flip"`` or ``"none"``.
        crop_padding: evaluation center crop keeps ``size / (size + crop_padding)`` of the
            shorter side (32 at 224 keeps 87.5%); 0 resizes the whole image.
        normalization: done in the pipeline; ``"none"`` feeds 0-255 floats to models that
            normalize inside (this package's and keras.applications' models do).
        shuffle_buffer: training shuffle buffer (examples).
        cache: cache decoded examples in memory (small datasets).
    """

    name: str = "digits"
    data_dir: str | None = None
    manual_dir: str | None = None
    download: bool = False
    train_split: str = "train"
    eval_split: str = "test"
    image_size: int = 224
    augmentation: str = "inception"
    crop_padding: int = 32
    normalization: str = "none"
    shuffle_buffer: int = 10_000
    cache: bool = False

    def __post_init__(self):
        _check_choice("data", "augmentation", self.augmentation, AUGMENTATIONS)
        _check_choice("data", "normalization", self.normalization, NORMALIZATIONS)
        _check_positive("data", "image_size", self.image_size)
        _check_positive("data", "shuffle_buffer", self.shuffle_buffer)
        if self.crop_padding < 0:
            raise ConfigError(f"data.crop_padding must be >= 0; received {self.crop_padding!r}")


@dataclasses.dataclass(frozen=True)
class TaskConfig:
    """Base of task configs; ``name`` selects the task class (see ``training.tasks``)."""

    name: str = "classification"


@dataclasses.dataclass(frozen=True)
class ClassificationConfig(TaskConfig):
    """Image classification.

    Attributes:
        label_smoothing: cross-entropy label smoothing.
        num_classes: ``None`` takes the dataset's.
        top_k: also report top-k accuracy when the dataset has more than k classes.
    """

    name: str = "classification"
    label_smoothing: float = 0.1
    num_classes: int | None = None
    top_k: int = 5

    def __post_init__(self):
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(
                f"task.label_smoothing must be in [0, 1); received {self.label_smoothing!r}"
            )
        _check_positive("task", "num_classes", self.num_classes, allow_none=True)


TASK_CONFIGS: dict[str, type] = {"classification": ClassificationConfig}


def register_task_config(name: str, config_class: type) -> None:
    """Registers a task config class under ``name`` (its ``name`` field's default)."""
    if not (dataclasses.is_dataclass(config_class) and issubclass(config_class, TaskConfig)):
        raise ConfigError(f"{config_class!r} must be a TaskConfig dataclass")
    TASK_CONFIGS[name] = config_class


@dataclasses.dataclass(frozen=True)
class SegmentationConfig(TaskConfig):
    """Semantic segmentation with an LR-ASPP head (``mnas_keras.heads.LRASPP``).

    Mask value 255 is ignored (in neither loss nor metrics).

    ``data.image_size`` is the training crop side; ``data.augmentation`` ``"none"`` turns
    scaling and flipping off (crops remain).

    Attributes:
        num_classes: ``None`` takes the dataset's.
        filters: LR-ASPP high-branch width (paper: 128).
        pooling: the gate's average pooling as ``(kernel_h, kernel_w, stride_h, stride_w)``,
            e.g. ``(49, 49, 16, 20)`` (paper, 1024x2048); empty = global pooling (torchvision).
        output_stride: 16 (paper) or 8.
        reduced_tail: halve the backbone's last stage (the paper's RF2).
        min_scale, max_scale: random rescaling range of training images.
        eval_size: 0 evaluates at full resolution; else the longer side is resized to it
            and the image padded to a square (the padding is ignored).
        num_visuals: overlay PNGs (image | ground truth | prediction) written after the
            final evaluation (also to TensorBoard); 0 for none.
    """

    name: str = "segmentation"
    num_classes: int | None = None
    filters: int = 128
    pooling: tuple = ()
    output_stride: int = 16
    reduced_tail: bool = True
    min_scale: float = 0.5
    max_scale: float = 2.0
    eval_size: int = 0
    num_visuals: int = 4

    def __post_init__(self):
        try:
            object.__setattr__(self, "pooling", tuple(int(v) for v in self.pooling))
        except (TypeError, ValueError):
            raise ConfigError(f"task.pooling must be integers; received {self.pooling!r}") from None
        _check_positive("task", "num_classes", self.num_classes, allow_none=True)
        _check_positive("task", "filters", self.filters)
        _check_choice("task", "output_stride", self.output_stride, (8, 16, 32))
        if not 0 < self.min_scale <= self.max_scale:
            raise ConfigError(
                f"task.min_scale/max_scale must satisfy 0 < min <= max; received {self.min_scale!r}, "
                f"{self.max_scale!r}"
            )
        if len(self.pooling) not in (0, 4) or min(self.pooling, default=1) < 1:
            raise ConfigError(
                "task.pooling must be empty (global pooling) or four positive integers "
                f"kernel_h,kernel_w,stride_h,stride_w; received {list(self.pooling)}"
            )
        if self.eval_size < 0 or self.num_visuals < 0:
            raise ConfigError("task.eval_size and task.num_visuals must be >= 0")


register_task_config("segmentation", SegmentationConfig)


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """Optimizer, weight decay, gradient clipping and weight averaging.

    Attributes:
        name: ``"rmsprop_tf1"`` (TF1 RMSProp: accumulator starts at ones), ``"rmsprop"``
            (Keras), ``"sgd"``, ``"adam"`` or ``"adamw"``.
        momentum, rho, epsilon: optimizer hyper-parameters (``rho`` = RMSProp decay).
        weight_decay: TF1-style ``weight_decay * sum(l2_loss(w))`` over non-batch-norm
            weights, added to the loss (``l2_loss`` halves the sum of squares).
        clipnorm: clip gradients to this global norm (after the cross-replica sum).
        ema_decay: exponential moving average of weights AND batch-norm statistics;
            evaluation and export use the averages. ``None`` turns it off.
        ema_dynamic_decay: TF1's ``num_updates``: decay = min(ema_decay, (1+n)/(10+n)).
    """

    name: str = "rmsprop_tf1"
    momentum: float = 0.9
    rho: float = 0.9
    epsilon: float = 1e-3
    weight_decay: float = 1e-5
    clipnorm: float | None = None
    ema_decay: float | None = 0.9999
    ema_dynamic_decay: bool = True

    def __post_init__(self):
        _check_choice("optimizer", "name", self.name, OPTIMIZERS)
        if self.weight_decay < 0:
            raise ConfigError(f"optimizer.weight_decay must be >= 0; received {self.weight_decay!r}")
        _check_positive("optimizer", "clipnorm", self.clipnorm, allow_none=True)
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ConfigError(f"optimizer.ema_decay must be in (0, 1); received {self.ema_decay!r}")


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    """Learning-rate schedule; epochs convert to steps with the run's steps per epoch.

    The peak rate is ``base_learning_rate * global_batch_size / base_batch_size``, reached
    by a linear warmup, then (``"exponential"``) multiplied by ``decay_rate`` every
    ``decay_epochs`` counted from step 0, as tensorflow/tpu's MnasNet does.

    Attributes:
        name: ``"exponential"``, ``"cosine"`` (to zero at the last step) or ``"constant"``.
        base_learning_rate, base_batch_size: the linear scaling rule.
        warmup_epochs, decay_epochs, decay_rate, staircase: the schedule's shape.
    """

    name: str = "exponential"
    base_learning_rate: float = 0.016
    base_batch_size: int = 256
    warmup_epochs: float = 5.0
    decay_epochs: float = 2.4
    decay_rate: float = 0.97
    staircase: bool = True

    def __post_init__(self):
        _check_choice("schedule", "name", self.name, SCHEDULES)
        _check_positive("schedule", "base_learning_rate", self.base_learning_rate)
        _check_positive("schedule", "base_batch_size", self.base_batch_size)
        _check_positive("schedule", "decay_epochs", self.decay_epochs)
        if self.warmup_epochs < 0:
            raise ConfigError(f"schedule.warmup_epochs must be >= 0; received {self.warmup_epochs!r}")


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
    """The loop: length, batch, checkpoints, evaluation, speed options.

    Attributes:
        epochs: training length in epochs (ignored when ``train_steps`` is set).
        train_steps: training length in steps.
        steps_per_epoch: ``None`` = training examples // global batch size.
        global_batch_size: examples per step over all replicas.
        eval_batch_size: ``None`` = ``global_batch_size``.
        eval_every_epochs: evaluate every this many epochs (0: only at the end).
        eval_steps: ``None`` evaluates the whole split (each example exactly once).
        steps_per_loop: steps run inside one ``tf.function`` call.
        checkpoint_every_steps: ``None`` saves at each epoch end (and at the end).
        max_checkpoints: checkpoints kept.
        seed: seeds initialization, data order, augmentation and dropout.
        deterministic: ``tf.config.experimental.enable_op_determinism()``.
        jit_compile: compile each replica's step with XLA.
        mixed_precision: ``"float32"``, ``"mixed_float16"`` (with loss scaling) or
            ``"mixed_bfloat16"``.
        progress: print a progress line (step, loss, images/s, ETA).
        export: save ``model.keras`` (averaged weights when EMA is on) at the end.
    """

    epochs: int = 350
    train_steps: int | None = None
    steps_per_epoch: int | None = None
    global_batch_size: int = 1024
    eval_batch_size: int | None = None
    eval_every_epochs: int = 1
    eval_steps: int | None = None
    steps_per_loop: int = 100
    checkpoint_every_steps: int | None = None
    max_checkpoints: int = 5
    seed: int = 0
    deterministic: bool = False
    jit_compile: bool = False
    mixed_precision: str = "float32"
    progress: bool = True
    export: bool = True

    def __post_init__(self):
        _check_positive("trainer", "epochs", self.epochs)
        _check_positive("trainer", "train_steps", self.train_steps, allow_none=True)
        _check_positive("trainer", "steps_per_epoch", self.steps_per_epoch, allow_none=True)
        _check_positive("trainer", "global_batch_size", self.global_batch_size)
        _check_positive("trainer", "eval_batch_size", self.eval_batch_size, allow_none=True)
        _check_positive("trainer", "eval_steps", self.eval_steps, allow_none=True)
        _check_positive("trainer", "steps_per_loop", self.steps_per_loop)
        _check_positive("trainer", "checkpoint_every_steps", self.checkpoint_every_steps, True)
        _check_positive("trainer", "max_checkpoints", self.max_checkpoints)
        if self.eval_every_epochs < 0:
            raise ConfigError(
                f"trainer.eval_every_epochs must be >= 0; received {self.eval_every_epochs!r}"
            )
        _check_choice("trainer", "mixed_precision", self.mixed_precision, PRECISIONS)


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
    """Where the run executes.

    Attributes:
        strategy: ``"default"``, ``"one_device"``, ``"mirrored"``, ``"multi_worker_mirrored"``
            (cluster from ``TF_CONFIG``) or ``"tpu"``.
        tpu: TPU name or address for ``"tpu"`` (``""`` = local).
        devices: comma-separated devices for ``"mirrored"``/``"one_device"`` (default: all
            GPUs, else the CPU).
    """

    strategy: str = "default"
    tpu: str | None = None
    devices: str | None = None

    def __post_init__(self):
        _check_choice("runtime", "strategy", self.strategy, STRATEGIES)


def _task_class(name: Any) -> type:
    """The task config class registered as ``name`` (``None``: classification)."""
    name = "classification" if name is None else name
    if name not in TASK_CONFIGS:
        raise ConfigError(f"task.name must be one of {sorted(TASK_CONFIGS)}; received {name!r}")
    return TASK_CONFIGS[name]


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Everything a run needs; written as ``config.json`` beside the checkpoints."""

    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    task: TaskConfig = _config.field(default_factory=ClassificationConfig, variants=_task_class)
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = dataclasses.field(default_factory=ScheduleConfig)
    trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
    runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)

    def __post_init__(self):
        if not isinstance(self.task, TaskConfig):
            raise ConfigError(f"task must be a TaskConfig; received {type(self.task).__name__}")


# --------------------------------------------------------------------------------------
# dict / JSON round trips and overrides: the package's shared machinery (mnas_keras._config)


def from_dict(data: Mapping) -> ExperimentConfig:
    """Builds an :class:`ExperimentConfig` from ``to_dict`` output (missing keys: defaults)."""
    return _config.from_dict(ExperimentConfig, data)


def from_json(text: str) -> ExperimentConfig:
    """Inverse of :func:`to_json`."""
    return _config.from_json(ExperimentConfig, text)
