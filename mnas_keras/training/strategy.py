"""``tf.distribute`` strategies by name, and logical CPU devices for testing them.

Example:
    >>> strategy = create_strategy("default")
    >>> strategy.num_replicas_in_sync
    1
    >>> create_strategy("mirored")
    Traceback (most recent call last):
    ...
    mnas_keras._config.ConfigError: unknown strategy 'mirored'; expected one of ('default', 'one_device', 'mirrored', 'multi_worker_mirrored', 'tpu')
"""

from __future__ import annotations

import tensorflow as tf

from mnas_keras.training.config import STRATEGIES
from mnas_keras.training.errors import ConfigError


def _split_devices(devices: str | None) -> list[str] | None:
    if not devices:
        return None
    return [d.strip() for d in devices.split(",") if d.strip()]


def _check_devices(device_list: list[str] | None) -> None:
    """Each named device must be one of this process's logical devices (TensorFlow would
    otherwise place the replicas elsewhere without a word, e.g. ``/gpu:7`` on the CPU)."""
    if not device_list:
        return
    known = tf.config.list_logical_devices()
    have = {(d.device_type.upper(), tf.DeviceSpec.from_string(d.name).device_index) for d in known}
    for name in device_list:
        try:
            spec = tf.DeviceSpec.from_string(name)
        except ValueError:
            spec = None
        if spec is None or not spec.device_type or (spec.device_type.upper(), spec.device_index or 0) not in have:
            raise ConfigError(f"device {name!r} (--devices) is not a device of this process; expected some of "
                              f"{[d.name for d in known]}")


def _default_device() -> str:
    gpus = tf.config.list_logical_devices("GPU")
    return gpus[0].name if gpus else "/cpu:0"


def create_strategy(name: str = "default", *, devices: str | None = None, tpu: str | None = None):
    """Returns the ``tf.distribute.Strategy`` called ``name``.

    Args:
        name: ``"default"`` (no distribution), ``"one_device"``, ``"mirrored"`` (all GPUs,
            or ``devices``), ``"multi_worker_mirrored"`` (cluster from ``TF_CONFIG``) or
            ``"tpu"``.
        devices: comma-separated device names for ``"one_device"``/``"mirrored"``, e.g.
            ``"/cpu:0,/cpu:1"``.
        tpu: TPU name or grpc address for ``"tpu"`` (``""`` or ``None``: local TPU).

    Raises:
        ConfigError: an unknown name, a device that this process does not have, or a device
            list that does not fit the strategy.
    """
    if name not in STRATEGIES:
        raise ConfigError(f"unknown strategy {name!r}; expected one of {STRATEGIES}")
    device_list = _split_devices(devices)
    if name == "default":
        return tf.distribute.get_strategy()
    if name in ("one_device", "mirrored"):
        _check_devices(device_list)
    if name == "one_device":
        if device_list and len(device_list) != 1:
            raise ConfigError(f"one_device takes one device; received devices={devices!r}")
        return tf.distribute.OneDeviceStrategy(device_list[0] if device_list else _default_device())
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=device_list)
    if name == "multi_worker_mirrored":
        return tf.distribute.MultiWorkerMirroredStrategy()
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300].rstrip(".")
        raise ConfigError(
            f"strategy 'tpu' found no TPU (tpu={tpu!r}): {first}. Expected a TPU VM or --tpu=<name or "
            "grpc address>; use --strategy=default or mirrored without one"
        ) from None
    return tf.distribute.TPUStrategy(resolver)


def is_multi_worker(strategy) -> bool:
    """True for strategies whose cluster has more than one worker or uses a cluster resolver."""
    extended = strategy.extended
    return bool(getattr(extended, "_in_multi_worker_mode", lambda: False)())


def configure_logical_cpus(count: int) -> list:
    """Splits the first CPU into ``count`` logical devices (before TensorFlow initializes them).

    Lets a CPU-only machine run ``MirroredStrategy`` over ``/cpu:0`` ... ``/cpu:{count-1}``.

    Raises:
        RuntimeError: TensorFlow's devices were already initialized in this process with a
            different count (do it first thing in a fresh process).
    """
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError:
        current = tf.config.list_logical_devices("CPU")
        if len(current) != count:
            raise RuntimeError(
                f"cannot split the CPU into {count} logical devices: TensorFlow already "
                f"initialized {len(current)}; call configure_logical_cpus first in a fresh process"
            ) from None
    return tf.config.list_logical_devices("CPU")
