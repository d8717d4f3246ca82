"""Training: a tf.distribute loop, tasks, published recipes, data pipelines, checkpoints.

Example:
    >>> from mnas_keras.training import get_recipe
    >>> cfg = get_recipe("mnasnet", ["trainer.epochs=1", "data.data_dir=/data/tfds"])
    >>> cfg.trainer.epochs, cfg.optimizer.name, cfg.data.name
    (1, 'rmsprop_tf1', 'imagenet2012')
"""

from mnas_keras.training.checkpoints import TrainState
from mnas_keras.training.config import (
    ClassificationConfig,
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    OptimizerConfig,
    RuntimeConfig,
    ScheduleConfig,
    TaskConfig,
    TrainerConfig,
    from_dict,
    from_json,
    override,
    to_dict,
    to_json,
)
from mnas_keras.training.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    DatasetNotPreparedError,
    NonFiniteLossError,
)
from mnas_keras.training.optim import (
    ExponentialMovingAverage,
    RMSPropTF1,
    WarmupCosineDecay,
    WarmupExponentialDecay,
    build_optimizer,
    build_schedule,
)
from mnas_keras.training.recipes import RECIPES, get_recipe
from mnas_keras.training.strategy import configure_logical_cpus, create_strategy
from mnas_keras.training.tasks import ClassificationTask, StepContext, Task, build_task, register_task
from mnas_keras.training.trainer import Trainer, train

__all__ = [
    "RECIPES",
    "CheckpointError",
    "ClassificationConfig",
    "ClassificationTask",
    "ConfigError",
    "DataConfig",
    "DataError",
    "DatasetNotPreparedError",
    "ExperimentConfig",
    "ExponentialMovingAverage",
    "ModelConfig",
    "NonFiniteLossError",
    "OptimizerConfig",
    "RMSPropTF1",
    "RuntimeConfig",
    "ScheduleConfig",
    "StepContext",
    "Task",
    "TaskConfig",
    "TrainState",
    "Trainer",
    "TrainerConfig",
    "WarmupCosineDecay",
    "WarmupExponentialDecay",
    "build_optimizer",
    "build_schedule",
    "build_task",
    "configure_logical_cpus",
    "create_strategy",
    "from_dict",
    "from_json",
    "get_recipe",
    "override",
    "register_task",
    "to_dict",
    "to_json",
    "train",
]
