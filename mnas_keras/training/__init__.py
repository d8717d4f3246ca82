"""Training: a tf.distribute loop, tasks, published recipes, data pipelines, checkpoints.

Example:
    >>> from mnas_keras.training import get_recipe
    >>> cfg = get_recipe("mnasnet", ["trainer.epochs=1", "data.data_dir=/data/tfds"])
    >>> cfg.trainer.epochs, cfg.optimizer.name, cfg.data.name
    (1, 'rmsprop_tf1', 'imagenet2012')
"""

import importlib

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
from mnas_keras.training.recipes import RECIPES, get_recipe

# Configs, recipes and errors import no TensorFlow (the CLI can print a config or reject a
# bad flag at once); everything else loads on first use.
_LAZY = {
    "TrainState": "mnas_keras.training.checkpoints",
    "ExponentialMovingAverage": "mnas_keras.training.optim",
    "RMSPropTF1": "mnas_keras.training.optim",
    "WarmupCosineDecay": "mnas_keras.training.optim",
    "WarmupExponentialDecay": "mnas_keras.training.optim",
    "build_optimizer": "mnas_keras.training.optim",
    "build_schedule": "mnas_keras.training.optim",
    "configure_logical_cpus": "mnas_keras.training.strategy",
    "create_strategy": "mnas_keras.training.strategy",
    "ClassificationTask": "mnas_keras.training.tasks",
    "StepContext": "mnas_keras.training.tasks",
    "Task": "mnas_keras.training.tasks",
    "build_task": "mnas_keras.training.tasks",
    "register_task": "mnas_keras.training.tasks",
    "Trainer": "mnas_keras.training.trainer",
    "train": "mnas_keras.training.trainer",
}


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


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mnas_keras.training' has no attribute {name!r}")
