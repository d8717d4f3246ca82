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


# Keys that say where or how a run executes, not what it trains: they may change on resume.
FREE_KEYS = frozenset({
    "data.data_dir", "data.manual_dir", "data.download", "data.cache", "model.init_weights",
    "trainer.progress", "trainer.export", "trainer.eval_batch_size", "trainer.eval_every_epochs",
    "trainer.eval_steps", "trainer.steps_per_loop", "trainer.checkpoint_every_steps",
    "trainer.max_checkpoints", "trainer.jit_compile",
})
FREE_SECTIONS = ("runtime",)


def _allowed(key: str, allow_changes) -> bool:
    section = key.split(".", 1)[0]
    return key in FREE_KEYS or section in FREE_SECTIONS or key in allow_changes or section in allow_changes


def config_changes(stored: dict, current: dict) -> list[str]:
    """``"section.key: old -> new"`` for every key whose value differs between two config dicts.

    A key present on one side only (a field added or removed by a package upgrade) is not a
    change.

    Example:
        >>> config_changes({"trainer": {"epochs": 3, "seed": 0}}, {"trainer": {"epochs": 5, "seed": 0}})
        ['trainer.epochs: 3 -> 5']
    """
    diffs = []
    for section in sorted(set(stored) | set(current)):
        old, new = stored.get(section), current.get(section)
        if not isinstance(old, dict) or not isinstance(new, dict):
            if old is not None and new is not None and old != new:
                diffs.append(f"{section}: {old!r} -> {new!r}")
            continue
        for key in sorted(set(old) & set(new)):
            if old[key] != new[key]:
                diffs.append(f"{section}.{key}: {old[key]!r} -> {new[key]!r}")
    return diffs


def check_run_config(model_dir: str, config: ExperimentConfig, has_checkpoint: bool, allow_changes=()) -> None:
    """Refuses to resume a run in ``model_dir`` whose stored ``config.json`` differs from ``config``.

    Keys that only say where or how the run executes (``FREE_KEYS``, ``runtime.*``) may
    change; any other change (batch size, learning rate, seed, epochs, ...) must be listed in
    ``allow_changes`` (dotted keys such as ``"trainer.epochs"``, or whole sections such as
    ``"schedule"``; ``mnas-train --allow_changes``).

    Raises:
        CheckpointError: the stored ``config.json`` is unreadable, or differs in keys not
            allowed while checkpoints exist; the message names each key, old and new value.
    """
    path = os.path.join(model_dir, CONFIG_FILE)
    if not has_checkpoint or not tf.io.gfile.exists(path):
        return
    try:
        with tf.io.gfile.GFile(path) as f:
            stored = json.load(f)
        if not isinstance(stored, dict):
            raise ValueError("expected a JSON object")
    except (json.JSONDecodeError, ValueError, OSError) as err:
        raise CheckpointError(f"{path!r} is not readable JSON ({err}); cannot check the checkpoints") from None
    allow = {str(a).strip() for a in allow_changes if str(a).strip()}
    diffs = [d for d in config_changes(stored, to_dict(config)) if not _allowed(d.split(":", 1)[0], allow)]
    if diffs:
        keys = ",".join(d.split(":", 1)[0] for d in diffs)
        raise CheckpointError(
            f"model_dir {model_dir!r} holds checkpoints of a different run "
            f"({'; '.join(diffs)}); use a fresh model_dir or the original settings, or accept the "
            f"change with --allow_changes={keys}"
        )


def write_run_config(model_dir: str, config: ExperimentConfig) -> str:
    """Writes the effective config as ``config.json`` atomically (a temporary file renamed over
    the old one, so a kill mid-write leaves the previous file whole); returns its path."""
    tf.io.gfile.makedirs(model_dir)
    path = os.path.join(model_dir, CONFIG_FILE)
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with tf.io.gfile.GFile(temporary, "w") as f:
            f.write(json.dumps(to_dict(config), indent=2, sort_keys=True))
        tf.io.gfile.rename(temporary, path, overwrite=True)
    except BaseException:
        if tf.io.gfile.exists(temporary):
            tf.io.gfile.remove(temporary)
        raise
    return path
