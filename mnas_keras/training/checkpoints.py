"""Checkpoints of a run: model, optimizer, EMA, step and epoch, with strict restore.

Variables are stored under ``<index>_<name>`` keys in a fixed order (Keras 3 models are not
tracked by ``tf.train.Checkpoint`` through their layers, and auto-generated layer names
change between processes), and a restore must match every stored value to a variable of
the same shape, so a corrupt file or a checkpoint of another model is a
:class:`~mnas_keras.training.errors.CheckpointError`, never silently random weights. The
run's ``config.json`` beside the checkpoints is compared with the new run's model config
first, for a message that says what differs.

Example:
    >>> import tempfile, keras
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    >>> state = TrainState(model)
    >>> d = tempfile.mkdtemp()
    >>> manager = tf.train.CheckpointManager(state.checkpoint, d, max_to_keep=2)
    >>> path = manager.save(checkpoint_number=0)
    >>> other = TrainState(keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)]))
    >>> other.restore(path)
    Traceback (most recent call last):
    ...
    mnas_keras.training.errors.CheckpointError: checkpoint ... does not match the model being trained: ...
"""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

from mnas_keras.training.config import ExperimentConfig, to_dict
from mnas_keras.training.errors import CheckpointError

CONFIG_FILE = "config.json"


def _tf(v):
    return v.value if isinstance(v, keras.Variable) else v


def indexed(variables) -> dict:
    """``{"0000_kernel": var, ...}``: a stable, order-based naming of variables."""
    return {f"{i:04d}_{getattr(v, 'name', 'var').split(':')[0]}": _tf(v) for i, v in enumerate(variables)}


class TrainState:
    """Everything a checkpoint holds, and strict save/restore of it.

    Args:
        model: the Keras model.
        optimizer: its optimizer (built), or ``None``.
        ema: an ``ExponentialMovingAverage`` or ``None``.
    """

    def __init__(self, model, optimizer=None, ema=None):
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        parts = {"model": indexed(model.variables), "step": self.step, "epoch": self.epoch}
        if optimizer is not None:
            parts["optimizer"] = indexed(optimizer.variables)
        if ema is not None:
            parts["ema"] = indexed(ema.variables)
        self.checkpoint = tf.train.Checkpoint(**parts)

    def restore(self, path: str) -> None:
        """Restores ``path`` or raises ``CheckpointError`` naming it and what went wrong."""
        try:
            status = self.checkpoint.restore(path)
            status.assert_consumed()
        except Exception as err:  # noqa: BLE001 - every failure becomes one clear error
            kind = type(err).__name__
            mismatch = isinstance(err, (ValueError, AssertionError, KeyError)) or "incompatible" in str(err)
            problem = "does not match the model being trained" if mismatch else "is corrupt or unreadable"
            first = str(err).strip().splitlines()[0][:400] if str(err).strip() else kind
            raise CheckpointError(
                f"checkpoint {path!r} {problem}: {kind}: {first}. Use a fresh model_dir, or "
                "delete the bad checkpoint files to fall back to an older one"
            ) from None


def check_run_config(model_dir: str, config: ExperimentConfig, has_checkpoint: bool) -> None:
    """Refuses to resume a run in ``model_dir`` whose stored config trains another model.

    Raises:
        CheckpointError: the stored ``config.json`` is unreadable, or its ``model``/``task``
            section or image size differs from ``config`` while checkpoints exist.
    """
    path = os.path.join(model_dir, CONFIG_FILE)
    if not has_checkpoint or not tf.io.gfile.exists(path):
        return
    try:
        with tf.io.gfile.GFile(path) as f:
            stored = json.load(f)
    except (json.JSONDecodeError, OSError) as err:
        raise CheckpointError(f"{path!r} is not readable JSON ({err}); cannot check the checkpoints") from None
    current = to_dict(config)
    for section, keys in (("model", None), ("task", None), ("data", ("image_size",))):
        old, new = stored.get(section, {}), current[section]
        names = keys or sorted(set(old) | set(new))
        diffs = [f"{section}.{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in names if old.get(k) != new.get(k)]
        if diffs:
            raise CheckpointError(
                f"model_dir {model_dir!r} holds checkpoints of a different run "
                f"({'; '.join(diffs)}); use a fresh model_dir or the original settings"
            )


def write_run_config(model_dir: str, config: ExperimentConfig) -> str:
    """Writes the effective config as ``config.json``; returns its path."""
    tf.io.gfile.makedirs(model_dir)
    path = os.path.join(model_dir, CONFIG_FILE)
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(to_dict(config), indent=2, sort_keys=True))
    return path
